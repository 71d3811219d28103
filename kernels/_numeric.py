"""Numba kernels for numeric columns: KS statistic, Wasserstein-1, quantile bins.

Every function here takes already *sorted, finite* float arrays (the public
wrappers and the profile guarantee that) and is callable from a user's own
``@njit`` code.  None of them allocates more than a few scalars except
:func:`quantile_edges_sorted`, which returns the (small) edge array.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Rows summed with plain adds before they are folded into the compensated total.
_SUM_BLOCK_ROWS = 256


@njit(cache=True, nogil=True)
def copy_finite(src, dst):
    """Copy the finite values of ``src`` to the front of ``dst``; return their count.

    NaN and +-inf are skipped (the caller counts them as missing). ``dst`` must be
    at least as long as ``src``; values are upcast to ``dst``'s dtype.  A column
    without missing values (the usual case) is copied and checked in one
    vectorised pass; only a column with missing values is compacted in a second.
    """
    n_missing = 0
    for i in range(src.size):
        x = src[i]
        dst[i] = x
        n_missing += not (abs(x) < np.inf)
    if n_missing == 0:
        return src.size
    n_finite = 0
    for i in range(src.size):
        x = src[i]
        if math.isfinite(x):
            dst[n_finite] = x
            n_finite += 1
    return n_finite


@njit(cache=True, nogil=True)
def _ks_walk(long_s, short_s):
    """Sup-distance of two ECDFs, walking the shorter sorted sample.

    Between two consecutive values of the short sample its ECDF is flat and the
    other ECDF rises, so the supremum is reached either just below or at one of
    the short sample's values: two states per distinct short value suffice.
    Each state is ``i / n_long - j / n_short`` with the same integer pair that
    ``scipy.stats.ks_2samp`` evaluates, hence the same float.
    """
    n_long, n_short = long_s.size, short_s.size
    d = 0.0
    i = 0
    j = 0
    while j < n_short:
        v = short_s[j]
        while i < n_long and long_s[i] < v:
            i += 1
        k = j + 1
        while k < n_short and short_s[k] == v:
            k += 1
        hi = i
        while hi < n_long and long_s[hi] == v:
            hi += 1
        d = max(d, abs(i / n_long - j / n_short), abs(hi / n_long - k / n_short))
        i = hi
        j = k
    return d


@njit(cache=True, nogil=True)
def ks_statistic_sorted(a, b):
    """Two-sided two-sample KS statistic ``sup |F_a - F_b|`` of sorted finite samples.

    An empty sample gives 0.0 (no evidence either way).
    """
    if a.size == 0 or b.size == 0:
        return 0.0
    if a.size >= b.size:
        return _ks_walk(a, b)
    return _ks_walk(b, a)


@njit(cache=True, nogil=True)
def _wasserstein_walk(long_s, short_s):
    """``sum |Q_long(t) - Q_short(t)| dt`` over the merged grid of quantile levels.

    Levels are scaled by ``n_long * n_short`` so every piece length is an exact
    integer: the long sample's value ``k`` covers ``[k*n_s, (k+1)*n_s)`` and
    meets at most two pieces ``[j*n_l, (j+1)*n_l)`` of the short sample.  Every
    term is non-negative, so there is no cancellation; a two-level sum (plain
    adds within a block, compensated across blocks) keeps the rounding far below
    1e-12 relative.
    """
    n_l, n_s = long_s.size, short_s.size
    last = n_s - 1
    total = 0.0
    comp = 0.0
    block = 0.0
    j = 0
    bound = n_l  # end of the short sample's piece j, in scaled units
    for k in range(n_l):
        start = k * n_s
        step = start >= bound
        j += step
        bound += step * n_l
        w_first = min(bound - start, n_s)
        x = long_s[k]
        block += abs(x - short_s[j]) * w_first + abs(x - short_s[min(j + 1, last)]) * (
            n_s - w_first
        )
        if (k + 1) % _SUM_BLOCK_ROWS == 0 or k == n_l - 1:
            t = total + block
            if abs(total) >= abs(block):
                comp += (total - t) + block
            else:
                comp += (block - t) + total
            total = t
            block = 0.0
    return (total + comp) / (float(n_l) * float(n_s))


@njit(cache=True, nogil=True)
def wasserstein_sorted(a, b):
    """Wasserstein-1 distance between two sorted finite samples (0.0 if one is empty)."""
    if a.size == 0 or b.size == 0:
        return 0.0
    if a.size >= b.size:
        return _wasserstein_walk(a, b)
    return _wasserstein_walk(b, a)


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def mean_std_sorted(a):
    """Mean and population standard deviation (ddof=0), two-pass; (0, 0) if empty.

    The sums are vectorised (re-associated into many partial sums, which is no
    less accurate than one running sum).
    """
    n = a.size
    if n == 0:
        return 0.0, 0.0
    s = 0.0
    for i in range(n):
        s += a[i]
    mean = s / n
    ss = 0.0
    for i in range(n):
        ss += (a[i] - mean) ** 2
    return mean, math.sqrt(ss / n)


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def std_about(a, mean):
    """Population standard deviation of ``a`` given its mean (the second pass of two)."""
    if a.size == 0:
        return 0.0
    ss = 0.0
    for i in range(a.size):
        ss += (a[i] - mean) ** 2
    return math.sqrt(ss / a.size)


@njit(cache=True, nogil=True)
def _quantile_linear(a, q):
    """numpy's default ('linear') quantile of a sorted sample, same rounding."""
    pos = (a.size - 1) * q
    lo = math.floor(pos)
    gamma = pos - lo
    if lo >= a.size - 1:
        return a[a.size - 1]
    lo_v, hi_v = a[lo], a[lo + 1]
    diff = hi_v - lo_v
    if gamma >= 0.5:
        return hi_v - diff * (1.0 - gamma)
    return lo_v + diff * gamma


@njit(cache=True, nogil=True)
def quantile_edges_sorted(a, bins):
    """Interior bin edges for PSI / JS from a sorted finite reference.

    Rule: the reference quantiles at ``k / bins`` (k = 1..bins-1, numpy 'linear'
    method), duplicates removed.  Bins are right-closed,
    ``(-inf, e0], (e0, e1], ..., (e_last, +inf)``, so the outer bins are open.
    If the first edge equals the reference minimum (a point mass at the low end,
    a constant column for instance), one more edge ``nextafter(min, -inf)`` is put
    in front, so values below the reference range get a bin of their own instead
    of hiding inside the point mass.  An empty reference gives no edges.
    """
    edges = np.empty(max(bins - 1, 0) + 1, dtype=np.float64)
    if a.size == 0 or bins < 2:
        return edges[:0]
    m = 1
    edges[1] = _quantile_linear(a, 1.0 / bins)
    for k in range(2, bins):
        e = _quantile_linear(a, k / bins)
        if e != edges[m]:
            m += 1
            edges[m] = e
    if edges[1] == a[0]:
        edges[0] = np.nextafter(a[0], -np.inf)
        return edges[: m + 1]
    return edges[1 : m + 1]


@njit(cache=True, nogil=True)
def bin_counts_sorted(a, edges, out):
    """Counts of the sorted finite sample ``a`` in the right-closed bins of ``edges``.

    ``out`` has ``edges.size + 1`` slots and is overwritten.
    """
    prev = 0
    for k in range(edges.size):
        pos = np.searchsorted(a, edges[k], side="right")
        out[k] = pos - prev
        prev = pos
    out[edges.size] = a.size - prev
