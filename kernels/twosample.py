"""Single-column two-sample statistics with scipy-like signatures.

Each function drops NaN and +-inf from both samples (they are missing, not
values) and computes in float64; float32 input is upcast exactly.  The counts
of missing values are on the :class:`TestResult` attributes for the tests, and
on every row of the profile's report.  An empty sample (after dropping missing
values) gives the "no evidence" result: statistic 0.0, p-value 1.0, distances
0.0.  For many columns at once use :class:`kernels.ReferenceProfile`.
"""

from __future__ import annotations

import math

import numpy as np

from . import _memo
from ._binned import PSI_EPS, js_from_counts, psi_from_counts
from ._categorical import chi2_from_counts, code_counts, encode, fit_vocabulary
from ._columns import as_numeric, finite_padded
from ._histogram import bin_counts
from ._merge import SENTINELS, ks_wasserstein_padded
from ._numeric import bin_counts_sorted, mean_std_sorted, quantile_edges_sorted
from ._pvalues import KS_EXACT_MAX_N, ks_pvalue

_INT32_MAX = 2**31 - 1


class TestResult(tuple):
    """``(statistic, pvalue)``; also carries sample sizes and missing counts."""

    __test__ = False  # not a pytest class

    def __new__(cls, statistic, pvalue, n_ref, n_cur, n_missing_ref, n_missing_cur):
        self = super().__new__(cls, (float(statistic), float(pvalue)))
        self.n_ref, self.n_cur = int(n_ref), int(n_cur)
        self.n_missing_ref, self.n_missing_cur = int(n_missing_ref), int(n_missing_cur)
        return self

    @property
    def statistic(self) -> float:
        return self[0]

    @property
    def pvalue(self) -> float:
        return self[1]


