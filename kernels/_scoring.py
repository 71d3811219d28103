"""Scoring a current window against a fitted reference, per feature kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import _batch
from ._binned import js_from_counts, psi_from_counts
from ._categorical import chi2_from_counts
from ._columns import SortedColumns, as_numeric, default_threads, map_threads
from ._pvalues import KS_EXACT_MAX_N
from ._reference import CategoricalReference, NumericReference
from .report import CategoricalScores, NumericScores, missing_shares


def score_numeric_features(
    ref: NumericReference, cur: SortedColumns, eps: float, base: float
) -> NumericScores:
    """All numeric statistics for every feature in one parallel kernel call."""
    n = len(ref.names)
    out = np.zeros((n, _batch.N_NUMERIC_STATS))
    cur_bins = np.zeros_like(ref.bin_counts)
    r = ref.sorted
    _batch.score_numeric(
        r.values, r.starts, r.counts, ref.std,
        cur.values, cur.starts, cur.counts,
        ref.edges, ref.edge_starts, ref.bin_counts, eps, base, KS_EXACT_MAX_N,
        out, cur_bins,
    )  # fmt: skip
    return NumericScores(
        names=ref.names,
        ks_statistic=out[:, _batch.KS].copy(),
        ks_pvalue=out[:, _batch.KS_P].copy(),
        wasserstein=out[:, _batch.WASSERSTEIN].copy(),
        wasserstein_norm=out[:, _batch.WASSERSTEIN_NORM].copy(),
        psi=out[:, _batch.PSI].copy(),
        jensen_shannon=out[:, _batch.JS].copy(),
        n_ref=r.counts.copy(),
        n_cur=cur.counts.copy(),
        missing_share_ref=missing_shares(r.n_missing, r.counts),
        missing_share_cur=missing_shares(cur.n_missing, cur.counts),
    )


def score_categorical_features(
    ref: CategoricalReference, cur_counts: np.ndarray, cur_missing: np.ndarray, eps: float,
    base: float,
) -> CategoricalScores:  # fmt: skip
    """Chi-squared, PSI and JS on the category counts of every categorical feature."""
    n = len(ref.names)
    stats = np.zeros((n, 4))
    n_ref = np.zeros(n, dtype=np.int64)
    n_cur = np.zeros(n, dtype=np.int64)
    unseen = np.zeros(n, dtype=np.int64)
    for f in range(n):
        rc, cc = ref.counts[ref.counts_slice(f)], cur_counts[ref.counts_slice(f)]
        stat, _, p = chi2_from_counts(rc, cc)
        stats[f] = stat, p, psi_from_counts(rc, cc, eps), js_from_counts(rc, cc, base)
        n_ref[f], n_cur[f], unseen[f] = rc.sum(), cc.sum(), cc[-1]
    return CategoricalScores(
        names=ref.names,
        chi2=stats[:, 0].copy(),
        chi2_pvalue=stats[:, 1].copy(),
        psi=stats[:, 2].copy(),
        jensen_shannon=stats[:, 3].copy(),
        unseen_share_cur=np.divide(unseen, n_cur, out=np.zeros(n), where=n_cur > 0),
        n_ref=n_ref,
        n_cur=n_cur,
        missing_share_ref=missing_shares(ref.n_missing, n_ref),
        missing_share_cur=missing_shares(cur_missing, n_cur),
    )


@dataclass(frozen=True)
class BinnedScores:
    """PSI and JS of numeric features from one streaming histogram pass (no sort)."""

    names: tuple[str, ...]
    psi: np.ndarray
    jensen_shannon: np.ndarray
    n_cur: np.ndarray
    missing_share_cur: np.ndarray
    bin_counts: np.ndarray


def score_binned_features(
    ref: NumericReference, columns: Sequence[np.ndarray], eps: float, base: float,
    n_threads: int | None,
) -> BinnedScores:  # fmt: skip
    """Histogram every raw column on its reference edges, features split over threads."""
    n = len(ref.names)
    cols = [as_numeric(c, name) for c, name in zip(columns, ref.names)]
    stats = np.zeros((n, 3))
    cur_bins = np.zeros_like(ref.bin_counts)
    threads = max(1, min(n_threads or default_threads(), n))
    chunks = np.array_split(np.arange(n), threads)

    def work(chunk: int) -> None:
        for f in chunks[chunk].tolist():
            _batch.binned_feature(
                cols[f], f, ref.edges, ref.edge_starts, ref.bin_counts, eps, base, cur_bins, stats
            )

    map_threads(work, len(chunks), threads)
    n_missing = stats[:, 2].astype(np.int64)
    n_cur = np.array([c.size for c in cols], dtype=np.int64) - n_missing
    return BinnedScores(
        ref.names, stats[:, 0].copy(), stats[:, 1].copy(), n_cur,
        missing_shares(n_missing, n_cur), cur_bins,
    )  # fmt: skip
