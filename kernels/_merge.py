"""KS statistic and Wasserstein-1 of two sorted samples, one run of the longer per value.

This is the hot kernel of the profile path.  Both samples are sorted, finite
and followed in memory by a ``+inf`` sentinel (``a[n_a] == inf``).  The shorter
sample ``s`` drives the walk; between two of its values ``v = s[k-1] < w = s[k]``
the ECDF of ``s`` is flat at ``k / n_s`` and only the *run* of longer-sample
values ``big[p:q]`` inside ``(v, w)`` moves the other ECDF.  With the counts
scaled by ``n_l * n_s`` the difference with ``C`` values of ``big`` passed is the exact
integer ``n_s * C - n_l * k``, monotone along the run, so

* KS needs only its two ends: ``p = #big <= v`` and ``q = #big < w``;
* Wasserstein over ``[v, w)`` is, when the difference keeps one sign (every run
  but the few where the ECDFs cross), one integer times ``w - v`` plus ``n_s``
  times a sum of non-negative gaps (``w - big[t]`` or ``big[t] - v``): no
  cancellation, and the run is read 8 values at a time with vector compares.

Runs are found by counting, not by a branch per value, and the walk is cut
into four chains at quantiles of ``s`` that advance in lock-step (four
independent dependency chains).  A tie group of ``s`` contributes only at its
last member (where its ECDF is real).  The KS statistic is scipy's (the same
integer pair, one rounding); the Wasserstein terms are summed with a
compensated sum.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._simd import run_chunk

#: Values of the longer sample compared per step; every sample must be followed in
#: memory by this many ``+inf`` sentinels, so a chunk never reads past them.
SENTINELS = 8
_FOLD_STEPS = 256


@njit(cache=True, nogil=True)
def _crossing_area(big, p, q, v, w, n_s, n_l, k):
    """Area of ``|n_s * C - n_l * k|`` over ``[v, w)`` piece by piece (the ECDFs cross)."""
    area = 0.0
    x = v
    for t in range(p, q):
        area += abs(n_s * t - n_l * k) * (big[t] - x)
        x = big[t]
    return area + abs(n_s * q - n_l * k) * (w - x)


@njit(inline="always")
def _fold(total, comp, block):
    """Kahan-add ``block`` to ``(total, comp)``."""
    y = block - comp
    t = total + y
    return t, (t - total) - y


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _block_gaps(big, start, stop, x0):
    """``sum |big[t] - x0|`` for ``start <= t < stop`` (one side of ``x0``), vectorised."""
    total = 0.0
    for t in range(start, stop):
        total += abs(big[t] - x0)
    return total


@njit(cache=True, nogil=True)
def _gaps(big, start, stop, x0):
    """:func:`_block_gaps` over blocks of 1024 values, blocks added with a compensated sum."""
    total = 0.0
    comp = 0.0
    for b in range(start, stop, 1024):
        total, comp = _fold(total, comp, _block_gaps(big, b, min(b + 1024, stop), x0))
    return total - comp


@njit(cache=True, nogil=True)
def _ends(s, big, n_s, n_l):
    """KS candidates and areas below ``s[0]`` and above ``s[-1]``."""
    q = np.searchsorted(big[:n_l], s[0], side="left")
    p_last = np.searchsorted(big[:n_l], s[n_s - 1], side="right")
    best = max(n_s * q, abs(n_s * p_last - n_l * n_s))
    return best, n_s * (_gaps(big, 0, q, s[0]) + _gaps(big, p_last, n_l, s[n_s - 1]))


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _walk_block(s, big, n_s, n_l, ks, ps, bests, t_start, t_stop):
    """Steps ``t_start .. t_stop`` of the four chains (state in ``ps``, ``bests``); area.

    Step ``t`` of chain ``c`` is the interval ``[v, w) = [s[k-1], s[k])``,
    ``k = ks[c] + t``, whose run of ``big`` starts at ``p = ps[c]`` (``#big <= v``).
    Re-association only regroups sums of non-negative terms inside one block;
    :func:`_walk` adds the blocks with a compensated sum.
    """
    area = 0.0
    for t in range(t_start, t_stop):
        for c in range(4):
            k = ks[c] + t
            if k >= ks[c + 1]:
                continue
            v = s[k - 1]
            w = s[k]
            p = ps[c]
            # The run: q = #big < w, #big <= w, gap sums over big[p:q], 8 values a step.
            q = p
            pos = p
            hi = 0.0
            lo = 0.0
            while True:
                n_lt, n_le, h, g = run_chunk(big, pos, v, w)
                q += n_lt
                hi += h
                lo += g
                if n_le < SENTINELS:  # w is finite: the sentinels end every run
                    break
                pos += SENTINELS
            ps[c] = pos + n_le
            d_p = n_s * p - n_l * k
            d_q = n_s * q - n_l * k
            if w > v:  # v ends its tie group: both ends are real ECDF points
                bests[c] = max(bests[c], abs(d_p), abs(d_q))
            if d_p >= 0:
                area += d_p * (w - v) + n_s * hi
            elif d_q <= 0:
                area += -d_q * (w - v) + n_s * lo
            else:
                area += _crossing_area(big, p, q, v, w, n_s, n_l, k)
    return area


@njit(cache=True, nogil=True)
def _walk(s, big, n_s, n_l):
    """``(max |d|, area)`` over the intervals between values of ``s``, in four chains."""
    best, area = _ends(s, big, n_s, n_l)
    ks = np.zeros(5, dtype=np.int64)
    ps = np.zeros(4, dtype=np.int64)
    bests = np.zeros(4, dtype=np.int64)
    for c in range(4):
        ks[c] = 1 + c * (n_s - 1) // 4
        ps[c] = np.searchsorted(big[:n_l], s[ks[c] - 1], side="right")
    ks[4] = n_s
    total, comp = _fold(0.0, 0.0, area)
    n_steps = (ks[1:] - ks[:-1]).max()
    for t in range(0, n_steps, _FOLD_STEPS):
        block = _walk_block(s, big, n_s, n_l, ks, ps, bests, t, min(t + _FOLD_STEPS, n_steps))
        total, comp = _fold(total, comp, block)
    return max(best, bests.max()), total - comp


@njit(cache=True, nogil=True)
def ks_wasserstein_padded(a, b, n_a, n_b):
    """``(ks_statistic, wasserstein)`` of ``a[:n_a]`` and ``b[:n_b]`` (sentinel-padded)."""
    if n_a == 0 or n_b == 0:
        return 0.0, 0.0
    if n_a >= n_b:
        best, area = _walk(b, a, n_b, n_a)
    else:
        best, area = _walk(a, b, n_a, n_b)
    scale = float(n_a) * float(n_b)
    return best / scale, area / scale