def _exact_max_n(method: str, n1: int, n2: int) -> int:
    if method == "auto":
        return KS_EXACT_MAX_N
    if method == "asymp":
        return 0
    if method == "exact":
        g = math.gcd(n1, n2) or 1
        return max(n1, n2) if (n1 // g) * n2 <= _INT32_MAX else 0
    raise ValueError(f"method must be 'auto', 'exact' or 'asymp', got {method!r}")


def _sorted_sample(values, name: str) -> tuple[np.ndarray, int]:
    """``finite_padded(values)``, shared between calls on the same unchanged array."""
    arr = as_numeric(values, name)
    reusable = arr is values
    hit = _memo.lookup(arr) if reusable else None
    if hit is not None:
        return hit
    padded, n_missing = finite_padded(arr, name)
    if reusable:
        _memo.keep(arr, padded, n_missing)
    return padded, n_missing


def ks_2samp(ref, cur, method: str = "auto") -> TestResult:
    """Two-sided two-sample Kolmogorov-Smirnov test, as ``scipy.stats.ks_2samp``.

    ``method='auto'`` is exact when both samples have at most 10,000 values,
    asymptotic otherwise; ``'exact'`` and ``'asymp'`` force one (exact falls back
    to asymptotic when ``lcm(n1, n2)`` exceeds 2**31, as scipy does).
    """
    a, miss_a = _sorted_sample(ref, "ref")
    b, miss_b = _sorted_sample(cur, "cur")
    n_a, n_b = a.size - SENTINELS, b.size - SENTINELS
    d = _ks_w(a, b)[0]
    p = ks_pvalue(d, n_a, n_b, _exact_max_n(method, n_a, n_b))
    return TestResult(d, p, n_a, n_b, miss_a, miss_b)


def _ks_w(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """KS and Wasserstein of two ``finite_padded`` arrays."""
    return ks_wasserstein_padded(a, b, a.size - SENTINELS, b.size - SENTINELS)


def wasserstein(ref, cur) -> float:
    """Wasserstein-1 distance, as ``scipy.stats.wasserstein_distance(ref, cur)``."""
    a, _ = _sorted_sample(ref, "ref")
    b, _ = _sorted_sample(cur, "cur")
    return float(_ks_w(a, b)[1])


def normalise_by_std(distance: float, ref_std: float) -> float:
    """``distance / ref_std``; a constant reference gives 0.0 if equal, +inf otherwise."""
    if ref_std > 0.0:
        return distance / ref_std
    return 0.0 if distance == 0.0 else math.inf


def wasserstein_norm(ref, cur) -> float:
    """Wasserstein-1 divided by the reference standard deviation (ddof=0)."""
    a, _ = _sorted_sample(ref, "ref")
    b, _ = _sorted_sample(cur, "cur")
    return normalise_by_std(float(_ks_w(a, b)[1]), mean_std_sorted(a[:-SENTINELS])[1])


def quantile_edges(ref, bins: int = 10) -> np.ndarray:
    """Interior edges of the reference-quantile bins (rule: ``quantile_edges_sorted``)."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    a, _ = _sorted_sample(ref, "ref")
    return quantile_edges_sorted(a[:-SENTINELS], bins)


def histogram(values, edges) -> tuple[np.ndarray, int]:
    """Counts in the right-closed bins of ``edges`` (open outer bins) and #missing."""
    e = np.ascontiguousarray(edges, dtype=np.float64)
    out = np.zeros(e.size + 1, dtype=np.int64)
    n_missing = bin_counts(as_numeric(values), e, out)
    return out, int(n_missing)


def _binned_counts(ref, cur, bins: int) -> tuple[np.ndarray, np.ndarray]:
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    padded, _ = _sorted_sample(ref, "ref")
    a = padded[:-SENTINELS]
    edges = quantile_edges_sorted(a, bins)
    ref_counts = np.zeros(edges.size + 1, dtype=np.int64)
    bin_counts_sorted(a, edges, ref_counts)
    cur_arr = as_numeric(cur, "cur")
    hit = _memo.lookup(cur_arr) if cur_arr is cur else None
    if hit is None:  # not sorted already: one streaming pass instead of a sort
        return ref_counts, histogram(cur_arr, edges)[0]
    cur_counts = np.zeros(edges.size + 1, dtype=np.int64)
    bin_counts_sorted(hit[0][:-SENTINELS], edges, cur_counts)
    return ref_counts, cur_counts


def psi(ref, cur, bins: int = 10, eps: float = PSI_EPS) -> float:
    """Population Stability Index on reference-quantile bins with open outer bins."""
    return float(psi_from_counts(*_binned_counts(ref, cur, bins), eps))


def jensen_shannon(ref, cur, bins: int = 10, base: float = 2) -> float:
    """Jensen-Shannon distance on the same reference-quantile bins as :func:`psi`."""
    return float(js_from_counts(*_binned_counts(ref, cur, bins), float(base)))


def category_counts(ref, cur) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Counts over the reference vocabulary plus one pooled 'unseen' slot, and #missing."""
    vocabulary = fit_vocabulary(ref)
    k = vocabulary.size
    ref_counts = np.zeros(k + 1, dtype=np.int64)
    cur_counts = np.zeros(k + 1, dtype=np.int64)
    miss_ref = code_counts(encode(vocabulary, ref), k, ref_counts)
    miss_cur = code_counts(encode(vocabulary, cur), k, cur_counts)
    return ref_counts, cur_counts, int(miss_ref), int(miss_cur)


def chi2_categorical(ref_codes, cur_codes) -> TestResult:
    """Chi-squared homogeneity test on category counts (values or integer codes)."""
    ref_counts, cur_counts, miss_ref, miss_cur = category_counts(ref_codes, cur_codes)
    stat, _, p = chi2_from_counts(ref_counts, cur_counts)
    return TestResult(stat, p, ref_counts.sum(), cur_counts.sum(), miss_ref, miss_cur)


def psi_categorical(ref_codes, cur_codes, eps: float = PSI_EPS) -> float:
    """PSI on category shares; unseen categories form one bucket with reference share 0."""
    ref_counts, cur_counts, _, _ = category_counts(ref_codes, cur_codes)
    return float(psi_from_counts(ref_counts, cur_counts, eps))


def jensen_shannon_categorical(ref_codes, cur_codes, base: float = 2) -> float:
    """Jensen-Shannon distance on category shares (unseen pooled as for PSI)."""
    ref_counts, cur_counts, _, _ = category_counts(ref_codes, cur_codes)
    return float(js_from_counts(ref_counts, cur_counts, float(base)))
