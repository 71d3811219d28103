"""Evaluation, gate and registration of a trained model, without Ray: the version holds the
artifact, metrics, lineage, gate record and reference profile, and enters ``candidate``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from registry import Registry
from registry.preprocess import Preprocessor
from registry.references import CBPE_FILE, MULTIVARIATE_FILE, PROFILE_FILE, load_cbpe, load_multivariate, load_profile
from training import evaluate as ev
from training.config import EvalConfig, TrainingConfig
from training.datastore import DataStore
from training.ingest import ingest
from training.models import TabularMLP, export_classifier
from training.pipeline import TrainRequest, assess, open_run, register

FAST = TrainingConfig(eval=EvalConfig(latency_batch_sizes=(1, 8), latency_repeats=3))


@pytest.fixture
def setup(tmp_path):
    ingest(DataStore(str(tmp_path / "data")), "demo:1500", "churn")
    req = TrainRequest(run_id="r1", registry_root=str(tmp_path / "reg"), data_root=str(tmp_path / "data"),
                       runs_root=str(tmp_path / "runs"), data="churn", model="churn", config=FAST,
                       code_revision="abc123")
    run, dataset, cfg = open_run(req)
    schema = dataset.schema.model_schema()
    pre = Preprocessor.fit(schema, dataset.columns("train"))
    torch.manual_seed(0)
    return Registry(req.registry_root), run, dataset, cfg, pre, schema


def _module(pre):
    return export_classifier(TabularMLP(pre.width, 2))


def test_first_version_registers_with_everything(setup):
    reg, run, dataset, cfg, pre, schema = setup
    module = _module(pre)
    evaluation, decision, parent = assess(reg, "churn", ev.Scorer(module, pre, schema), dataset, cfg)
    assert parent is None and decision["compared_with"] is None
    mv = register(reg, run, module, pre, dataset, evaluation, decision, [{"epoch": 1, "val_loss": 0.6}], parent)
    assert reg.stage_of("churn", mv.version) == "candidate"
    assert set(mv.summary()["files"]) >= {"model.pt", "schema.json", "preprocessor.json", "metrics.json",
                                          "lineage.json", "gate.json", PROFILE_FILE, "evaluation.json",
                                          MULTIVARIATE_FILE, CBPE_FILE}
    assert {"test_accuracy", "test_roc_auc", "test_log_loss", "max_slice_gap", "latency_p50_ms_batch_1"} \
        <= set(mv.metrics)
    lineage = mv.lineage
    assert lineage["data"]["fingerprint"] == dataset.fingerprint and lineage["run_id"] == "r1"
    assert lineage["code_revision"] == "abc123" and lineage["parent_version"] is None
    assert lineage["parameters"]["epochs"] == FAST.epochs
    profile = load_profile(mv.read(PROFILE_FILE))
    assert set(profile.features) == set(dataset.schema.feature_names)
    assert profile.numeric.sorted.column(profile.numeric.names.index("age")).size == dataset.manifest["rows"]["train"]
    multivariate, covered = load_multivariate(mv.read(MULTIVARIATE_FILE))  # errors on the held-out split
    assert covered == tuple(f.name for f in schema.inputs if not f.pii)
    assert multivariate.reference_rows == dataset.manifest["rows"]["test"]
    cbpe, column = load_cbpe(mv.read(CBPE_FILE))  # calibrated on the held-out split
    assert column == f"probabilities[{schema.class_labels[1]}]" and 0 <= cbpe.estimate(np.array([0.5]))["accuracy"] <= 1


def test_served_path_reproduces_the_evaluation(setup):
    reg, run, dataset, cfg, pre, schema = setup
    module = _module(pre)
    evaluation, decision, _ = assess(reg, "churn", ev.Scorer(module, pre, schema), dataset, cfg)
    mv = register(reg, run, module, pre, dataset, evaluation, decision, [], None)
    again = ev.evaluate(ev.Scorer.from_version(mv), dataset.columns("test"), "churn", [], cfg.eval)
    assert again["metrics"] == evaluation["metrics"]


def test_second_version_is_gated_against_production(setup):
    reg, run, dataset, cfg, pre, schema = setup
    first = _module(pre)
    e1, d1, _ = assess(reg, "churn", ev.Scorer(first, pre, schema), dataset, cfg)
    v1 = register(reg, run, first, pre, dataset, e1, d1, [], None)
    reg.promote("churn", v1.version, actor="test", force=True, reason="test")
    e2, d2, parent = assess(reg, "churn", ev.Scorer(_module(pre), pre, schema), dataset, cfg)
    assert parent.version == v1.version and d2["compared_with"] == v1.version
    assert e2["production"]["metrics"] == pytest.approx(e1["metrics"])
    assert any(c["check"] == "metric:accuracy" for c in d2["checks"])


def test_incomparable_production_fails_the_gate(setup, tmp_path):
    reg, run, dataset, cfg, pre, schema = setup
    other = ingest(DataStore(str(tmp_path / "other")), _write_small(tmp_path), "x",
                   target="label").dataset
    o_schema = other.schema.model_schema()
    o_pre = Preprocessor.fit(o_schema, other.columns("train"))
    e, d, _ = assess(reg, "churn", ev.Scorer(export_classifier(TabularMLP(o_pre.width, 2)), o_pre, o_schema),
                     other, cfg)
    v = register(reg, run, export_classifier(TabularMLP(o_pre.width, 2)), o_pre, other, e, d, [], None)
    reg.promote("churn", v.version, actor="test", force=True, reason="test")
    _, decision, _ = assess(reg, "churn", ev.Scorer(_module(pre), pre, schema), dataset, cfg)
    assert not decision["passed"] and "cannot be evaluated here" in decision["reasons"][0]


def _write_small(tmp_path) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    path = str(tmp_path / "small.parquet")
    pq.write_table(pa.table({"z": rng.normal(size=200), "label": rng.choice(["stay", "churn"], 200).tolist()}), path)
    return path
