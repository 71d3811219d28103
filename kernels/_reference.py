"""The fitted reference data of a profile, one dataclass per feature kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._batch import fit_feature
from ._categorical import code_counts, encode, fit_vocabulary
from ._columns import SortedColumns, sort_columns


def offsets(lengths) -> np.ndarray:
    """``F + 1`` int64 offsets of ragged per-feature data with these lengths."""
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64), out=out[1:])
    return out


@dataclass(frozen=True)
class NumericReference:
    """Sorted finite reference values, quantile bins and moments per numeric feature.

    Feature ``f`` has edges ``edges[edge_starts[f]:edge_starts[f + 1]]`` and bin
    counts ``bin_counts[edge_starts[f] + f : edge_starts[f + 1] + f + 1]``.
    """

    names: tuple[str, ...]
    sorted: SortedColumns
    edges: np.ndarray
    edge_starts: np.ndarray
    bin_counts: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def bins_slice(self, f: int) -> slice:
        return slice(int(self.edge_starts[f]) + f, int(self.edge_starts[f + 1]) + f + 1)


@dataclass(frozen=True)
class CategoricalReference:
    """Vocabulary and counts (vocabulary order, then the 'unseen' slot) per feature."""

    names: tuple[str, ...]
    vocabularies: tuple[np.ndarray, ...]
    counts: np.ndarray
    count_starts: np.ndarray
    n_missing: np.ndarray

    def counts_slice(self, f: int) -> slice:
        return slice(int(self.count_starts[f]), int(self.count_starts[f + 1]))


def fit_numeric_reference(
    names: Sequence[str], columns: Sequence[np.ndarray], bins: int, n_threads: int | None
) -> NumericReference:
    """Sort every reference column once and fit its bins and moments while it is in cache."""
    n = len(names)
    edges = np.empty(n * bins)
    n_edges = np.zeros(n, dtype=np.int64)
    ref_bins = np.zeros(n * (bins + 1), dtype=np.int64)
    moments = np.zeros((n, 2))

    def fit(f: int, sorted_values: np.ndarray, total: float) -> None:
        fit_feature(sorted_values, total, f, bins, edges, n_edges, ref_bins, moments)

    block = sort_columns(columns, n_threads, then=fit)
    edge_starts = offsets(n_edges)
    packed_edges = np.concatenate(
        [edges[f * bins : f * bins + n_edges[f]] for f in range(n)] or [edges[:0]]
    )
    packed_bins = np.concatenate(
        [ref_bins[f * (bins + 1) : f * (bins + 1) + n_edges[f] + 1] for f in range(n)]
        or [ref_bins[:0]]
    )
    return NumericReference(
        tuple(names), block, packed_edges, edge_starts, packed_bins, moments[:, 0].copy(),
        moments[:, 1].copy(),
    )  # fmt: skip


def fit_categorical_reference(
    names: Sequence[str], columns: Sequence[np.ndarray]
) -> CategoricalReference:
    """Vocabulary, counts and missing count of every categorical reference column."""
    vocabularies = tuple(fit_vocabulary(col) for col in columns)
    count_starts = offsets([v.size + 1 for v in vocabularies])
    counts = np.zeros(int(count_starts[-1]), dtype=np.int64)
    n_missing = np.zeros(len(names), dtype=np.int64)
    for f, (col, vocab) in enumerate(zip(columns, vocabularies)):
        out = counts[count_starts[f] : count_starts[f + 1]]
        n_missing[f] = code_counts(encode(vocab, col), vocab.size, out)
    return CategoricalReference(tuple(names), vocabularies, counts, count_starts, n_missing)
