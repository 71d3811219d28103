"""Task metrics and per-slice metrics (pure numpy; tested against scipy as the oracle).

Classifiers: accuracy, ROC AUC (binary: of the second class's probability; more classes:
macro one-vs-rest), log loss (probabilities clipped to [1e-15, 1 - 1e-15]). Regressors:
RMSE and MAE. Higher is better for accuracy and ROC AUC; lower for the others.
"""

from __future__ import annotations

from typing import Any

import numpy as np

HIGHER_IS_BETTER = {"accuracy": True, "roc_auc": True, "log_loss": False, "rmse": False, "mae": False}
_EPS = 1e-15
MISSING_LEVEL = "<missing>"


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
    """Probability that a random positive scores above a random negative (ties count half)."""
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


def slice_metrics(task: str, y: np.ndarray, out: np.ndarray, categorical: dict[str, np.ndarray],
                  min_rows: int) -> dict[str, Any]:
    """Per categorical feature: a metric per level and the largest gap between gated slices.

    Classifiers use accuracy; regressors MAE, and their gap is relative to the overall MAE.
    Slices with fewer than ``min_rows`` rows are reported but left out of the gap.
    """
    if task == "classification":
        per_row = (out.argmax(axis=1) == y).astype(np.float64)
        name, scale = "accuracy", 1.0
    else:
        per_row = np.abs(np.asarray(out, dtype=np.float64).reshape(-1) - y)
        name, scale = "mae", float(per_row.mean()) or 1.0
    report: dict[str, Any] = {}
    for feature, values in categorical.items():
        levels = np.array([MISSING_LEVEL if v is None else str(v) for v in values], dtype=object)
        slices = {}
        for level in sorted(set(levels.tolist())):
            mask = levels == level
            slices[level] = {"rows": int(mask.sum()), name: float(per_row[mask].mean())}
        gated = [s[name] for s in slices.values() if s["rows"] >= min_rows]
        gap = (max(gated) - min(gated)) / scale if len(gated) >= 2 else 0.0
        report[feature] = {"metric": name, "slices": slices, "gap": float(gap)}
    return report


def max_slice_gap(slices: dict[str, Any]) -> tuple[str | None, float]:
    """The feature with the largest gap, and that gap."""
    if not slices:
        return None, 0.0
    feature = max(slices, key=lambda f: slices[f]["gap"])
    return feature, float(slices[feature]["gap"])
