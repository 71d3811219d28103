"""Scores per feature and the drift verdict returned by ``ReferenceProfile.score``.

Rows with no observation on one side (an empty window, a column entirely
missing) carry the "no evidence" values (statistic 0.0, p-value 1.0,
distances 0.0) and ``evaluated = False``; they never count as drifted and are
left out of the multiple-testing correction and of the drifted share.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .multitest import adjust_pvalues, dataset_drift


def _share(part: np.ndarray, total: np.ndarray) -> np.ndarray:
    return np.divide(part, total, out=np.zeros(part.shape), where=total > 0)


@dataclass(frozen=True)
class NumericScores:
    """One entry per numeric feature, in profile order."""

    names: tuple[str, ...]
    ks_statistic: np.ndarray
    ks_pvalue: np.ndarray
    wasserstein: np.ndarray
    wasserstein_norm: np.ndarray
    psi: np.ndarray
    jensen_shannon: np.ndarray
    n_ref: np.ndarray
    n_cur: np.ndarray
    missing_share_ref: np.ndarray
    missing_share_cur: np.ndarray


@dataclass(frozen=True)
class CategoricalScores:
    """One entry per categorical feature, in profile order."""

    names: tuple[str, ...]
    chi2: np.ndarray
    chi2_pvalue: np.ndarray
    psi: np.ndarray
    jensen_shannon: np.ndarray
    unseen_share_cur: np.ndarray
    n_ref: np.ndarray
    n_cur: np.ndarray
    missing_share_ref: np.ndarray
    missing_share_cur: np.ndarray


@dataclass(frozen=True)
class DriftReport:
    """Per-feature tests (numeric first, then categorical) and the dataset verdict.

    ``pvalue`` is the KS p-value for numeric and the chi-squared p-value for
    categorical features; ``drifted = evaluated & (pvalue_adjusted < alpha)``.
    """

    numeric: NumericScores
    categorical: CategoricalScores
    features: tuple[str, ...]
    pvalue: np.ndarray
    pvalue_adjusted: np.ndarray
    evaluated: np.ndarray
    drifted: np.ndarray
    drifted_share: float
    dataset_drift: bool
    alpha: float
    correction: str

    def to_rows(self) -> list[dict]:
        """One plain dict per feature (JSON-ready floats, ints, bools and strings)."""
        rows = []
        for table, kind in ((self.numeric, "numeric"), (self.categorical, "categorical")):
            for i, name in enumerate(table.names):
                row = {"feature": name, "kind": kind}
                for fld in fields(table):
                    if fld.name != "names":
                        row[fld.name] = getattr(table, fld.name)[i].item()
                rows.append(row)
        for row, p, q, ev, dr in zip(
            rows, self.pvalue, self.pvalue_adjusted, self.evaluated, self.drifted
        ):
            row.update(pvalue=float(p), pvalue_adjusted=float(q), evaluated=bool(ev))
            row["drifted"] = bool(dr)
        return rows


def build_report(
    numeric: NumericScores,
    categorical: CategoricalScores,
    alpha: float = 0.05,
    correction: str = "bh",
    drift_share: float = 0.5,
) -> DriftReport:
    """Correct the per-feature p-values over the evaluated features and decide."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    pvalue = np.concatenate([numeric.ks_pvalue, categorical.chi2_pvalue])
    n_ref = np.concatenate([numeric.n_ref, categorical.n_ref])
    n_cur = np.concatenate([numeric.n_cur, categorical.n_cur])
    evaluated = (n_ref > 0) & (n_cur > 0)
    adjusted = np.ones_like(pvalue)
    adjusted[evaluated] = adjust_pvalues(pvalue[evaluated], correction)
    drifted = evaluated & (adjusted < alpha)
    share, verdict = dataset_drift(drifted, evaluated, drift_share)
    return DriftReport(
        numeric=numeric,
        categorical=categorical,
        features=numeric.names + categorical.names,
        pvalue=pvalue,
        pvalue_adjusted=adjusted,
        evaluated=evaluated,
        drifted=drifted,
        drifted_share=share,
        dataset_drift=verdict,
        alpha=alpha,
        correction=correction,
    )


def missing_shares(n_missing: np.ndarray, n_present: np.ndarray) -> np.ndarray:
    """Missing share per feature (0.0 for a feature with no rows at all)."""
    return _share(n_missing.astype(np.float64), (n_missing + n_present).astype(np.float64))
