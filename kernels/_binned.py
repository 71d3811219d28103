"""Binned statistics: PSI and Jensen-Shannon from bin (or category) counts.

Shares are ``count / total`` over the bins (or categories) of one column.

PSI epsilon rule: ``PSI = sum (q_i - p_i) * ln(q_i / p_i)`` where ``p_i`` and
``q_i`` are the reference and current shares with every share below ``eps``
(default 1e-4, as Evidently does) raised to ``eps``; shares are not renormalised
afterwards.  An empty bin thus contributes a finite, large-ish term instead of
an infinity.  Jensen-Shannon needs no epsilon: ``0 * log 0 = 0``.
"""

from __future__ import annotations

import math

from numba import njit

#: Default floor for a share in the PSI, see the module docstring.
PSI_EPS = 1e-4


@njit(cache=True, nogil=True)
def _totals(ref_counts, cur_counts):
    """Observations on each side (float sums of the two count vectors)."""
    n_ref = 0.0
    n_cur = 0.0
    for i in range(ref_counts.size):
        n_ref += ref_counts[i]
        n_cur += cur_counts[i]
    return n_ref, n_cur


@njit(cache=True, nogil=True)
def psi_from_counts(ref_counts, cur_counts, eps):
    """Population Stability Index from two count vectors (see the epsilon rule above).

    0.0 if either side has no observations.
    """
    n_ref, n_cur = _totals(ref_counts, cur_counts)
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
    n_ref, n_cur = _totals(ref_counts, cur_counts)
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
