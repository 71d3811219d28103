"""The gate's decisions: tolerances, slice gap, latency, comparability, no production."""

from __future__ import annotations

import pytest

from training.config import GateConfig
from training.gate import decide


def _eval(accuracy=0.80, auc=0.85, log_loss=0.45, gap=0.1, p50=1.0, p95=2.0):
    return {"metrics": {"accuracy": accuracy, "roc_auc": auc, "log_loss": log_loss},
            "max_slice_gap": {"feature": "plan", "gap": gap},
            "latency": {"batch_sizes": {"1": {"p50_ms": p50, "p95_ms": p95, "rows_per_s": 1e3}}}}


CFG = GateConfig(metric_tolerances={"accuracy": 0.01, "roc_auc": 0.01, "log_loss": 0.05}, max_slice_gap=0.2,
                 max_latency_ratio=1.5, latency_slack_ms=0.5)


def _failed(decision) -> set[str]:
    return {c["check"] for c in decision["checks"] if not c["passed"]}


def test_no_production_applies_absolute_checks_only():
    d = decide(_eval(accuracy=0.1), None, CFG)
    assert d["passed"] and d["compared_with"] is None and d["reasons"] == []
    assert {c["check"] for c in d["checks"]} == {"slice_gap", "latency:1"}


def test_equal_or_better_passes():
    d = decide(_eval(accuracy=0.81, log_loss=0.44), _eval(), CFG, production_version=3)
    assert d["passed"] and d["compared_with"] == 3


def test_within_tolerance_passes_beyond_fails():
    assert decide(_eval(accuracy=0.80 * 0.991), _eval(), CFG, production_version=1)["passed"]
    d = decide(_eval(accuracy=0.80 * 0.98), _eval(), CFG, production_version=1)
    assert not d["passed"] and _failed(d) == {"metric:accuracy"}
    assert "accuracy 0.7840 vs production 0.8000" in d["reasons"][0]


def test_lower_is_better_for_log_loss():
    assert decide(_eval(log_loss=0.45 * 1.04), _eval(), CFG, production_version=1)["passed"]
    d = decide(_eval(log_loss=0.45 * 1.06), _eval(), CFG, production_version=1)
    assert _failed(d) == {"metric:log_loss"}


def test_nan_metric_fails():
    d = decide(_eval(auc=float("nan")), _eval(), CFG, production_version=1)
    assert _failed(d) == {"metric:roc_auc"}


def test_slice_gap_limit():
    d = decide(_eval(gap=0.25), None, CFG)
    assert not d["passed"] and _failed(d) == {"slice_gap"} and "plan" in d["reasons"][0]


@pytest.mark.parametrize("p50,ok", [(2.0, True), (2.0 * 1.5 + 0.5, True), (3.6, False)])
def test_latency_ratio_with_slack(p50, ok):
    d = decide(_eval(p50=p50), _eval(p50=2.0), CFG, production_version=1)
    assert d["passed"] is ok


def test_absolute_p95_limit():
    cfg = CFG.model_copy(update={"max_p95_latency_ms": 1.5})
    assert _failed(decide(_eval(p95=2.0), None, cfg)) == {"latency:1"}


def test_incomparable_production_fails_with_the_reason():
    d = decide(_eval(), None, CFG, production_version=4, incompatible="the test split lacks its input(s) zip")
    assert not d["passed"] and _failed(d) == {"comparable"}
    assert "production version 4 cannot be evaluated here: the test split lacks" in d["reasons"][0]


def test_record_carries_the_settings():
    assert decide(_eval(), None, CFG)["config"]["max_slice_gap"] == 0.2
