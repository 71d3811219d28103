"""Radix sort of float64 values on their bit patterns, in numba.

numpy's ``np.sort`` is fast only where it dispatches a SIMD sort (AVX-512 on
some CPUs, not on others: 60 ns per value on an AMD EPYC where the Intel machine
took a fraction of that), so the kernels sort with this instead, at the same
speed on every x86 machine.

Order: each float64's bits become a uint64 key whose unsigned order is the float
order (non-negative sign: flip the sign bit; negative: flip all bits), so
``-inf < ... < +inf``; ``-0.0`` and ``+0.0`` compare equal and may come in either
order, as with ``np.sort``.  :func:`radix_sort` puts NaNs (either sign) last, as
``np.sort`` does; :func:`sort_finite`, which the kernels use (missing values are
dropped before), takes no NaN.

Passes: 11-bit digits, least significant first, each a stable counting pass
(a digit with few distinct values, where long runs hit one bucket, in two
chains, one from each end, so the bucket's offset updates do not serialise).
Only the 33 bits from the highest bit that differs between keys are sorted by
digit (three passes at most); a digit whose bits are the same in every value's
magnitude costs no pass (the low mantissa bits of rounded data); the few keys
left out of order by the lower bits are put in place by an insertion pass with
a move budget, and if the budget runs out (many values agreeing in 33 high bits
and differing below) the lower digits are sorted by radix too.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._numeric import copy_finite

_BITS = 11
_RADIX = 1 << _BITS
_MASK = np.uint64(_RADIX - 1)
_WINDOW_BITS = 3 * _BITS
_SIGN = np.uint64(1 << 63)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_ZERO = np.uint64(0)
_ONE = np.uint64(1)
#: Up to this many values insertion sort beats the counting passes.
_SMALL = 48
_INT32_LIMIT = 2**31 - 1
#: A digit with this many distinct values is scattered in one chain, else in two.
_MANY_BUCKETS = 256
#: Insertion moves allowed per value before the lower digits are radix-sorted.
_MOVES_PER_VALUE = 2


@njit(inline="always")
def _to_key(u):
    """Order-preserving map of a non-NaN float64's bits ``u`` to uint64."""
    return u ^ ((_ZERO - (u >> np.uint64(63))) | _SIGN)


@njit(inline="always")
def _from_key(k):
    """Inverse of :func:`_to_key`."""
    return k ^ ((_ZERO - (_ONE - (k >> np.uint64(63)))) | _SIGN)


@njit(inline="always")
def _fold_bits(bits, k_or, k_and, m_or, m_and):
    """Fold one float's bits into the OR / AND of the keys and of the magnitudes."""
    k = _to_key(bits)
    m = bits & ~_SIGN
    return k_or | k, k_and & k, m_or | m, m_and & m


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _varying_bits(values):
    """``(key bits that differ, magnitude bits that differ, sum of the values)``.

    The sum is re-associated into vector partial sums (no less accurate than one
    running sum); it comes free with the pass, and the reference fit needs it.
    """
    u = values.view(np.uint64)
    k_or, k_and, m_or, m_and = _ZERO, _ALL, _ZERO, _ALL
    total = 0.0
    for i in range(u.size):
        k_or, k_and, m_or, m_and = _fold_bits(u[i], k_or, k_and, m_or, m_and)
        total += values[i]
    return k_or ^ k_and, m_or ^ m_and, total


@njit(inline="always")
def _digit(k, s):
    return (k >> s) & _MASK


@njit(cache=True, nogil=True)
def _keys_counts(u, keys, shifts, counts):
    """``keys[i]`` = key of the float bits ``u[i]``; ``counts[d, b]`` of the digits at ``shifts``.

    ``keys`` may be ``u`` itself.  One, two and three digits are unrolled.
    """
    p = shifts.size
    s0 = np.uint64(shifts[0])
    s1 = np.uint64(shifts[min(1, p - 1)])
    s2 = np.uint64(shifts[min(2, p - 1)])
    c0, c1, c2 = counts[0], counts[min(1, p - 1)], counts[min(2, p - 1)]
    for i in range(u.size):
        k = _to_key(u[i])
        keys[i] = k
        if p > 3:
            for d in range(p):
                counts[d, _digit(k, np.uint64(shifts[d]))] += 1
            continue
        c0[_digit(k, s0)] += 1
        if p > 1:
            c1[_digit(k, s1)] += 1
        if p > 2:
            c2[_digit(k, s2)] += 1


