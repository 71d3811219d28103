"""``Window``: the current data of many log segments, accumulated exactly.

Design (exact statistics versus memory):

* Categorical features keep only counts over the profile's vocabulary plus
  the 'unseen' slot; counts add exactly, memory is O(categories).
* Binned numeric statistics (PSI, JS) would only need per-bin counts, but
  exact KS and Wasserstein need the current values themselves: a histogram or
  an ECDF sampled at reference points loses the order of values inside a bin
  and gives a bound, not scipy's number.  So each ``partial_fit`` keeps the
  *finite values of the segment, sorted* (one packed float64 block per
  segment, ~8 bytes per value, the raw segment can be dropped), and scoring
  merges the blocks once into a single sorted buffer (which replaces them, so
  the window is never held twice after scoring; during the merge itself the
  blocks and the merged buffer briefly coexist).  Bin counts are then read off
  the sorted values exactly.  The cost is memory linear in the window's rows;
  an ECDF-at-reference-quantiles accumulator would be bounded but approximate,
  and is deliberately not offered.
* ``merge`` joins two windows by reference to their blocks (no copy), so
  windows built in parallel (one per reader) combine exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ._categorical import code_counts, encode
from ._columns import SortedColumns, merge_sorted, sort_columns

if TYPE_CHECKING:
    from .profile import ReferenceProfile


def _segment_columns(columns: Mapping[str, object], names: tuple[str, ...]) -> list[np.ndarray]:
    out = []
    for name in names:
        if name not in columns:
            raise ValueError(f"segment lacks feature {name!r}")
        out.append(np.asarray(columns[name]))
    return out


class Window:
    """Current-window accumulator bound to one :class:`ReferenceProfile`."""

    def __init__(self, profile: ReferenceProfile, n_threads: int | None = None):
        self.profile = profile
        self.n_threads = n_threads
        n_num = len(profile.numeric.names)
        self._blocks: list[SortedColumns] = []
        self._empty = SortedColumns(
            np.zeros(0), np.zeros(n_num, np.int64), np.zeros(n_num, np.int64),
            np.zeros(n_num, np.int64),
        )  # fmt: skip
        self._cat_counts = np.zeros_like(profile.categorical.counts)
        self._cat_missing = np.zeros(len(profile.categorical.names), dtype=np.int64)
        self.n_rows = 0

    def partial_fit(self, columns: Mapping[str, object]) -> Window:
        """Add one segment (``name -> 1-D array``, all of the same length); returns self.

        Columns the profile does not know are ignored; a missing feature is an error.
        """
        numeric = _segment_columns(columns, self.profile.numeric.names)
        cats = _segment_columns(columns, self.profile.categorical.names)
        lengths = {c.shape[0] if c.ndim else -1 for c in numeric + cats}
        if len(lengths) > 1:
            raise ValueError(f"segment columns differ in length: {sorted(lengths)}")
        if numeric:
            self._blocks.append(sort_columns(numeric, self.n_threads))
        ref = self.profile.categorical
        for f, (col, vocab) in enumerate(zip(cats, ref.vocabularies)):
            counts = np.zeros(vocab.size + 1, dtype=np.int64)
            self._cat_missing[f] += code_counts(encode(vocab, col), vocab.size, counts)
            self._cat_counts[ref.counts_slice(f)] += counts
        self.n_rows += lengths.pop() if lengths else 0
        return self

    def check_compatible(self, profile: ReferenceProfile) -> None:
        """Raise unless this window's features and vocabularies match ``profile``."""
        mine = self.profile
        same = mine.numeric.names == profile.numeric.names
        same = same and mine.categorical.names == profile.categorical.names
        same = same and all(
            a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(mine.categorical.vocabularies, profile.categorical.vocabularies)
        )
        if not same:
            raise ValueError("window and profile have different features or vocabularies")

    def merge(self, other: Window) -> Window:
        """Absorb ``other`` (same features) exactly; ``other`` is left unchanged. Returns self."""
        if other is self:
            raise ValueError("a window cannot absorb itself")
        other.check_compatible(self.profile)
        self._blocks.extend(other._blocks)
        self._cat_counts += other._cat_counts
        self._cat_missing += other._cat_missing
        self.n_rows += other.n_rows
        return self

    def numeric_values(self) -> SortedColumns:
        """All finite numeric values so far, one sorted slice per feature (compacts blocks)."""
        if not self._blocks:
            return self._empty
        if len(self._blocks) > 1:
            self._blocks = [merge_sorted(self._blocks, self.n_threads)]
        return self._blocks[0]

    def categorical_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Category counts (profile layout, 'unseen' last per feature) and missing counts."""
        return self._cat_counts.copy(), self._cat_missing.copy()

    def score(self, **options):
        """``profile.score(self, **options)``."""
        return self.profile.score(self, **options)
