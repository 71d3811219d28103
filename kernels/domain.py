"""Classifier two-sample test (a domain classifier): can a classifier tell reference rows
from current rows? Slower than the reconstruction score: for reports and on demand.

The classifier is k nearest neighbours in the reference-standardised feature space, scored
leave-one-out: a row's score is the share of its ``k`` nearest other rows that are current
rows. Its AUC (reference vs current, ties at half) is 0.5 when the samples come from one
distribution and grows with any difference, a changed correlation included. The p-value is
a permutation test on the same neighbour graph: labels shuffled ``permutations`` times, the
AUC recomputed, ``p = (1 + #{AUC_perm >= AUC}) / (1 + permutations)``; exact under the null
whatever the sample sizes, and cheap because the neighbours are found once.

Each side is subsampled to at most ``max_rows`` rows (seeded); distances are computed in
blocks, so memory stays ``O(block * n)``. Non-finite values are set to the reference mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

_BLOCK_ROWS = 512


@dataclass(frozen=True)
class DomainTest:
    auc: float
    p_value: float
    rows_ref: int
    rows_cur: int
    k: int
    permutations: int

    @property
    def evaluated(self) -> bool:
        return self.rows_ref > 0 and self.rows_cur > 0


def classifier_two_sample(reference: np.ndarray, current: np.ndarray, *, k: int = 10, permutations: int = 200,
                          max_rows: int = 2000, seed: int = 0) -> DomainTest:
    """Domain-classifier test of two ``[n, d]`` matrices (same ``d``); see the module doc."""
    ref, cur = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if ref.ndim != 2 or cur.ndim != 2 or ref.shape[1] != cur.shape[1]:
        raise ValueError(f"two [rows, d] matrices of one d expected, got {ref.shape} and {cur.shape}")
    rng = np.random.default_rng(seed)
    ref, cur = _subsample(ref, max_rows, rng), _subsample(cur, max_rows, rng)
    n_ref, n_cur = len(ref), len(cur)
    if n_ref == 0 or n_cur == 0 or n_ref + n_cur <= k + 1:
        return DomainTest(0.5, 1.0, n_ref, n_cur, k, 0)
    z = _standardised(ref, cur)
    neighbours = _neighbours(z, k)
    labels = np.concatenate([np.zeros(n_ref, np.int64), np.ones(n_cur, np.int64)])
    auc = _auc(neighbours, labels, k)
    exceed = sum(_auc(neighbours, rng.permutation(labels), k) >= auc - 1e-12 for _ in range(permutations))
    return DomainTest(auc, (1.0 + exceed) / (1.0 + permutations), n_ref, n_cur, k, permutations)


def _subsample(x: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    return x[np.sort(rng.choice(len(x), max_rows, replace=False))] if len(x) > max_rows else x


def _standardised(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    finite = np.isfinite(ref)
    counts = np.maximum(finite.sum(axis=0), 1)
    mean = np.where(finite, ref, 0.0).sum(axis=0) / counts
    both = np.concatenate([ref, cur])
    both = np.where(np.isfinite(both), both, mean)
    std = np.sqrt(((np.where(finite, ref, mean) - mean) ** 2).sum(axis=0) / counts)
    return (both - mean) / np.where(std > 1e-12, std, 1.0)


def _neighbours(z: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest other rows of every row (int64 [n, k]), squared Euclidean distance."""
    n = len(z)
    sq = (z * z).sum(axis=1)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (z[start:stop] @ z.T)
        d2[np.arange(stop - start), np.arange(start, stop)] = np.inf  # leave one out
        out[start:stop] = np.argpartition(d2, k - 1, axis=1)[:, :k]
    return out


def _auc(neighbours: np.ndarray, labels: np.ndarray, k: int) -> float:
    return float(_auc_of_scores(_scores(neighbours, labels), labels, k))


@njit(cache=True, parallel=True)
def _scores(neighbours, labels):
    n, k = neighbours.shape
    out = np.empty(n, dtype=np.int64)
    for i in prange(n):
        s = 0
        for j in range(k):
            s += labels[neighbours[i, j]]
        out[i] = s
    return out


@njit(cache=True, nogil=True)
def _auc_of_scores(scores, labels, k):
    """Mann-Whitney AUC of the integer scores (0..k current neighbours), ties at half."""
    pos = np.zeros(k + 1, dtype=np.float64)
    neg = np.zeros(k + 1, dtype=np.float64)
    for i in range(scores.size):
        if labels[i] == 1:
            pos[scores[i]] += 1.0
        else:
            neg[scores[i]] += 1.0
    below = 0.0
    wins = 0.0
    for s in range(k + 1):
        wins += pos[s] * (below + 0.5 * neg[s])
        below += neg[s]
    n_pos, n_neg = pos.sum(), neg.sum()
    return wins / (n_pos * n_neg) if n_pos > 0 and n_neg > 0 else 0.5
