"""The rollout controller's decisions on recorded evidence: pass, fail on each check, too
little evidence, live labels optional (control.rollout.decide, pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from control.rollout.decide import decide
from control.rollout.evidence import Evidence, Side
from registry.rollouts import RolloutChecks, RolloutSpec

CHECKS = RolloutChecks(min_requests=100, min_shadow_rows=100, min_labels=50)
GOOD = Side(requests=1000, failed=2, p50_ms=4.0, p99_ms=12.0)


def evidence(candidate: Side = GOOD, baseline: Side = GOOD, **kw) -> Evidence:
    return Evidence(**{"since": 0.0, "until": 60.0, "baseline": baseline, "candidate": candidate,
                       "compared_rows": 1000, "js_divergence": 0.01, **kw})


def verdicts(d) -> dict[str, str]:
    return {c.name: c.verdict for c in d.checks}


def test_a_healthy_canary_holds_until_its_time_is_up_then_advances():
    assert decide("canary:5", 30, 60, evidence(), CHECKS).action == "hold"
    d = decide("canary:5", 60, 60, evidence(), CHECKS)
    assert d.action == "advance"
    assert verdicts(d) == {"error_rate": "passed", "p50_ratio": "passed", "p99_ratio": "passed",
                           "js_divergence": "passed"}


@pytest.mark.parametrize(("candidate", "kw", "check"), [
    (replace(GOOD, failed=40), {}, "error_rate"),  # 4% against 0.2%
    (replace(GOOD, p50_ms=9.0), {}, "p50_ratio"),  # over 1.5x + 2 ms slack
    (replace(GOOD, p99_ms=40.0), {}, "p99_ratio"),
    (GOOD, {"js_divergence": 0.3}, "js_divergence"),
    (replace(GOOD, labelled=500, accuracy=0.70), {}, "accuracy_drop"),
])
def test_one_failed_check_fails_at_once_whatever_the_time_in_the_phase(candidate, kw, check):
    baseline = replace(GOOD, labelled=500, accuracy=0.80) if check == "accuracy_drop" else GOOD
    d = decide("canary:25", 1, 600, evidence(candidate, baseline, **kw), CHECKS)
    assert d.action == "fail"
    assert [c.name for c in d.checks if c.verdict == "failed"] == [check]
    assert check in d.reason


def test_shadow_phase_checks_agreement():
    ok = evidence(shadow_rows=500, shadow_agreement=0.99)
    assert decide("shadow", 60, 60, ok, CHECKS).action == "advance"
    bad = decide("shadow", 5, 60, replace(ok, shadow_agreement=0.80), CHECKS)
    assert (bad.action, verdicts(bad)["shadow_agreement"]) == ("fail", "failed")
    waiting = decide("shadow", 60, 60, replace(ok, shadow_rows=20), CHECKS)
    assert (waiting.action, verdicts(waiting)["shadow_agreement"]) == ("hold", "waiting")
    assert "too little evidence for shadow_agreement" in waiting.reason


def test_too_little_traffic_holds_and_never_fails():
    few = Side(requests=30, failed=30, p50_ms=100.0, p99_ms=900.0)  # every one failed, but only 30
    d = decide("canary:5", 600, 60, evidence(few, compared_rows=30), CHECKS)
    assert d.action == "hold" and "too little evidence" in d.reason
    assert set(verdicts(d).values()) == {"waiting"}


def test_labels_count_once_both_versions_have_enough_and_never_hold_a_phase():
    few_labels = evidence(replace(GOOD, labelled=10, accuracy=0.1), replace(GOOD, labelled=900, accuracy=0.9))
    d = decide("canary:50", 60, 60, few_labels, CHECKS)
    assert (d.action, verdicts(d)["accuracy_drop"]) == ("advance", "waiting")
    no_labels = decide("canary:50", 60, 60, evidence(), CHECKS)
    assert "accuracy_drop" not in verdicts(no_labels)


def test_regressors_compare_live_loss():
    base, cand = replace(GOOD, labelled=100, mae=1.0), replace(GOOD, labelled=100, mae=1.5)
    d = decide("canary:5", 60, 60, evidence(cand, base), CHECKS)
    assert d.action == "fail" and verdicts(d)["loss_ratio"] == "failed"
    assert decide("canary:5", 60, 60, evidence(replace(cand, mae=1.1), base), CHECKS).action == "advance"


def test_sub_millisecond_latency_ratios_are_noise():
    fast, slower = replace(GOOD, p50_ms=0.2, p99_ms=0.5), replace(GOOD, p50_ms=0.6, p99_ms=1.6)  # 3x, +1.1 ms
    assert decide("canary:5", 60, 60, evidence(slower, fast), CHECKS).action == "advance"


def test_models_without_a_per_row_prediction_skip_the_divergence():
    d = decide("canary:5", 60, 60, evidence(js_divergence=None, compared_rows=0), CHECKS, has_prediction=False)
    assert d.action == "advance" and "js_divergence" not in verdicts(d)


def test_spec_phases_and_shares():
    spec = RolloutSpec(rollout_id="r", model="m", candidate=2, baseline=1, steps_pct=(5, 50, 100), step_s=60,
                       shadow_first_s=30, shadow_share=0.5)
    assert spec.phases() == ["shadow", "canary:5", "canary:50"]
    assert [spec.phase_share(p) for p in spec.phases()] == [0.5, 0.05, 0.5]
    assert [spec.phase_s(p) for p in spec.phases()] == [30, 60, 60]
    for steps, why in [((5, 50), "must be 100"), ((50, 5, 100), "increase"), ((0, 100), "percentage")]:
        with pytest.raises(ValueError, match=why):
            RolloutSpec(rollout_id="r", model="m", candidate=2, baseline=1, steps_pct=steps)


def test_before_labels_the_cbpe_estimate_stands_in_for_live_accuracy():
    base = replace(GOOD, estimated_rows=500, estimated_accuracy=0.85)
    worse = replace(GOOD, estimated_rows=500, estimated_accuracy=0.70)
    d = decide("canary:5", 1, 60, evidence(worse, base), CHECKS)
    assert d.action == "fail" and verdicts(d)["estimated_accuracy_drop"] == "failed"
    assert "CBPE" in [c for c in d.checks if c.name == "estimated_accuracy_drop"][0].detail
    assert decide("canary:5", 60, 60, evidence(replace(worse, estimated_accuracy=0.84), base), CHECKS).action == \
        "advance"
    labelled = decide("canary:5", 60, 60, evidence(replace(worse, labelled=500, accuracy=0.9),
                                                   replace(base, labelled=500, accuracy=0.9)), CHECKS)
    assert labelled.action == "advance" and "estimated_accuracy_drop" not in verdicts(labelled)  # labels win
