"""A version registered by hand is ``ungated``: ``mlgate models evaluate`` runs the training
pipeline's evaluation and gate on it and records the decision beside the (immutable) version,
and that decision is what ``promote`` checks. No Ray."""

from __future__ import annotations

import json
import shutil

import pytest

from contracts.errors import Conflict, InvalidInput
from mlgate.cli import main
from registry import Registry
from registry.stages import GATE_FILE
from registry.torch_io import register_torch_model
from tests.cli_env import admin_cli_env, audit_records, key_file
from tests.models import MLP_SCHEMA, mlp, publish_copy
from training.config import EvalConfig, GateConfig, TrainingConfig
from training.datastore import DataStore
from training.ingest import ingest
from training.regate import evaluate_version

FAST = EvalConfig(latency_batch_sizes=(1, 8), latency_repeats=3)
LENIENT = TrainingConfig(eval=FAST, gate=GateConfig(max_slice_gap=1.0))
STRICT = TrainingConfig(eval=FAST, gate=GateConfig(max_slice_gap=1.0, max_p95_latency_ms=1e-6))  # nothing is this fast


@pytest.fixture
def reg(tmp_path, demo_registry) -> Registry:
    """A copy of the session's registry: ``demo`` version 1, registered without a gate record."""
    shutil.copytree(demo_registry, tmp_path / "registry")
    return Registry(str(tmp_path / "registry"))


@pytest.fixture(scope="module")
def churn(tmp_path_factory):
    """The ``demo`` model's dataset (its generator and schema), split by `mlgate data ingest`."""
    root = tmp_path_factory.mktemp("data")
    ingest(DataStore(str(root)), "demo:1500", "churn")
    return DataStore(str(root)).get("churn")


def test_evaluate_records_a_passing_gate_and_promote_then_needs_no_force(reg, churn):
    assert reg.get("demo", 1).gate is None
    with pytest.raises(Conflict, match="ungated"):
        reg.promote("demo", 1, actor="ana")
    manifest = reg.get("demo", 1).manifest
    record = evaluate_version(reg, "demo", 1, churn, LENIENT, actor="ana", actor_id="key:00")
    assert record.decision["passed"] and record.decision["compared_with"] is None
    assert record.dataset == {"name": "churn", "version": 1, "fingerprint": churn.fingerprint, "uri": churn.uri}
    assert record.decision["config"] == LENIENT.gate.model_dump(mode="json")
    assert 0.5 < record.decision["evaluation"]["metrics"]["roc_auc"] <= 1.0
    mv = reg.get("demo", 1)
    assert mv.manifest == manifest  # the version itself is unchanged, and reads as before
    assert mv.gate["passed"] and (mv.gate["source"], mv.gate["seq"], mv.gate["actor"]) == ("evaluation", 1, "ana")
    event = reg.promote("demo", 1, actor="ana")
    assert (event.gate, event.forced) == ("passed", False)


def test_evaluate_records_a_failing_gate_against_production(reg, churn):
    reg.promote("demo", 1, actor="ana", reason="the demo model", force=True)
    publish_copy(reg, reg.get("demo", 1), "demo")  # version 2, ungated
    record = evaluate_version(reg, "demo", 2, churn, STRICT)
    assert not record.decision["passed"] and record.decision["compared_with"] == 1
    assert any("p95 over" in r for r in record.decision["reasons"])
    assert {c["check"] for c in record.decision["checks"] if c["passed"]} >= {"metric:accuracy", "slice_gap"}
    with pytest.raises(Conflict, match=r"version 2 failed its gate \(batch 1: .*p95 over"):
        reg.promote("demo", 2, actor="ana")


def test_production_is_not_compared_with_itself(reg, churn):
    reg.promote("demo", 1, actor="ana", reason="the demo model", force=True)
    assert evaluate_version(reg, "demo", 1, churn, LENIENT).decision["compared_with"] is None


