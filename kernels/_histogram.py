"""Streaming histogram of an unsorted column on right-closed bin edges.

No sort and no branch per value: the column is cut into L1-sized blocks and
each block is compared with all edges in one pass of 8-wide vector compares
(:func:`kernels._simd.count_le_block`, up to 16 edges at a time), which also
sums the block.  A block whose sum is finite holds no NaN or +-inf and its
counts stand; any other block (rare) is counted again against ``-inf``, the
edges and the largest finite float, which count its -inf and finite values,
so NaN and +-inf are returned as missing and never binned.  Columns that are
not C-contiguous float64 are converted one block at a time.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._simd import MAX_PROBES, count_le_block

#: Values per block (16 KiB of float64, stays in L1).
_BLOCK_ROWS = 2048
_MAX_FINITE = np.finfo(np.float64).max


def _block(x, start, stop, buf):
    """``(values, lo, hi)`` with ``values[lo:hi]`` holding ``x[start:stop]`` as float64."""


@overload(_block)
def _block_overload(x, start, stop, buf):
    if isinstance(x, types.Array) and x.dtype == types.float64 and x.layout == "C":
        return lambda x, start, stop, buf: (x, start, stop)

    def convert(x, start, stop, buf):
        buf[: stop - start] = x[start:stop]
        return buf, 0, stop - start

    return convert


@njit(cache=True, nogil=True)
def _count_le(x, lo, hi, probes, counts):
    """``counts[j] += #(x[lo:hi] <= probes[j])`` for every probe; the sum of the values."""
    total = 0.0
    for g in range(0, probes.size, MAX_PROBES):
        n = min(MAX_PROBES, probes.size - g)
        total = count_le_block(x, lo, hi, probes[g:], n, counts[g:])
    return total


@njit(cache=True, nogil=True)
def bin_counts(x, edges, out):
    """Histogram of the unsorted column ``x`` on right-closed ``edges``; return #missing.

    ``out`` (``edges.size + 1`` slots) is overwritten.
    """
    m = edges.size
    slow = np.empty(m + 2)
    slow[0] = -np.inf
    slow[1 : m + 1] = edges
    slow[m + 1] = _MAX_FINITE
    fast = np.ascontiguousarray(edges)
    le_fast = np.zeros(m, dtype=np.int64)
    le_slow = np.zeros(m + 2, dtype=np.int64)
    block = np.zeros(m, dtype=np.int64)
    buf = np.empty(_BLOCK_ROWS)
    n_vector = x.size - x.size % 8
    n_fast = 0
    for start in range(0, n_vector, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n_vector)
        values, lo, hi = _block(x, start, stop, buf)
        block[:] = 0
        if math.isfinite(_count_le(values, lo, hi, fast, block)):
            le_fast += block
            n_fast += hi - lo
        else:
            _count_le(values, lo, hi, slow, le_slow)
    buf[:8] = np.nan  # the last x.size % 8 values, padded with missing values
    buf[: x.size - n_vector] = x[n_vector:]
    _count_le(buf, 0, 8, slow, le_slow)
    n_neg_inf = le_slow[0]
    prev = 0
    for k in range(m):
        cum = le_fast[k] + le_slow[k + 1] - n_neg_inf
        out[k] = cum - prev
        prev = cum
    n_finite = n_fast + le_slow[m + 1] - n_neg_inf
    out[m] = n_finite - prev
    return x.size - n_finite
