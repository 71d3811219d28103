"""Streaming histogram of an unsorted column on right-closed bin edges.

No sort and no branch per value: the column is cut into L1-sized blocks and
each block is compared with up to 8 edges held in registers per pass (the
compare-and-count loops vectorise).  A block whose sum is finite holds no NaN
or +-inf and needs only the edges; any other block (rare) is also compared
with ``-inf`` and with the largest finite float, which count its -inf and
finite values, so NaN and +-inf are returned as missing and never binned.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Values per block (16 KiB of float64, stays in L1).
_BLOCK_ROWS = 2048
_MAX_FINITE = np.finfo(np.float64).max


@njit(cache=True, nogil=True)
def _count_le_8(xb, probes, k, le):
    """``le[k + t] += #(xb <= probes[k + t])`` for t < 8, in one pass."""
    p0, p1, p2, p3 = probes[k], probes[k + 1], probes[k + 2], probes[k + 3]
    p4, p5, p6, p7 = probes[k + 4], probes[k + 5], probes[k + 6], probes[k + 7]
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = 0
    for i in range(xb.size):
        v = xb[i]
        c0 += v <= p0
        c1 += v <= p1
        c2 += v <= p2
        c3 += v <= p3
        c4 += v <= p4
        c5 += v <= p5
        c6 += v <= p6
        c7 += v <= p7
    le[k : k + 8] += np.array([c0, c1, c2, c3, c4, c5, c6, c7])


@njit(cache=True, nogil=True)
def _count_le_4(xb, probes, k, le):
    """As :func:`_count_le_8` for 4 probes."""
    p0, p1, p2, p3 = probes[k], probes[k + 1], probes[k + 2], probes[k + 3]
    c0 = c1 = c2 = c3 = 0
    for i in range(xb.size):
        v = xb[i]
        c0 += v <= p0
        c1 += v <= p1
        c2 += v <= p2
        c3 += v <= p3
    le[k : k + 4] += np.array([c0, c1, c2, c3])


@njit(cache=True, nogil=True)
def _count_le_1(xb, probe):
    c = 0
    for i in range(xb.size):
        c += xb[i] <= probe
    return c


@njit(cache=True, nogil=True)
def _count_le(xb, probes, m, le):
    """``le[k] += #(xb <= probes[k])`` for k < m; ``probes`` has 3 slack slots."""
    k = 0
    while k + 8 <= m:
        _count_le_8(xb, probes, k, le)
        k += 8
    while m - k >= 3:  # the fourth probe of the last group may be +inf slack
        _count_le_4(xb, probes, k, le)
        k += 4
    for j in range(k, m):
        le[j] += _count_le_1(xb, probes[j])


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _block_sum(xb):
    """Vectorised sum; NaN or +-inf anywhere make it non-finite (so may overflow)."""
    s = 0.0
    for i in range(xb.size):
        s += xb[i]
    return s


@njit(cache=True, nogil=True)
def bin_counts(x, edges, out):
    """Histogram of the unsorted column ``x`` on right-closed ``edges``; return #missing.

    ``out`` (``edges.size + 1`` slots) is overwritten.
    """
    m = edges.size
    fast = np.full(m + 3, np.inf)
    fast[:m] = edges
    slow = np.full(m + 5, np.inf)
    slow[0] = -np.inf
    slow[1 : m + 1] = edges
    slow[m + 1] = _MAX_FINITE
    le_fast = np.zeros(m + 3, dtype=np.int64)
    le_slow = np.zeros(m + 5, dtype=np.int64)
    n_fast = 0
    for start in range(0, x.size, _BLOCK_ROWS):
        xb = x[start : start + _BLOCK_ROWS]
        if math.isfinite(_block_sum(xb)):
            _count_le(xb, fast, m, le_fast)
            n_fast += xb.size
        else:
            _count_le(xb, slow, m + 2, le_slow)
    n_neg_inf = le_slow[0]
    prev = 0
    for k in range(m):
        cum = le_fast[k] + le_slow[k + 1] - n_neg_inf
        out[k] = cum - prev
        prev = cum
    n_finite = n_fast + le_slow[m + 1] - n_neg_inf
    out[m] = n_finite - prev
    return x.size - n_finite
