"""CBPE kernels (kernels.cbpe): the isotonic calibration against scipy's, the expected
confusion matrix against its definition, estimates against realised metrics on perfectly
calibrated seeded data, exact merges, and defined results without rows."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import isotonic_regression

import kernels
from contracts.scores import classification_metrics
from kernels.cbpe import fit_isotonic


def test_the_calibration_is_scipy_s_isotonic_regression_over_pooled_ties():
    rng = np.random.default_rng(3)
    scores = np.round(rng.uniform(size=2_000), 2)  # ties
    labels = (rng.uniform(size=2_000) < scores**2).astype(float)
    cal = fit_isotonic(scores, labels)
    knots, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    oracle = isotonic_regression(np.bincount(inverse, weights=labels) / counts, weights=counts).x
    assert_allclose(cal.x, knots)
    assert_allclose(cal.y, oracle, atol=1e-12)
    assert np.all(np.diff(cal(np.linspace(-1, 2, 50))) >= 0) and cal(np.array([-5.0, 5.0])).tolist() == [
        cal.y[0], cal.y[-1]]


def test_the_expected_confusion_follows_its_definition():
    ref = kernels.CbpeReference.fit(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0, 0, 1, 1]))
    window = ref.new_window().partial_fit(np.array([0.2, 0.7, 0.9, np.nan]))
    c = ref.calibration(np.array([0.2, 0.7, 0.9]))
    tp, fp = c[1] + c[2], (1 - c[1]) + (1 - c[2])
    fn, tn = c[0], 1 - c[0]
    assert_allclose(window.confusion, [tp, fp, fn, tn])
    est = window.estimate()
    assert est["accuracy"] == pytest.approx((tp + tn) / 3) and est["precision"] == pytest.approx(tp / (tp + fp))
    assert est["recall"] == pytest.approx(tp / (tp + fn)) and window.rows == 3


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_estimates_meet_realised_metrics_on_calibrated_scores(shift):
    """Labels drawn from P(y=1 | score) as the held-out split shows it: estimates within a few
    sampling errors of the realised metrics, also when the scores' distribution moves."""
    rng = np.random.default_rng(5)
    truth = lambda s: 1 / (1 + np.exp(-6 * (s - 0.5)))  # noqa: E731 - the true P(y=1 | score)
    held = rng.uniform(size=20_000)
    ref = kernels.CbpeReference.fit(held, rng.uniform(size=held.size) < truth(held))
    scores = np.clip(rng.beta(2 + 3 * shift, 2, size=20_000), 0, 1)  # covariate shift of the scores
    y = (rng.uniform(size=scores.size) < truth(scores)).astype(int)
    est, real = ref.estimate(scores), classification_metrics(y, np.c_[1 - scores, scores])
    assert est["accuracy"] == pytest.approx(real["accuracy"], abs=0.015)
    assert est["roc_auc"] == pytest.approx(real["roc_auc"], abs=0.015)


def test_windows_merge_exactly_and_without_rows_estimate_nothing():
    rng = np.random.default_rng(8)
    ref = kernels.CbpeReference.fit(rng.uniform(size=500), rng.uniform(size=500) < 0.5)
    scores = rng.uniform(size=3_000)
    whole = ref.new_window().partial_fit(scores)
    parts = ref.new_window().partial_fit(scores[:1_000]).merge(ref.new_window().partial_fit(scores[1_000:]))
    for key, value in whole.estimate().items():
        assert parts.estimate()[key] == pytest.approx(value, rel=1e-12), key
    empty = ref.new_window().estimate()
    assert set(empty) == set(kernels.cbpe.METRICS) and all(np.isnan(v) for v in empty.values())
    back = kernels.CbpeReference.from_arrays(ref.to_arrays())
    assert back.estimate(scores) == ref.estimate(scores)
