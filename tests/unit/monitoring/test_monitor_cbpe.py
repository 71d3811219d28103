"""Estimated performance before labels arrive (CBPE) on demo traffic with the real demo model
(its calibration fitted on the held-out split by training.quickfit): the estimate is within
TOLERANCE of the realised metric on unshifted data and under covariate shift; under concept
drift (the same inputs, other labels) it is not, and cannot be. Then the whole loop: the
monitor's estimate per window, its gauge, and the live accuracy labels give later."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from contracts import feedback as fb
from contracts.scores import classification_metrics
from monitoring.config import MonitoringConfig
from monitoring.monitor import ModelMonitor
from monitoring.reference import load_context
from monitoring.retrain import Roots
from registry import Registry
from tests.clock import ManualClock
from tests.unit.monitoring import logdata as ld
from training import demo_data
from training.evaluate import Scorer

TOLERANCE = 0.03  # |estimated - realised|, accuracy and ROC AUC, 3,000-row windows (measured: 0.004-0.022)
ROWS = 3_000


@pytest.fixture(scope="module")
def demo(demo_registry):
    mv = Registry(demo_registry).get("demo", 1)
    return load_context(mv), Scorer.from_version(mv)


def realised_and_estimated(demo, seed: int, shift: float = 0.0, concept: bool = False):
    ctx, scorer = demo
    cols = demo_data.generate(ROWS, seed=seed, shift=shift)
    proba = scorer.predict(cols).astype(np.float64)
    y = (cols[demo_data.TARGET] == demo_data.CLASS_LABELS[1]).astype(int)
    if concept:  # the plan's effect on churn reverses: same inputs, other labels
        y = np.where(cols["plan"] == "basic", 1 - y, y)
    return classification_metrics(y, proba), ctx.cbpe.estimate(proba[:, 1])


@pytest.mark.parametrize(("seed", "shift"), [(11, 0.0), (12, 0.0), (13, 0.5), (14, 1.0), (15, 1.5)])
def test_the_estimate_is_within_tolerance_unshifted_and_under_covariate_shift(demo, seed, shift):
    real, est = realised_and_estimated(demo, seed, shift)
    assert est["accuracy"] == pytest.approx(real["accuracy"], abs=TOLERANCE)
    assert est["roc_auc"] == pytest.approx(real["roc_auc"], abs=TOLERANCE)


def test_concept_drift_is_invisible_to_the_estimate(demo):
    real, est = realised_and_estimated(demo, 16, concept=True)
    unshifted, _ = realised_and_estimated(demo, 16)
    assert real["accuracy"] < unshifted["accuracy"] - 0.15  # the model got much worse ...
    assert est["accuracy"] > real["accuracy"] + 0.15  # ... and the probabilities alone do not say so


def test_the_monitor_estimates_each_window_and_labels_confirm_it(tmp_path, demo, demo_registry):
    ctx, scorer = demo
    logs = str(tmp_path / "logs")
    cols = demo_data.generate(2 * ROWS, seed=21)
    proba = scorer.predict(cols).astype(np.float32)
    table = ld.log_table(cols, "1", ld.T0_US + np.arange(2 * ROWS) * 1_000_000)
    out = table.schema.get_field_index("out_probabilities")
    table = table.set_column(out, "out_probabilities", pa.FixedSizeListArray.from_arrays(pa.array(proba.ravel()), 2))
    ld.write_log(logs, table)
    clock = ManualClock(ld.T0 + dt.timedelta(hours=3))
    truth = cols[demo_data.TARGET]
    fb.FeedbackWriter(logs).write("demo", fb.table([f"r{i}" for i in range(2 * ROWS)], [0] * (2 * ROWS), list(truth),
                                                   [None] * (2 * ROWS), clock.utc()))
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=86400,
                           window={"by": "rows", "size_rows": ROWS}, live={"min_labelled_rows": 100})
    m = ModelMonitor("demo", cfg, Roots(demo_registry, logs, "", ""), clock=clock)
    windows = m.tick().windows
    assert len(windows) == 2
    for w in windows:
        assert w.estimated["scored_rows"] == ROWS and w.live["labelled_rows"] == ROWS
        assert w.estimated["accuracy"] == pytest.approx(w.live["accuracy"], abs=TOLERANCE)
        assert w.estimated["roc_auc"] == pytest.approx(w.live["roc_auc"], abs=TOLERANCE)
    gauges = {(name, labels): v for (name, labels), v in m.rec.drain()["gauges"]}
    assert gauges[("mlgate_estimated_metric", ("demo", "1", "accuracy"))] == pytest.approx(
        windows[-1].estimated["accuracy"])
    assert m.store.read("windows")[-1]["estimated"]["scored_rows"] == ROWS
    assert ctx.cbpe_column == "probabilities[churn]"


@pytest.mark.parametrize(("labelled", "use_estimated", "fires"), [(0, True, True), (500, True, False),
                                                                  (0, False, False)])
def test_without_labels_the_retraining_policy_reads_the_estimate(labelled, use_estimated, fires):
    from types import SimpleNamespace

    from monitoring.policy import on_estimated

    cfg = MonitoringConfig(live={"thresholds": {"accuracy": 0.75}, "use_estimated": use_estimated})
    result = SimpleNamespace(version="1", judged=True, live={"labelled_rows": labelled},
                             estimated={"accuracy": 0.61, "roc_auc": 0.7, "scored_rows": ROWS})
    reason = on_estimated(result, cfg)
    assert (reason is not None) == fires
    if fires:
        assert reason.startswith("estimated accuracy 0.6100 (CBPE, 0 labels) worse than 0.75")
