"""Live task metrics against numpy/scipy oracles (no sklearn)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitoring import quality


def oracle_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney U of the positives over the negatives, divided by n_pos * n_neg."""
    pos, neg = score[y == 1], score[y == 0]
    return stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic / (pos.size * neg.size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_match_oracles(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    p = np.clip(rng.beta(2, 2, 500) * 0.6 + 0.4 * y, 0, 1)
    p[::7] = np.round(p[::7], 1)  # ties
    p[0] = 1.0  # clipped in log loss
    proba = np.stack([1 - p, p], axis=1)
    got = quality.classification(y, proba)
    assert got["accuracy"] == pytest.approx(np.mean((p > 0.5).astype(int) == y))  # ties go to class 0
    assert got["roc_auc"] == pytest.approx(oracle_auc(y, p), abs=1e-12)
    clipped = np.clip(proba[np.arange(500), y], 1e-15, 1 - 1e-15)
    assert got["log_loss"] == pytest.approx(-np.mean(np.log(clipped)), rel=1e-12)


def test_multiclass_auc_is_macro_one_vs_rest():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3)) + np.eye(3)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = quality.classification(y, proba)
    expected = np.mean([oracle_auc((y == k).astype(int), proba[:, k]) for k in range(3)])
    assert got["roc_auc"] == pytest.approx(expected, abs=1e-12)
    assert got["accuracy"] == pytest.approx(np.mean(proba.argmax(1) == y))


def test_single_class_auc_is_nan_not_an_error():
    got = quality.classification(np.ones(10, dtype=int), np.tile([0.3, 0.7], (10, 1)))
    assert np.isnan(got["roc_auc"]) and got["accuracy"] == 1.0


def test_regression_metrics():
    rng = np.random.default_rng(4)
    y, pred = rng.normal(size=300), rng.normal(size=300)
    got = quality.regression(y, pred)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)))
    assert got["mae"] == pytest.approx(np.mean(np.abs(pred - y)))


def test_direction_of_thresholds():
    assert quality.worse_than("accuracy", 0.7, 0.75) and not quality.worse_than("accuracy", 0.8, 0.75)
    assert quality.worse_than("log_loss", 0.9, 0.6) and not quality.worse_than("log_loss", 0.5, 0.6)
    assert quality.level("accuracy", 0.5, 0.75) == pytest.approx(1.5)
    assert quality.level("rmse", 2.0, 4.0) == pytest.approx(0.5)
