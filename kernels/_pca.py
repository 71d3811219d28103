"""PCA for data-reconstruction drift: fitted with numpy's SVD, applied row by row in numba.

The fit centres and scales every column (constant columns keep scale 1), takes the SVD of the
scaled matrix and keeps the fewest components whose explained variance reaches ``variance``
(NannyML's default 0.65). A row's reconstruction error is the Euclidean norm of its scaled
vector minus its projection on the kept components. Non-finite inputs are replaced by the
column mean (scaled 0) before projecting, as NannyML imputes before encoding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange


@dataclass(frozen=True)
class Pca:
    """Column means and scales, and the kept components ``[k, d]`` (orthonormal rows)."""

    mean: np.ndarray  # float64 [d]
    scale: np.ndarray  # float64 [d], > 0
    components: np.ndarray  # float64 [k, d]
    explained: float  # share of the variance the kept components explain

    @property
    def width(self) -> int:
        return int(self.mean.size)


def fit_pca(x: np.ndarray, variance: float = 0.65) -> Pca:
    """PCA of ``x`` ``[n, d]`` (n >= 2, finite values; d >= 1) keeping ``variance`` of it."""
    if not 0.0 < variance <= 1.0:
        raise ValueError(f"variance must be in (0, 1], got {variance}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"PCA needs a [rows >= 2, columns >= 1] matrix, got shape {x.shape}")
    finite = np.isfinite(x)
    counts = finite.sum(axis=0)
    mean = np.where(counts > 0, np.where(finite, x, 0.0).sum(axis=0) / np.maximum(counts, 1), 0.0)
    z = np.where(finite, x - mean, 0.0)
    std = np.sqrt((z * z).sum(axis=0) / np.maximum(counts, 1))
    scale = np.where(std > 1e-12, std, 1.0)
    z /= scale
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    power = singular * singular
    total = float(power.sum())
    if total == 0.0:  # every column constant: nothing to explain, no component kept
        return Pca(mean, scale, np.zeros((0, x.shape[1])), 1.0)
    share = np.cumsum(power) / total
    k = int(np.searchsorted(share, variance - 1e-12) + 1)
    return Pca(mean, scale, np.ascontiguousarray(vt[:k]), float(share[k - 1]))


@njit(cache=True, nogil=True)
def _row_error(x, mean, scale, components, z):
    """Reconstruction error of one row; ``z`` is scratch of the row's width."""
    d = x.size
    for j in range(d):
        v = x[j]
        z[j] = (v - mean[j]) / scale[j] if math.isfinite(v) else 0.0
    norm2 = 0.0
    for j in range(d):
        norm2 += z[j] * z[j]
    for c in range(components.shape[0]):
        dot = 0.0
        for j in range(d):
            dot += z[j] * components[c, j]
        norm2 -= dot * dot  # orthonormal components: |z - P z|^2 = |z|^2 - sum (c . z)^2
    return math.sqrt(max(norm2, 0.0))


_BLOCK_ROWS = 512  # rows per parallel task: one scratch row each, not one allocation per row


@njit(cache=True, parallel=True)
def _row_errors(x, mean, scale, components):
    n, d = x.shape
    out = np.empty(n, dtype=np.float64)
    blocks = (n + _BLOCK_ROWS - 1) // _BLOCK_ROWS
    for b in prange(blocks):
        z = np.empty(d, dtype=np.float64)
        for i in range(b * _BLOCK_ROWS, min((b + 1) * _BLOCK_ROWS, n)):
            out[i] = _row_error(x[i], mean, scale, components, z)
    return out


def row_errors(pca: Pca, x: np.ndarray) -> np.ndarray:
    """Reconstruction error of every row of ``x`` ``[n, d]`` (float64 [n])."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != pca.width:
        raise ValueError(f"expected a [rows, {pca.width}] matrix, got shape {x.shape}")
    if x.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    return _row_errors(x, pca.mean, pca.scale, pca.components)