@njit(cache=True, nogil=True)
def _scatter_one_chain(src, dst, shift, starts, to_float):
    """Stable counting pass on the digit at ``shift`` (``starts``: bucket starts)."""
    s = np.uint64(shift)
    for i in range(src.size):
        k = src[i]
        b = _digit(k, s)
        dst[starts[b]] = _from_key(k) if to_float else k
        starts[b] += 1


@njit(cache=True, nogil=True)
def _scatter(src, dst, shift, starts, ends, to_float):
    """Stable counting pass on the digit at ``shift``: front half forward, back half backward.

    With ``to_float`` the keys are written back as float bits (the last pass).
    """
    s = np.uint64(shift)
    n = src.size
    half = n // 2
    for t in range(half):
        k = src[t]
        b = _digit(k, s)
        dst[starts[b]] = _from_key(k) if to_float else k
        starts[b] += 1
        k2 = src[n - 1 - t]
        b2 = _digit(k2, s)
        ends[b2] -= 1
        dst[ends[b2]] = _from_key(k2) if to_float else k2
    if n % 2:
        k = src[half]
        dst[starts[_digit(k, s)]] = _from_key(k) if to_float else k


@njit(cache=True, nogil=True)
def _radix(u, scratch, shifts):
    """Sort the non-NaN float bits ``u`` in place by the digits at ``shifts`` (low first)."""
    n, p = u.size, shifts.size
    # int32 counts and offsets: 24 + 16 KiB, in L1 (int64 ones are not); n < 2**31 here
    counts = np.zeros((p, _RADIX), dtype=np.int32)
    src, dst = (scratch[:n], u) if p % 2 else (u, scratch[:n])  # so the last pass ends in u
    _keys_counts(u, src, shifts, counts)
    starts = np.empty(_RADIX, dtype=np.int32)
    ends = np.empty(_RADIX, dtype=np.int32)
    for d in range(p):
        total = 0
        used = 0
        for b in range(_RADIX):
            starts[b] = total
            total += counts[d, b]
            ends[b] = total
            used += counts[d, b] > 0
        last = d == p - 1
        if used >= _MANY_BUCKETS:  # one chain: half the write streams
            _scatter_one_chain(src, dst, shifts[d], starts, last)
        else:  # long runs of one bucket: two chains, so they do not serialise
            _scatter(src, dst, shifts[d], starts, ends, last)
        src, dst = dst, src


@njit(cache=True, nogil=True)
def _is_sorted(a):
    """``a[i - 1] <= a[i]`` for all ``i``: one vectorised pass, no early exit."""
    out_of_order = 0
    for i in range(1, a.size):
        out_of_order += a[i] < a[i - 1]
    return out_of_order == 0


@njit(cache=True, nogil=True)
def _insertion(a, budget):
    """Insertion sort of ``a``; False (``a`` a permutation, unsorted) if ``budget`` moves ran out."""
    moves = 0
    for i in range(1, a.size):
        x = a[i]
        if x >= a[i - 1]:
            continue
        j = i - 1
        while j >= 0 and a[j] > x:
            a[j + 1] = a[j]
            j -= 1
        moves += i - 1 - j
        a[j + 1] = x
        if moves > budget:
            return False
    return True


@njit(cache=True, nogil=True)
def _needed_shifts(lo, hi, vary_key, vary_mag):
    """Shifts of the 11-bit digits from bit ``lo`` up to ``hi`` that can change the order.

    A digit whose magnitude bits are equal in every value is a function of the
    sign bit (a key's low bits are its value's or their complement), so it
    cannot change the order and is skipped.
    """
    out = np.empty(6, dtype=np.int64)
    m = 0
    for s in range(lo, hi + 1, _BITS):
        digit = _MASK << np.uint64(s)
        if (vary_mag & digit) != _ZERO or (s + _BITS > 63 and (vary_key & _SIGN) != _ZERO):
            out[m] = s
            m += 1
    return out[:m]


