"""KS statistic and Wasserstein-1 in one branch-free merge of two sorted samples.

This is the hot kernel of the profile path.  Both samples are sorted, finite
and followed in memory by a ``+inf`` sentinel (``a[n_a] == inf``), so a step
never checks bounds (and prefetch hints run ahead of each chain).  The merged order is cut into four chains at quantiles of
``b``; the chains are walked in lock-step, which gives the CPU four independent
dependency chains instead of one data-dependent branch per value.

Per step the state ``(i, j)`` counts the values taken from ``a`` and ``b``;
``dd = i * n_b - j * n_a`` is the ECDF difference scaled by ``n_a * n_b``
(exact integers).  A state is a real ECDF point only at the end of a run of
ties (next value strictly larger), and only those enter the KS maximum;
the Wasserstein sum ``|dd| * (next value - value)`` needs no such care since
ties have zero width.  The result is exactly scipy's KS statistic (the same
integer pair, one rounding) and scipy's Wasserstein terms summed with a
compensated sum.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._prefetch import prefetch

_FOLD_STEPS = 256
#: How far ahead (in values, 12 cache lines) each chain asks for its data.
_PREFETCH_AHEAD = 96


@njit(inline="always")
def _step(a, b, i, j, dd, x_prev, best, block, n_a, n_b):
    prefetch(a, i + _PREFETCH_AHEAD)
    prefetch(b, j + _PREFETCH_AHEAD)
    va = a[i]
    vb = b[j]
    x = min(va, vb)
    ad = abs(dd)
    best = max(best, ad if x > x_prev else 0)
    block += ad * (x - x_prev)
    take = np.int64(va <= vb)
    return i + take, j + 1 - take, dd + take * (n_a + n_b) - n_a, x, best, block


@njit(inline="always")
def _fold(total, comp, block):
    """Kahan-add ``block`` to ``(total, comp)``."""
    y = block - comp
    t = total + y
    return t, (t - total) - y


@njit(cache=True, nogil=True)
def _chain_bounds(a, b, n_a, n_b):
    """Start states of the four chains and of the end, cut at quantiles of ``b``."""
    ia = np.zeros(5, dtype=np.int64)
    jb = np.zeros(5, dtype=np.int64)
    for c in range(1, 4):
        v = b[c * n_b // 4]
        ia[c] = np.searchsorted(a[:n_a], v, side="left")
        jb[c] = np.searchsorted(b[:n_b], v, side="left")
    ia[4] = n_a
    jb[4] = n_b
    return ia, jb


@njit(cache=True, nogil=True)
def _close_chains(a, b, ia, jb, ends, best, total, comp):
    """Account for each chain's end state, a real ECDF point, and the gap after it."""
    for c in range(4):
        dd, x, n_steps = ends[c]
        if n_steps > 0 and dd != 0:
            best = max(best, abs(dd))
            gap = min(a[ia[c + 1]], b[jb[c + 1]]) - x
            total, comp = _fold(total, comp, abs(dd) * gap)
    return best, total - comp


@njit(cache=True, nogil=True)
def ks_wasserstein_padded(a, b, n_a, n_b):
    """``(ks_statistic, wasserstein)`` of ``a[:n_a]`` and ``b[:n_b]`` (sentinel-padded)."""
    if n_a == 0 or n_b == 0:
        return 0.0, 0.0
    ia, jb = _chain_bounds(a, b, n_a, n_b)
    steps = (ia[1:] - ia[:-1]) + (jb[1:] - jb[:-1])
    i0, i1, i2, i3 = ia[0], ia[1], ia[2], ia[3]
    j0, j1, j2, j3 = jb[0], jb[1], jb[2], jb[3]
    d0, d1, d2, d3 = (
        i0 * n_b - j0 * n_a,
        i1 * n_b - j1 * n_a,
        i2 * n_b - j2 * n_a,
        i3 * n_b - j3 * n_a,
    )
    x0, x1, x2, x3 = min(a[i0], b[j0]), min(a[i1], b[j1]), min(a[i2], b[j2]), min(a[i3], b[j3])
    b0 = b1 = b2 = b3 = 0
    w0 = w1 = w2 = w3 = 0.0
    t0 = t1 = t2 = t3 = 0.0
    c0 = c1 = c2 = c3 = 0.0
    s0, s1, s2, s3 = steps[0], steps[1], steps[2], steps[3]
    for t in range(max(s0, s1, s2, s3)):
        if t < s0:
            i0, j0, d0, x0, b0, w0 = _step(a, b, i0, j0, d0, x0, b0, w0, n_a, n_b)
        if t < s1:
            i1, j1, d1, x1, b1, w1 = _step(a, b, i1, j1, d1, x1, b1, w1, n_a, n_b)
        if t < s2:
            i2, j2, d2, x2, b2, w2 = _step(a, b, i2, j2, d2, x2, b2, w2, n_a, n_b)
        if t < s3:
            i3, j3, d3, x3, b3, w3 = _step(a, b, i3, j3, d3, x3, b3, w3, n_a, n_b)
        if t % _FOLD_STEPS == _FOLD_STEPS - 1:
            t0, c0 = _fold(t0, c0, w0)
            t1, c1 = _fold(t1, c1, w1)
            t2, c2 = _fold(t2, c2, w2)
            t3, c3 = _fold(t3, c3, w3)
            w0 = w1 = w2 = w3 = 0.0
    total, comp = _fold(t0, c0, w0)
    total, comp = _fold(total, comp + c1, t1 + w1)
    total, comp = _fold(total, comp + c2, t2 + w2)
    total, comp = _fold(total, comp + c3, t3 + w3)
    ends = ((d0, x0, s0), (d1, x1, s1), (d2, x2, s2), (d3, x3, s3))
    best, total = _close_chains(a, b, ia, jb, ends, max(b0, b1, b2, b3), total, comp)
    scale = float(n_a) * float(n_b)
    return best / scale, total / scale
