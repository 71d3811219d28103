"""Task and slice metrics, against scipy / plain numpy as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from contracts import scores as tm
from training import slices as m


def _binary(n=500, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = rng.normal(size=n) + y
    if ties:
        score = np.round(score, 1)
    p1 = special.expit(score)
    return y, np.column_stack([1 - p1, p1])


@pytest.mark.parametrize("ties", [False, True])
def test_auc_equals_mann_whitney_u(ties):
    y, proba = _binary(ties=ties)
    u = stats.mannwhitneyu(proba[y == 1, 1], proba[y == 0, 1]).statistic
    assert tm.roc_auc(y, proba) == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()), rel=1e-12)


def test_auc_multiclass_is_macro_one_vs_rest():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    proba = special.softmax(rng.normal(size=(300, 3)) + np.eye(3)[y], axis=1)
    expected = np.mean([stats.mannwhitneyu(proba[y == k, k], proba[y != k, k]).statistic
                        / ((y == k).sum() * (y != k).sum()) for k in range(3)])
    assert tm.roc_auc(y, proba) == pytest.approx(expected, rel=1e-12)


def test_auc_single_class_is_nan():
    assert np.isnan(tm.binary_auc(np.ones(5, dtype=bool), np.arange(5.0)))


def test_log_loss_and_accuracy():
    y, proba = _binary()
    expected = -np.mean(special.xlogy(1, proba[np.arange(len(y)), y]))
    got = tm.classification_metrics(y, proba)
    assert got["log_loss"] == pytest.approx(expected, rel=1e-12)
    assert got["accuracy"] == pytest.approx(np.mean((proba[:, 1] > 0.5) == y))


def test_log_loss_clips_certain_mistakes():
    assert np.isfinite(tm.log_loss(np.array([0]), np.array([[0.0, 1.0]])))


def test_regression_metrics():
    rng = np.random.default_rng(2)
    y, pred = rng.normal(size=100), rng.normal(size=100)
    got = tm.regression_metrics(y, pred)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((y - pred) ** 2)))
    assert got["mae"] == pytest.approx(np.mean(np.abs(y - pred)))


def test_slices_and_gap():
    y = np.array([0, 0, 1, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7], [0.6, 0.4], [0.6, 0.4]])
    color = np.array(["r", "r", "g", "g", None, "g"], dtype=object)
    report = m.slice_metrics("classification", y, proba, {"color": color}, min_rows=1)["color"]
    assert report["slices"] == {"<missing>": {"rows": 1, "accuracy": 1.0}, "g": {"rows": 3, "accuracy": 2 / 3},
                                "r": {"rows": 2, "accuracy": 0.5}}
    assert report["gap"] == pytest.approx(0.5)
    small = m.slice_metrics("classification", y, proba, {"color": color}, min_rows=2)["color"]
    assert small["gap"] == pytest.approx(2 / 3 - 0.5)  # the 1-row slice is reported, not gated


def test_regression_slice_gap_is_relative_to_overall_mae():
    y = np.zeros(4)
    pred = np.array([1.0, 1.0, 3.0, 3.0])
    report = m.slice_metrics("regression", y, pred, {"c": np.array(["a", "a", "b", "b"], dtype=object)}, 1)
    assert report["c"]["gap"] == pytest.approx((3.0 - 1.0) / 2.0)
    assert m.max_slice_gap(report) == ("c", pytest.approx(1.0))
    assert m.max_slice_gap({}) == (None, 0.0)
