"""KS statistic and Wasserstein-1 of two sorted samples, one run of the longer per value.

This is the hot kernel of the profile path.  Both samples are sorted, finite
and followed in memory by ``SENTINELS`` (8) ``+inf`` values.  The shorter
sample ``s`` drives the walk; between two of its values ``v = s[k-1] < w = s[k]``
the ECDF of ``s`` is flat at ``k / n_s`` and only the *run* of longer-sample
values ``big[p:q]`` inside ``(v, w)`` moves the other ECDF.  Scaled by
``n_l * n_s``, the ECDF difference after ``C`` values of ``big`` is the exact
integer ``n_s * C - n_l * k``, monotone along the run, so

* KS needs only the run's two ends, ``p = #big <= v`` and ``q = #big < w``;
* Wasserstein over ``[v, w)``, when the difference keeps one sign (every run
  but the few where the ECDFs cross), is one integer times ``w - v`` plus
  ``n_s`` times a sum of non-negative gaps (``w - big[t]`` or ``big[t] - v``):
  no cancellation.

The walk (:func:`_runs`) only finds each run's end by counting 8 values of
``big`` at a time with one vector compare (:func:`kernels._simd.run_chunk`)
and adds the run's gaps lane by lane into vector accumulators; it is cut into
four chains at quantiles of ``s``, unrolled so that their four dependency
chains overlap.  The ECDF differences at the run ends are stored, and a
vectorised pass per block of steps (:func:`_interval_terms`) takes the KS
maximum and the integer-times-width terms; the rare runs where the ECDFs
cross are summed piece by piece (:func:`_crossings`).  A tie group of ``s``
counts only at its last member, where its ECDF is real.  The KS statistic is
scipy's (the same integer pair, one rounding); blocks of Wasserstein terms are
added with a compensated sum.
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


@njit(inline="always")
def _step(s, big, n_s, n_l, k, p, gaps, at, d_lt, d_le):
    """The interval ``[v, w) = [s[k-1], s[k])``, whose run of ``big`` starts at ``p``.

    ``p = #big <= v``.  Stores the scaled ECDF differences at the run's end,
    ``d_lt[k]`` (with ``#big < w``) and ``d_le[k]`` (with ``#big <= w``), returns
    ``#big <= w`` (the next ``p``) and adds the run's gaps (``w - x`` if the
    difference is >= 0 from the start, else ``x - v``) lane by lane to
    ``gaps[at : at + 8]``; :func:`_block_area` does the rest.
    """
    w = s[np.uint64(k)]
    n_lk = n_l * k
    if n_s * p >= n_lk:
        sign, shift = -1.0, w
    else:
        sign, shift = 1.0, -s[np.uint64(k - 1)]
    q = p
    pos = p
    while True:  # 8 values a step; w is finite, so the sentinels stop it
        n_lt, n_le = run_chunk(big, pos, w, sign, shift, gaps, at)
        q += n_lt
        if n_le < SENTINELS:
            break
        pos += SENTINELS
    d_lt[np.uint64(k)] = n_s * q - n_lk
    d_le[np.uint64(k)] = n_s * (pos + n_le) - n_lk
    return pos + n_le


@njit(cache=True, nogil=True)
def _runs(s, big, n_s, n_l, ks, ps, gaps, d_lt, d_le, n_steps):
    """``n_steps`` steps of the four chains in lock-step (state ``ks``, ``ps``, advanced)."""
    k0, k1, k2, k3 = ks[0], ks[1], ks[2], ks[3]
    p0, p1, p2, p3 = ps[0], ps[1], ps[2], ps[3]
    for t in range(n_steps):
        p0 = _step(s, big, n_s, n_l, k0 + t, p0, gaps, 0, d_lt, d_le)
        p1 = _step(s, big, n_s, n_l, k1 + t, p1, gaps, 8, d_lt, d_le)
        p2 = _step(s, big, n_s, n_l, k2 + t, p2, gaps, 16, d_lt, d_le)
        p3 = _step(s, big, n_s, n_l, k3 + t, p3, gaps, 24, d_lt, d_le)
    ks[:4] += n_steps
    ps[0], ps[1], ps[2], ps[3] = p0, p1, p2, p3


@njit(cache=True, nogil=True)
def _run_one(s, big, n_s, n_l, k, p, gaps, d_lt, d_le):
    """One step outside the lock-step (the chains' lengths differ by at most one)."""
    _step(s, big, n_s, n_l, k, p, gaps, 0, d_lt, d_le)


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _interval_terms(s, d_lt, d_le, n_l, k0, k1):
    """KS maximum, integer-times-width area and #crossings of the intervals ``k0 .. k1``.

    Interval ``k`` starts at ``d_p = d_le[k-1] - n_l`` and ends at ``d_q = d_lt[k]``.
    Vectorised over ``k``; re-association only regroups non-negative terms.
    """
    v, w = s[k0 - 1 : k1 - 1], s[k0:k1]
    d_start, d_end = d_le[k0 - 1 : k1 - 1], d_lt[k0:k1]
    best = 0
    area = 0.0
    n_cross = 0
    for i in range(k1 - k0):
        d_p = d_start[i] - n_l
        d_q = d_end[i]
        best = max(best, max(abs(d_p), abs(d_q)) if w[i] > v[i] else 0)
        up = d_p >= 0
        down = d_q <= 0
        area += (w[i] - v[i]) * (d_p if up else (-d_q if down else 0))
        n_cross += not (up or down)
    return best, area, n_cross


@njit(cache=True, nogil=True)
def _crossings(s, big, d_lt, d_le, n_s, n_l, k0, k1, gaps):
    """Area of the intervals ``k0 .. k1`` where the ECDFs cross, their gaps taken back."""
    area = 0.0
    for k in range(k0, k1):
        if d_le[k - 1] - n_l < 0 < d_lt[k]:
            v, w = s[k - 1], s[k]
            p = (d_le[k - 1] + n_l * (k - 1)) // n_s
            q = (d_lt[k] + n_l * k) // n_s
            p_next = (d_le[k] + n_l * k) // n_s
            for pos in range(p, p_next + 1, SENTINELS):  # the lanes _runs added as x - v
                run_chunk(big, pos, w, -1.0, v, gaps, 0)
            area += _crossing_area(big, p, q, v, w, n_s, n_l, k)
    return area


@njit(cache=True, nogil=True)
def _block_area(s, big, d_lt, d_le, n_s, n_l, k_starts, n_steps, gaps):
    """KS maximum and area of ``n_steps`` intervals from each of ``k_starts``; clears ``gaps``."""
    best = 0
    area = 0.0
    for k0 in k_starts:
        b, a, n_cross = _interval_terms(s, d_lt, d_le, n_l, k0, k0 + n_steps)
        best = max(best, b)
        area += a
        if n_cross:
            area += _crossings(s, big, d_lt, d_le, n_s, n_l, k0, k0 + n_steps, gaps)
    area += n_s * gaps.sum()
    gaps[:] = 0.0
    return best, area


@njit(cache=True, nogil=True)
def _walk(s, big, n_s, n_l):
    """``(max |d|, area)`` over the intervals between values of ``s``, in four chains."""
    best, area = _ends(s, big, n_s, n_l)
    d_lt = np.empty(n_s, dtype=np.int64)
    d_le = np.empty(n_s, dtype=np.int64)
    ks = np.empty(5, dtype=np.int64)
    ps = np.empty(4, dtype=np.int64)
    gaps = np.zeros(4 * SENTINELS)
    for c in range(4):
        ks[c] = 1 + c * (n_s - 1) // 4
        ps[c] = np.searchsorted(big[:n_l], s[ks[c] - 1], side="right")
        d_le[ks[c] - 1] = n_s * ps[c] - n_l * (ks[c] - 1)
    ks[4] = n_s
    lengths = ks[1:] - ks[:-1]
    starts = ks[:4].copy()
    common = lengths.min()
    total, comp = _fold(0.0, 0.0, area)
    for done in range(0, common, _FOLD_STEPS):
        steps = min(_FOLD_STEPS, common - done)
        _runs(s, big, n_s, n_l, ks, ps, gaps, d_lt, d_le, steps)
        b, block = _block_area(s, big, d_lt, d_le, n_s, n_l, starts + done, steps, gaps)
        best = max(best, b)
        total, comp = _fold(total, comp, block)
    for c in range(4):  # chains are cut evenly: at most one step each is left
        if lengths[c] > common:
            _run_one(s, big, n_s, n_l, ks[c], ps[c], gaps, d_lt, d_le)
            k_last = starts[c : c + 1] + common
            b, block = _block_area(s, big, d_lt, d_le, n_s, n_l, k_last, 1, gaps)
            best = max(best, b)
            total, comp = _fold(total, comp, block)
    return best, total - comp


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