@njit(cache=True, nogil=True)
def sort_finite(values, scratch):
    """Sort finite float64 ``values`` in place; return their sum (vector partial sums).

    ``scratch`` holds at least as many uint64.  No NaN (see :func:`radix_sort`);
    +-inf are ordered like any value.
    """
    n = values.size
    if n <= _SMALL or n >= _INT32_LIMIT:  # tiny, or beyond the int32 counts (16 GiB)
        _small_sort(values)
        return values.sum()
    vary_key, vary_mag, total = _varying_bits(values)
    _sort_known(values, scratch, vary_key, vary_mag)
    return total


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _copy_varying(src, dst):
    """``dst[i] = src[i]`` (as float64); ``(#non-finite, varying key bits, magnitude bits, sum)``.

    One vectorised pass over a fresh column: the copy, the finite check and what
    :func:`_varying_bits` computes (valid when nothing is missing).
    """
    u = dst.view(np.uint64)
    n_missing = 0
    k_or, k_and, m_or, m_and = _ZERO, _ALL, _ZERO, _ALL
    total = 0.0
    for i in range(src.size):
        x = np.float64(src[i])
        dst[i] = x
        n_missing += not (abs(x) < np.inf)
        k_or, k_and, m_or, m_and = _fold_bits(u[i], k_or, k_and, m_or, m_and)
        total += x
    return n_missing, k_or ^ k_and, m_or ^ m_and, total


@njit(cache=True, nogil=True)
def copy_sort_finite(src, dst, scratch):
    """Copy the finite values of ``src`` to ``dst`` (as float64) and sort them there.

    Returns ``(count, sum)`` of the finite values; ``dst`` holds at least
    ``src.size`` values and ``scratch`` as many uint64.  Without missing values
    (the usual case) the copy also does the sort's first pass.
    """
    n_missing, vary_key, vary_mag, total = _copy_varying(src, dst)
    n = src.size
    if n_missing == 0 and _SMALL < n < _INT32_LIMIT:
        _sort_known(dst[:n], scratch, vary_key, vary_mag)
        return n, total
    n = copy_finite(src, dst)  # rare: compact (copying again), then sort
    return n, sort_finite(dst[:n], scratch)


@njit(cache=True, nogil=True)
def _sort_known(values, scratch, vary_key, vary_mag):
    """:func:`sort_finite` once the varying bits are known (more than ``_SMALL`` values)."""
    n = values.size
    if vary_key == _ZERO:
        return
    top = 63
    while (vary_key >> np.uint64(top)) == _ZERO:
        top -= 1
    lo = max(top - _WINDOW_BITS + 1, 0)
    u = values.view(np.uint64)
    _radix(u, scratch, _needed_shifts(lo, top, vary_key, vary_mag))
    below = (_ONE << np.uint64(lo)) - _ONE
    if lo == 0 or (vary_mag & below) == _ZERO:
        return  # the digits sorted every bit that differs
    if _is_sorted(values):  # usual: the 33 high bits told every pair apart
        return
    if not _insertion(values, _MOVES_PER_VALUE * n):
        _radix(u, scratch, _needed_shifts(0, 63, vary_key, vary_mag))


@njit(cache=True, nogil=True)
def _small_sort(values):
    if values.size <= _SMALL:
        _insertion(values, values.size**2)
    else:
        values.sort()


@njit(cache=True, nogil=True)
def radix_sort(values, scratch):
    """Sort any float64 ``values`` in place, NaN last (order in the module docstring)."""
    n_finite = 0
    n = values.size
    for i in range(n):  # non-NaN values to the front, in order; NaN count at the back
        x = values[i]
        if x == x:
            values[n_finite] = x
            n_finite += 1
    values[n_finite:] = np.nan
    sort_finite(values[:n_finite], scratch)
