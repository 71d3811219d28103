"""Live task metrics of labelled predictions: ``contracts.scores`` (the same
definitions as training's evaluation) on what a window has; an empty window has none."""

from __future__ import annotations

import math

import numpy as np

from contracts.scores import HIGHER_IS_BETTER, classification_metrics, regression_metrics


def classification(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """``y``: class indices [n]; ``proba``: [n, classes]."""
    y = np.asarray(y, dtype=np.int64)
    return classification_metrics(y, np.asarray(proba, dtype=np.float64)) if y.size else {}


def regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return regression_metrics(y, pred) if np.size(y) else {}


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