def test_a_new_evaluation_supersedes_the_published_gate_and_earlier_ones(reg, churn):
    source = reg.get("demo", 1)
    files = {f: source.read(f) for f in source.manifest["files"]}
    version = reg.publish("demo", {**files, GATE_FILE: json.dumps({"passed": False, "reasons": ["old"]}).encode()})
    assert version.gate == {"passed": False, "reasons": ["old"]}  # training's, inside the version
    evaluate_version(reg, "demo", version.version, churn, STRICT)
    evaluate_version(reg, "demo", version.version, churn, LENIENT)
    evaluate_version(reg, "demo", 1, churn, STRICT)  # another version's record changes nothing here
    gate = reg.get("demo", version.version).gate
    assert gate["passed"] and gate["seq"] == 2
    assert [(r.version, r.decision["passed"]) for r in reg.gates.history("demo")] == \
        [(2, False), (2, True), (1, False)]
    assert not reg.get("demo", 1).gate["passed"]


def test_a_version_the_dataset_cannot_evaluate_is_refused(reg, churn):
    register_torch_model(reg, "mlp", mlp(1), MLP_SCHEMA)  # a tensor model: no preprocessor, other inputs
    with pytest.raises(InvalidInput, match="mlp version 1 cannot be evaluated on dataset churn v1: .*no preprocessor"):
        evaluate_version(reg, "mlp", 1, churn, LENIENT)
    assert reg.gates.history("mlp") == []


def test_cli_evaluate_then_promote(tmp_path, monkeypatch, capsys, demo_registry, churn):
    env = admin_cli_env(tmp_path, monkeypatch, demo_registry)
    monkeypatch.setenv("MLGATE_DATA_ROOT", churn.store.root)
    monkeypatch.setenv("MLGATE_TRAINING__EVAL__LATENCY_REPEATS", "3")
    monkeypatch.setenv("MLGATE_TRAINING__GATE__MAX_SLICE_GAP", "1.0")
    key_id, token_file = key_file(env, "ana", ["admin"])
    acting = ["--token-file", token_file]
    assert main(["models", "promote", "demo", "1", *acting]) == 2
    assert "mlgate models evaluate demo 1 --data DATASET" in capsys.readouterr().err
    assert main(["models", "evaluate", "demo", "1", "--data", "churn", "--by", "bo", *acting]) == 0
    assert "demo version 1 on dataset churn v1: gate passed (recorded, gate record 1)" in capsys.readouterr().out
    assert main(["models", "promote", "demo", "1", *acting]) == 0
    assert capsys.readouterr().out.strip() == "demo version 1 is production"
    monkeypatch.setenv("MLGATE_TRAINING__GATE__MAX_P95_LATENCY_MS", "0.000001")  # the configured gate decides
    reg = Registry(str(env / "registry"))
    publish_copy(reg, reg.get("demo", 1), "demo")
    assert main(["models", "evaluate", "demo", "2", "--data", "churn", *acting]) == 1
    out = capsys.readouterr().out
    assert "demo version 2 on dataset churn v1 against production version 1: gate FAILED" in out
    assert "  failed: batch 1: " in out and "p95 over 0.000 ms" in out
    assert main(["models", "promote", "demo", "2", *acting]) == 2
    assert "version 2 failed its gate" in capsys.readouterr().err
    records = [(r["action"], r["target"], r["outcome"]) for r in audit_records(env)]
    assert records == [("models.promote", "demo/1", "failed"), ("models.evaluate", "demo/1", "ok"),
                       ("models.promote", "demo/1", "ok"), ("models.evaluate", "demo/2", "ok"),
                       ("models.promote", "demo/2", "failed")]
    evaluated = audit_records(env)[1]
    assert evaluated["detail"] == {"dataset": "churn/1", "on_behalf_of": "bo", "gate_seq": 1, "passed": True}
    history = reg.gates.history("demo")
    assert [(r.version, r.actor, r.actor_id) for r in history] == [(1, "ana", f"key:{key_id}"),
                                                                  (2, "ana", f"key:{key_id}")]


def test_cli_evaluate_unknown_dataset(tmp_path, monkeypatch, capsys, demo_registry):
    admin_cli_env(tmp_path, monkeypatch, demo_registry)
    monkeypatch.setenv("MLGATE_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("MLGATE_SERVING__AUTH__ENABLED", "false")
    assert main(["models", "evaluate", "demo", "1", "--data", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
