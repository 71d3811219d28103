"""Binned statistics: streaming bin counts, PSI and Jensen-Shannon from counts.

Shares are ``count / total`` over the bins (or categories) of one column.

PSI epsilon rule: ``PSI = sum (q_i - p_i) * ln(q_i / p_i)`` where ``p_i`` and
``q_i`` are the reference and current shares with every share below ``eps``
(default 1e-4, as Evidently does) raised to ``eps``; shares are not renormalised
afterwards.  An empty bin thus contributes a finite, large-ish term instead of
an infinity.  Jensen-Shannon needs no epsilon: ``0 * log 0 = 0``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Values per block in the streaming histogram (16 KiB of float64, stays in L1).
_BLOCK_ROWS = 2048

#: Default floor for a share in the PSI, see the module docstring.
PSI_EPS = 1e-4

_MAX_FINITE = np.finfo(np.float64).max


@njit(cache=True, nogil=True)
def _count_le(xb, probes, le):
    """``le[k] += #(xb <= probes[k])``: one vectorised pass per probe over an L1 block."""
    for k in range(probes.size):
        p = probes[k]
        c = 0
        for i in range(xb.size):
            c += xb[i] <= p
        le[k] += c


@njit(cache=True, nogil=True)
def bin_counts(x, edges, out):
    """Histogram of the unsorted column ``x`` on right-closed ``edges``; return #missing.

    One streaming pass, no sort and no branch per value: each block is compared
    with every edge, plus two probes, ``-inf`` (counts -inf) and the largest
    finite float (counts finite values and -inf), so NaN and +-inf are returned
    as the missing count and never binned.  ``out`` (``edges.size + 1`` slots)
    is overwritten.
    """
    m = edges.size
    probes = np.empty(m + 2, dtype=np.float64)
    probes[0] = -np.inf
    probes[1 : m + 1] = edges
    probes[m + 1] = _MAX_FINITE
    le = np.zeros(m + 2, dtype=np.int64)
    for start in range(0, x.size, _BLOCK_ROWS):
        _count_le(x[start : start + _BLOCK_ROWS], probes, le)
    n_neg_inf = le[0]
    prev = 0
    for k in range(m):
        cum = le[k + 1] - n_neg_inf
        out[k] = cum - prev
        prev = cum
    n_finite = le[m + 1] - n_neg_inf
    out[m] = n_finite - prev
    return x.size - n_finite


@njit(cache=True, nogil=True)
def psi_from_counts(ref_counts, cur_counts, eps):
    """Population Stability Index from two count vectors (see the epsilon rule above).

    0.0 if either side has no observations.
    """
    n_ref = 0.0
    n_cur = 0.0
    for i in range(ref_counts.size):
        n_ref += ref_counts[i]
        n_cur += cur_counts[i]
    if n_ref == 0.0 or n_cur == 0.0:
        return 0.0
    total = 0.0
    for i in range(ref_counts.size):
        p = max(ref_counts[i] / n_ref, eps)
        q = max(cur_counts[i] / n_cur, eps)
        total += (q - p) * math.log(q / p)
    return total


@njit(cache=True, nogil=True)
def _rel_entr(p, m):
    """``p * ln(p / m)`` with ``0 * ln 0 = 0`` (scipy.special.rel_entr on shares)."""
    if p == 0.0:
        return 0.0
    return p * math.log(p / m)


@njit(cache=True, nogil=True)
def js_from_counts(ref_counts, cur_counts, base):
    """Jensen-Shannon *distance* (square root of the divergence) in log ``base``.

    Same formula as ``scipy.spatial.distance.jensenshannon`` on the two share
    vectors; in [0, 1] for base 2.  0.0 if either side has no observations.
    """
    n_ref = 0.0
    n_cur = 0.0
    for i in range(ref_counts.size):
        n_ref += ref_counts[i]
        n_cur += cur_counts[i]
    if n_ref == 0.0 or n_cur == 0.0:
        return 0.0
    left = 0.0
    right = 0.0
    for i in range(ref_counts.size):
        p = ref_counts[i] / n_ref
        q = cur_counts[i] / n_cur
        m = (p + q) / 2.0
        left += _rel_entr(p, m)
        right += _rel_entr(q, m)
    js = (left + right) / math.log(base)
    return math.sqrt(max(js / 2.0, 0.0))
