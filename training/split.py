"""Deterministic, seeded train/validation/test assignment by a hash of each row's content.

A row's split depends only on its content (or its group key) and the seed, never on its
position: the same data gives the same splits in any order, and identical rows (or rows
sharing a group key) always land in the same split, so nothing leaks between splits.
Shares are expected values (each row is an independent draw).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "validation", "test")
_HASH_KEY = "mlgate-split-v1."  # 16 bytes, pandas' siphash key; the seed is mixed in after


def row_hashes(columns: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """uint64 content hash per row over ``names`` (NaN and None hash as missing)."""
    frame = pd.DataFrame({n: columns[n] for n in names})
    return pd.util.hash_pandas_object(frame, index=False, hash_key=_HASH_KEY).to_numpy(np.uint64)


def _mix(h: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 finaliser of ``h ^ seed``: the seed moves every row independently."""
    with np.errstate(over="ignore"):
        z = h ^ np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def assign(hashes: np.ndarray, seed: int, validation_share: float, test_share: float) -> np.ndarray:
    """Split index per row: 0 train, 1 validation, 2 test."""
    u = (_mix(hashes.astype(np.uint64, copy=False), seed) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    out = np.zeros(len(hashes), dtype=np.int8)
    out[u < test_share + validation_share] = 1
    out[u < test_share] = 2
    return out


def split_indices(columns: dict[str, np.ndarray], key_columns: list[str], seed: int,
                  validation_share: float, test_share: float) -> dict[str, np.ndarray]:
    """Row indices of each split, in source order."""
    which = assign(row_hashes(columns, key_columns), seed, validation_share, test_share)
    return {name: np.flatnonzero(which == i) for i, name in enumerate(SPLITS)}
