"""Multiple-testing correction across features and the dataset-level verdict."""

from __future__ import annotations

import numpy as np

CORRECTIONS = ("bh", "bonferroni", "none")


def bonferroni(pvalues) -> np.ndarray:
    """Bonferroni-adjusted p-values: ``min(1, m * p)``."""
    p = np.asarray(pvalues, dtype=np.float64)
    return np.minimum(p * p.size, 1.0)


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``).

    ``p_adj(i) = min over j >= i of m * p(j) / j`` on the sorted p-values, capped at 1.
    Rejecting ``p_adj < alpha`` controls the false discovery rate at ``alpha``.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted


def adjust_pvalues(pvalues, correction: str = "bh") -> np.ndarray:
    """Adjusted p-values for ``correction`` in ``'bh'``, ``'bonferroni'``, ``'none'``."""
    if correction == "bh":
        return benjamini_hochberg(pvalues)
    if correction == "bonferroni":
        return bonferroni(pvalues)
    if correction == "none":
        return np.asarray(pvalues, dtype=np.float64).copy()
    raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")


def drifted_share(drifted, evaluated) -> float:
    """Share of evaluated features that drifted; 0.0 when none was evaluated."""
    drifted = np.asarray(drifted, dtype=bool)
    evaluated = np.asarray(evaluated, dtype=bool)
    n = int(evaluated.sum())
    return float((drifted & evaluated).sum() / n) if n else 0.0


def dataset_drift(drifted, evaluated, drift_share: float = 0.5) -> tuple[float, bool]:
    """``(share, verdict)``: the dataset drifted when ``share >= drift_share``.

    A window in which no feature could be evaluated (all empty) is not drifted.
    """
    if not 0.0 < drift_share <= 1.0:
        raise ValueError(f"drift_share must be in (0, 1], got {drift_share}")
    share = drifted_share(drifted, evaluated)
    return share, bool(np.any(evaluated)) and share >= drift_share
