"""Task metrics of a model's predictions against labels (pure numpy; tested against scipy).

One definition for every package that judges a model: training's evaluation and gate, and
the monitor's live quality, so a threshold set from one means the same on the other.
Classifiers: accuracy (arg-max of the probabilities), ROC AUC (binary: of the second
class's probability, ties counted half; more classes: the mean of the one-vs-rest AUCs
of the classes present), log loss (probabilities clipped to [1e-15, 1 - 1e-15]).
Regressors: RMSE and MAE. Higher is better for accuracy and ROC AUC, lower for the rest.
"""

from __future__ import annotations

import numpy as np

HIGHER_IS_BETTER = {"accuracy": True, "roc_auc": True, "log_loss": False, "rmse": False, "mae": False}
_EPS = 1e-15


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    first = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(x)]
    avg = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = avg[group]
    return ranks


def binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half);
    NaN when only one class is present."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    if proba.shape[1] == 2:
        return binary_auc(y == 1, proba[:, 1])
    per_class = [binary_auc(y == k, proba[:, k]) for k in range(proba.shape[1])]
    present = [a for a in per_class if a == a]
    return float(np.mean(present)) if present else float("nan")


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y].astype(np.float64), _EPS, 1 - _EPS)
    return float(-np.log(p).mean())


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """``y``: class indices; ``proba``: [rows, classes]."""
    return {
        "accuracy": float((proba.argmax(axis=1) == y).mean()),
        "roc_auc": roc_auc(y, proba),
        "log_loss": log_loss(y, proba),
    }


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = np.asarray(pred, dtype=np.float64).reshape(-1) - np.asarray(y, dtype=np.float64)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
