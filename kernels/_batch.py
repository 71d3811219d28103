"""Many-column kernels: one ``prange`` iteration per feature over packed buffers.

Ragged per-feature data lives in flat arrays with offsets: sorted values
(``SortedColumns``), bin edges (``edge_starts``, ``F + 1`` offsets) and bin
counts (feature ``f`` owns ``edge_starts[f] + f .. edge_starts[f + 1] + f + 1``,
one more slot than it has edges).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._binned import js_from_counts, psi_from_counts
from ._histogram import bin_counts
from ._merge import SENTINELS, ks_wasserstein_padded
from ._numeric import bin_counts_sorted, quantile_edges_sorted, std_about
from ._pvalues import ks_pvalue

#: Columns of the ``out`` matrix written by :func:`score_numeric`.
KS, KS_P, WASSERSTEIN, WASSERSTEIN_NORM, PSI, JS = range(6)
N_NUMERIC_STATS = 6


@njit(cache=True, nogil=True)
def _normalise_by_std(distance, std):
    if std > 0.0:
        return distance / std
    return 0.0 if distance == 0.0 else np.inf


@njit(cache=True, nogil=True)
def fit_feature(a, total, f, bins, edges_out, n_edges_out, ref_bins_out, moments_out):
    """Edges, reference bin counts and (mean, std) of feature ``f``'s sorted values ``a``.

    ``total`` is the sum of ``a`` (the sort computed it), so the moments take one
    more pass, not two.
    ``edges_out`` / ``ref_bins_out`` are laid out with a fixed stride of ``bins``
    (at most ``bins`` edges, ``bins + 1`` counts) and compacted by the caller.
    Called right after ``a`` is sorted, while it is still in cache.
    """
    e = quantile_edges_sorted(a, bins)
    n_edges_out[f] = e.size
    edges_out[f * bins : f * bins + e.size] = e
    bin_counts_sorted(a, e, ref_bins_out[f * (bins + 1) : f * (bins + 1) + e.size + 1])
    mean = total / a.size if a.size else 0.0
    moments_out[f, 0] = mean
    moments_out[f, 1] = std_about(a, mean)


@njit(parallel=True, cache=True)
def score_numeric(
    ref_values, ref_starts, ref_counts, ref_std,
    cur_values, cur_starts, cur_counts,
    edges, edge_starts, ref_bins, eps, base, exact_max_n,
    out, cur_bins_out,
):  # fmt: skip
    """KS (statistic, p-value), Wasserstein (raw, normalised), PSI and JS per feature."""
    for f in prange(ref_counts.size):
        n_a, n_b = ref_counts[f], cur_counts[f]
        a = ref_values[ref_starts[f] : ref_starts[f] + n_a + SENTINELS]
        b = cur_values[cur_starts[f] : cur_starts[f] + n_b + SENTINELS]
        e = edges[edge_starts[f] : edge_starts[f + 1]]
        lo, hi = edge_starts[f] + f, edge_starts[f + 1] + f + 1
        cb = cur_bins_out[lo:hi]
        d, w = ks_wasserstein_padded(a, b, n_a, n_b)
        out[f, KS] = d
        out[f, KS_P] = ks_pvalue(d, n_a, n_b, exact_max_n)
        out[f, WASSERSTEIN] = w
        out[f, WASSERSTEIN_NORM] = _normalise_by_std(w, ref_std[f])
        bin_counts_sorted(b[:n_b], e, cb)
        out[f, PSI] = psi_from_counts(ref_bins[lo:hi], cb, eps)
        out[f, JS] = js_from_counts(ref_bins[lo:hi], cb, base)


@njit(cache=True, nogil=True)
def binned_feature(x, f, edges, edge_starts, ref_bins, eps, base, cur_bins_out, stats_out):
    """Streaming histogram of feature ``f``'s raw column ``x`` (packed layout as above).

    Writes ``stats_out[f] = (PSI, JS, #missing)``.
    """
    e = edges[edge_starts[f] : edge_starts[f + 1]]
    lo, hi = edge_starts[f] + f, edge_starts[f + 1] + f + 1
    cb = cur_bins_out[lo:hi]
    n_missing = bin_counts(x, e, cb)
    stats_out[f, 0] = psi_from_counts(ref_bins[lo:hi], cb, eps)
    stats_out[f, 1] = js_from_counts(ref_bins[lo:hi], cb, base)
    stats_out[f, 2] = n_missing
