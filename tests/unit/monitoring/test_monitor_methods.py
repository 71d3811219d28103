"""The method rule, the corrected verdict and the missing-value check."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from kernels import ReferenceProfile
from monitoring import methods
from monitoring.config import DriftConfig
from monitoring.drift import judge


@pytest.mark.parametrize(("kind", "n_ref", "n_cur", "expected"), [
    ("numeric", 10_000, 2_000, "ks"),
    ("categorical", 10_000, 2_000, "chi2"),
    ("numeric", 1_000_000, 1_000_000, "wasserstein_norm"),
    ("categorical", 1_000_000, 1_000_000, "jensen_shannon"),
])
def test_auto_rule_switches_from_tests_to_distances_on_effective_size(kind, n_ref, n_cur, expected):
    assert methods.choose("f", kind, n_ref, n_cur, DriftConfig())[0] == expected
    assert methods.effective_n(n_ref, n_cur) == n_ref * n_cur / (n_ref + n_cur)


def test_overrides_per_type_then_per_feature():
    cfg = DriftConfig(numeric_method="psi", methods={"age": "wasserstein_norm", "plan": "ks"})
    assert methods.choose("income", "numeric", 10, 10, cfg) == ("psi", "drift.numeric_method")
    assert methods.choose("age", "numeric", 10, 10, cfg) == ("wasserstein_norm", "drift.methods[age]")
    method, why = methods.choose("plan", "categorical", 10, 10, cfg)  # ks cannot test categories
    assert method == "chi2" and why.startswith("auto")


def _rows(shift: float, seed: int = 0, n: int = 3000) -> tuple[ReferenceProfile, list[dict]]:
    rng = np.random.default_rng(seed)
    ref = {f"x{i}": rng.normal(size=20_000) for i in range(4)}
    ref["c"] = rng.choice(np.array(["a", "b", "c"], dtype=object), 20_000)
    cur = {f"x{i}": rng.normal(shift if i < 2 else 0.0, 1.0, n) for i in range(4)}
    cur["c"] = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.2, 0.3, 0.5])
    cur["x3"][: n // 4] = np.nan
    profile = ReferenceProfile.fit(ref, categorical=["c"])
    return profile, profile.score(cur).to_rows()


def test_tests_are_corrected_together_like_the_kernels_report():
    profile, rows = _rows(0.2)
    results = judge(rows, "input", DriftConfig())
    p = np.array([r["pvalue"] for r in rows])
    expected = stats.false_discovery_control(p, method="bh")
    np.testing.assert_allclose([f.pvalue_adjusted for f in results], expected, rtol=1e-12)
    assert [f.drifted for f in results] == [bool(q < 0.05) for q in expected]
    assert [f.drifted for f in results] == [r["drifted"] for r in rows]  # same verdicts as kernels' own
    assert {f.feature for f in results if f.drifted} >= {"x0", "x1", "c"}
    bonf = judge(rows, "input", DriftConfig(correction="bonferroni"))
    np.testing.assert_allclose([f.pvalue_adjusted for f in bonf], np.minimum(p * p.size, 1.0))


def test_distance_methods_decide_on_their_threshold():
    _, rows = _rows(0.5)
    cfg = DriftConfig(numeric_method="wasserstein_norm", categorical_method="jensen_shannon",
                      thresholds={"wasserstein_norm": 0.3, "jensen_shannon": 0.5, "psi": 0.2})
    results = {f.feature: f for f in judge(rows, "input", cfg)}
    assert results["x0"].pvalue is None and results["x0"].drifted and results["x0"].level > 1
    assert not results["x2"].drifted and results["x2"].level < 1
    assert results["c"].method == "jensen_shannon" and results["c"].threshold == 0.5
    assert results["x0"].value == next(r["wasserstein_norm"] for r in rows if r["feature"] == "x0")


def test_missing_share_rise_is_flagged():
    _, rows = _rows(0.0)
    results = {f.feature: f for f in judge(rows, "input", DriftConfig(max_missing_increase=0.2))}
    assert results["x3"].missing_share_cur == pytest.approx(0.25) and results["x3"].missing_share_ref == 0.0
    assert results["x3"].missing_drifted and not results["x2"].missing_drifted
    assert not {f.feature: f for f in judge(rows, "input", DriftConfig(max_missing_increase=0.3))}[
        "x3"].missing_drifted
