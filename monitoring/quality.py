"""Live task metrics of labelled predictions (pure numpy).

Classifiers: accuracy (arg-max of the logged probabilities against the label), ROC AUC
(binary: of the second class's probability, ties counted half; more classes: the
mean of one-vs-rest AUCs over the classes present), log loss (probabilities clipped
to [1e-15, 1 - 1e-15]). Regressors: RMSE and MAE. Higher is better for accuracy and
AUC, lower for the rest.
"""

from __future__ import annotations

import math

import numpy as np

HIGHER_IS_BETTER = {"accuracy": True, "roc_auc": True, "log_loss": False, "rmse": False, "mae": False}
_EPS = 1e-15


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], x.size]
    ranks = np.empty(x.size)
    ranks[order] = ((starts + ends + 1) / 2.0)[group]
    return ranks


def binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties half; NaN if one class."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """``y``: class indices [n]; ``proba``: [n, classes]."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if y.size == 0:
        return {}
    if proba.shape[1] == 2:
        auc = binary_auc(y == 1, proba[:, 1])
    else:
        per_class = [binary_auc(y == k, proba[:, k]) for k in range(proba.shape[1])]
        present = [a for a in per_class if not math.isnan(a)]
        auc = float(np.mean(present)) if present else math.nan
    p_true = np.clip(proba[np.arange(y.size), y], _EPS, 1 - _EPS)
    return {"accuracy": float((proba.argmax(axis=1) == y).mean()), "roc_auc": auc,
            "log_loss": float(-np.log(p_true).mean())}


def regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = np.asarray(pred, dtype=np.float64).reshape(-1) - np.asarray(y, dtype=np.float64)
    if err.size == 0:
        return {}
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


def worse_than(metric: str, value: float, threshold: float) -> bool:
    """Is ``value`` on the bad side of ``threshold`` for this metric?"""
    if math.isnan(value):
        return False
    return value < threshold if HIGHER_IS_BETTER.get(metric, True) else value > threshold


def level(metric: str, value: float, threshold: float) -> float:
    """Severity, >= 1 when worse than the threshold (for alerts' hysteresis)."""
    if math.isnan(value):
        return 0.0
    if HIGHER_IS_BETTER.get(metric, True):
        return threshold / value if value > 0 else 1e6
    return value / threshold if threshold > 0 else 1e6
