"""Confidence-based performance estimation (CBPE, NannyML's method) for a binary classifier:
its accuracy, precision, recall, F1 and ROC AUC estimated from its scores alone, before (or
without) labels.

Fit once on a held-out split (scores and true labels): an isotonic calibration map (pool
adjacent violators, as NannyML), so a calibrated score ``c`` is ``P(y = 1 | score)``. In a
window each row then contributes its *expected* confusion: a row predicted positive
(``score > threshold``, the argmax of two classes at 0.5) is a true positive with probability
``c`` and a false positive with ``1 - c``; a row predicted negative a false negative with ``c``
and a true negative with ``1 - c``. The expected matrix gives accuracy, precision, recall and
F1. ROC AUC: each row's ``c`` and ``1 - c`` counted as expected positives and negatives at its
score, in ``bins`` equal score bins; the AUC of those expected counts (ties within a bin at
half).

Valid while ``P(y | score)`` stays as on the held-out split: under covariate shift that the
score captures, yes; under concept drift (the same inputs now have other labels), no
label-free estimate can see it. Windows are sums (merge exactly) and hold no rows. Pure
numerics: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

FORMAT_VERSION = 1
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


@njit(cache=True, nogil=True)
def _pava(y, w):
    """Pool adjacent violators: the non-decreasing fit of ``y`` (weights ``w``); block means."""
    n = y.size
    means = np.empty(n, dtype=np.float64)
    weights = np.empty(n, dtype=np.float64)
    sizes = np.empty(n, dtype=np.int64)
    top = 0
    for i in range(n):
        means[top], weights[top], sizes[top] = y[i], w[i], 1
        top += 1
        while top > 1 and means[top - 2] >= means[top - 1]:
            total = weights[top - 2] + weights[top - 1]
            means[top - 2] = (means[top - 2] * weights[top - 2] + means[top - 1] * weights[top - 1]) / total
            weights[top - 2] = total
            sizes[top - 2] += sizes[top - 1]
            top -= 1
    out = np.empty(n, dtype=np.float64)
    k = 0
    for b in range(top):
        for _ in range(sizes[b]):
            out[k] = means[b]
            k += 1
    return out


@dataclass(frozen=True)
class Calibration:
    """A non-decreasing map from score to ``P(y = 1)``: linear between ``x`` knots, flat outside."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)


def fit_isotonic(scores: np.ndarray, labels: np.ndarray) -> Calibration:
    """Isotonic regression of ``labels`` (0/1) on ``scores``; ties in score pooled first."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(y)
    s, y = s[ok], y[ok]
    if s.size == 0:
        raise ValueError("calibration needs at least one scored, labelled row")
    knots, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y) / counts
    return Calibration(knots, np.clip(_pava(means, counts.astype(np.float64)), 0.0, 1.0))


@dataclass(frozen=True)
class CbpeReference:
    calibration: Calibration
    threshold: float = 0.5
    bins: int = 1000

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5, bins: int = 1000) -> CbpeReference:
        """From held-out positive-class scores in [0, 1] and their true labels (0/1)."""
        return cls(fit_isotonic(scores, labels), threshold, bins)

    def new_window(self) -> CbpeWindow:
        return CbpeWindow(self)

    def estimate(self, scores: np.ndarray) -> dict[str, float]:
        """One array of scores as a whole window."""
        return self.new_window().partial_fit(scores).estimate()

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"format_version": np.int64(FORMAT_VERSION), "x": self.calibration.x, "y": self.calibration.y,
                "threshold": np.float64(self.threshold), "bins": np.int64(self.bins)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CbpeReference:
        if int(arrays["format_version"]) != FORMAT_VERSION:
            raise ValueError(f"CBPE reference format {int(arrays['format_version'])}, this code reads {FORMAT_VERSION}")
        cal = Calibration(np.asarray(arrays["x"], np.float64), np.asarray(arrays["y"], np.float64))
        return cls(cal, float(arrays["threshold"]), int(arrays["bins"]))


class CbpeWindow:
    """Expected confusion sums and expected positives/negatives per score bin."""

    def __init__(self, reference: CbpeReference) -> None:
        self.reference = reference
        self.rows = 0
        self.confusion = np.zeros(4, dtype=np.float64)  # tp, fp, fn, tn
        self.positives = np.zeros(reference.bins, dtype=np.float64)
        self.negatives = np.zeros(reference.bins, dtype=np.float64)

    def partial_fit(self, scores: np.ndarray) -> CbpeWindow:
        """Add a segment's positive-class scores (non-finite ones are skipped)."""
        s = np.asarray(scores, dtype=np.float64)
        s = s[np.isfinite(s)]
        c = self.reference.calibration(s)
        pred = s > self.reference.threshold
        self.confusion += (c[pred].sum(), (1 - c[pred]).sum(), c[~pred].sum(), (1 - c[~pred]).sum())
        bins = self.reference.bins
        idx = np.clip((s * bins).astype(np.int64), 0, bins - 1)
        self.positives += np.bincount(idx, weights=c, minlength=bins)
        self.negatives += np.bincount(idx, weights=1 - c, minlength=bins)
        self.rows += int(s.size)
        return self

    def merge(self, other: CbpeWindow) -> CbpeWindow:
        if other.reference is not self.reference:
            raise ValueError("windows of different references do not merge")
        self.rows += other.rows
        self.confusion += other.confusion
        self.positives += other.positives
        self.negatives += other.negatives
        return self

    def estimate(self) -> dict[str, float]:
        """Estimated metrics (NaN where undefined, e.g. no rows or no expected positives)."""
        tp, fp, fn, tn = self.confusion
        if self.rows == 0:
            return dict.fromkeys(METRICS, float("nan"))
        precision = tp / (tp + fp) if tp + fp > 0 else float("nan")
        recall = tp / (tp + fn) if tp + fn > 0 else float("nan")
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else float("nan")
        return {"accuracy": float((tp + tn) / self.rows), "precision": float(precision), "recall": float(recall),
                "f1": float(f1), "roc_auc": _auc(self.positives, self.negatives)}


def _auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    n_pos, n_neg = positives.sum(), negatives.sum()
    if n_pos <= 0 or n_neg <= 0:
        return float("nan")
    below = np.cumsum(negatives) - negatives  # negatives in lower bins
    return float((positives * (below + 0.5 * negatives)).sum() / (n_pos * n_neg))
