"""Categorical columns: vocabulary encoding, counts and the chi-squared test.

Encoding rule, shared by the single-column functions and the profile:

* the *vocabulary* is the sorted set of distinct non-missing reference values
  (integers, floats or strings); code ``k`` is the k-th vocabulary entry;
* a value not in the vocabulary gets the dedicated code ``K = len(vocabulary)``:
  all categories unseen in the reference are pooled into that one bucket, whose
  reference count is 0 by construction;
* missing values (None and NaN in object arrays, NaN and +-inf in float
  arrays) get code -1 and are counted apart, never binned; every value of an
  integer array is a category.

Chi-squared is the test of homogeneity of the 2 x C table (reference row,
current row) over the categories present in either sample, without Yates'
correction: exactly ``scipy.stats.chi2_contingency(table, correction=False)``
with ``dof = C - 1``.  Fewer than two present categories, or an empty side,
give statistic 0.0 and p-value 1.0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._pvalues import chi2_sf

MISSING_CODE = -1


def _as_values(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"categorical column must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    return arr


def missing_mask(values: np.ndarray) -> np.ndarray:
    """True where a categorical value is missing: NaN/+-inf in floats, None/NaN in objects."""
    kind = values.dtype.kind
    if kind == "f":
        return ~np.isfinite(values)
    if kind == "O":
        return np.equal(values, None) | np.not_equal(values, values)  # None or NaN
    return np.zeros(values.shape, dtype=bool)


def _normalise(values: np.ndarray) -> np.ndarray:
    """Non-missing values in a sortable, savable dtype (int64, float64 or str)."""
    kind = values.dtype.kind
    if kind in "iu":
        return values.astype(np.int64)
    if kind == "f":
        return values.astype(np.float64)
    return values.astype(str)


def fit_vocabulary(values) -> np.ndarray:
    """Sorted distinct non-missing reference values (the category vocabulary)."""
    arr = _as_values(values)
    return np.unique(_normalise(arr[~missing_mask(arr)]))


def encode(vocabulary: np.ndarray, values) -> np.ndarray:
    """Codes of ``values`` in ``vocabulary``: unseen -> ``len(vocabulary)``, missing -> -1."""
    arr = _as_values(values)
    missing = missing_mask(arr)
    codes = np.full(arr.shape, MISSING_CODE, dtype=np.int64)
    present = _normalise(arr[~missing])
    if vocabulary.dtype.kind == "U" and present.dtype.kind != "U":
        present = present.astype(str)
    elif vocabulary.dtype.kind != "U" and present.dtype.kind == "U":
        raise TypeError("string values cannot be encoded in a numeric vocabulary")
    if vocabulary.size == 0:
        codes[~missing] = 0
        return codes
    pos = np.minimum(np.searchsorted(vocabulary, present), vocabulary.size - 1)
    found = vocabulary[pos] == present
    codes[~missing] = np.where(found, pos, vocabulary.size)
    return codes


@njit(cache=True, nogil=True)
def code_counts(codes, n_categories, out):
    """Counts of codes ``0..n_categories`` (last slot: unseen) into ``out``; return #missing.

    Negative codes are missing; codes ``>= n_categories`` are pooled as unseen.
    """
    out[:] = 0
    n_missing = 0
    for i in range(codes.size):
        c = codes[i]
        if c < 0:
            n_missing += 1
        elif c >= n_categories:
            out[n_categories] += 1
        else:
            out[c] += 1
    return n_missing


@njit(cache=True, nogil=True)
def chi2_from_counts(ref_counts, cur_counts):
    """Chi-squared homogeneity statistic, dof and p-value of two count vectors."""
    n_ref = 0.0
    n_cur = 0.0
    present = 0
    for i in range(ref_counts.size):
        n_ref += ref_counts[i]
        n_cur += cur_counts[i]
        present += (ref_counts[i] + cur_counts[i]) > 0
    if n_ref == 0.0 or n_cur == 0.0 or present < 2:
        return 0.0, 0, 1.0
    stat = 0.0
    for i in range(ref_counts.size):
        total = float(ref_counts[i] + cur_counts[i])
        if total > 0.0:
            diff = ref_counts[i] * n_cur - cur_counts[i] * n_ref
            stat += diff * diff / total
    stat /= n_ref * n_cur
    dof = present - 1
    return stat, dof, chi2_sf(stat, dof)
