"""Input coercion and the packed layout of sorted numeric columns.

Columns arrive one 1-D array per feature (as read from Arrow); nothing is ever
transposed.  Sorting is the radix sort of :mod:`kernels._sort` (the same speed
whichever SIMD sort numpy dispatches on the machine), nogil numba kernels run
on Python threads, each with a kept scratch buffer; the statistics kernels then
walk the sorted slices.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from ._merge import SENTINELS
from ._sort import copy_sort_finite, sort_finite


def as_numeric(values, name: str = "values") -> np.ndarray:
    """A 1-D float32/float64 view of ``values`` (ints and bools become float64)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D column, got shape {arr.shape}")
    if arr.dtype.kind == "f" and arr.dtype.itemsize in (4, 8):
        return arr
    if arr.dtype.kind in "iub" or arr.dtype == np.float16:
        return arr.astype(np.float64)
    raise TypeError(f"{name}: numeric column expected, got dtype {arr.dtype}")


def default_threads() -> int:
    """Worker count for sorting: numba's current thread setting."""
    return numba.get_num_threads()


_pool: ThreadPoolExecutor | None = None
_pool_pid = -1
_pool_lock = threading.Lock()
_worker = threading.local()


def _mark_worker() -> None:
    _worker.active = True


#: Largest radix-sort scratch buffer a thread keeps between calls (32 MiB).
_KEPT_SCRATCH_VALUES = 1 << 22


def _scratch(n: int) -> np.ndarray:
    """A radix-sort scratch buffer of at least ``n`` uint64; this thread's kept one if small."""
    if n > _KEPT_SCRATCH_VALUES:
        return np.empty(n, dtype=np.uint64)
    buf = getattr(_worker, "scratch", None)
    if buf is None or buf.size < n:
        buf = np.empty(max(n, 1 << 16), dtype=np.uint64)
        _worker.scratch = buf
    return buf


def _shared_pool() -> ThreadPoolExecutor:
    """Worker threads kept for reuse (starting threads per call costs more than a window).

    A forked child does not inherit the threads, so it starts its own pool.
    """
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool_pid = os.getpid()
            _pool = ThreadPoolExecutor(
                max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                thread_name_prefix="kernels",
                initializer=_mark_worker,
            )
        return _pool


def map_threads(fn: Callable[[int], None], n_items: int, n_threads: int) -> None:
    """Run ``fn(i)`` for every item, on the calling thread and up to ``n_threads - 1`` workers.

    Items are dealt round-robin (neighbouring columns often cost alike).  Inside a
    worker (a nested call) the items run on that thread, so no worker ever waits
    for another.
    """
    n_threads = min(n_threads, n_items)
    if n_threads <= 1 or getattr(_worker, "active", False):
        for i in range(n_items):
            fn(i)
        return

    def lane(first: int) -> None:
        for i in range(first, n_items, n_threads):
            fn(i)

    futures = [_shared_pool().submit(lane, w) for w in range(1, n_threads)]
    try:
        lane(0)
    finally:
        for future in futures:
            future.result()


@dataclass(frozen=True)
class SortedColumns:
    """Finite values of several columns, each sorted, packed in one float64 buffer.

    Column ``f`` is ``values[starts[f] : starts[f] + counts[f]]`` and is followed
    by ``SENTINELS`` (8) ``+inf`` values (the merge kernel reads whole chunks past
    the end instead of checking bounds).  ``n_missing[f]`` counts
    its NaN and +-inf values, which are kept out of ``values``.
    """

    values: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    n_missing: np.ndarray

    @property
    def n_columns(self) -> int:
        return int(self.counts.size)

    def column(self, f: int) -> np.ndarray:
        """The sorted finite values of column ``f`` (a view)."""
        start = int(self.starts[f])
        return self.values[start : start + int(self.counts[f])]

    def padded(self, f: int) -> np.ndarray:
        """Column ``f`` with its trailing ``+inf`` sentinels (a view)."""
        start = int(self.starts[f])
        return self.values[start : start + int(self.counts[f]) + SENTINELS]


def _slots(lengths: Sequence[int]) -> np.ndarray:
    """Offsets of slots holding each column plus its sentinels."""
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64) + SENTINELS, out=starts[1:])
    return starts


def sort_columns(
    columns: Sequence[np.ndarray],
    n_threads: int | None = None,
    then: Callable[[int, np.ndarray, float], None] | None = None,
) -> SortedColumns:
    """Copy the finite values of each column into one buffer and sort each slice.

    ``then(f, sorted_values, total)``, if given, runs right after column ``f`` is
    sorted (on the same thread, while the values are still in cache); ``total`` is
    the sum of the values, which the sort computes on the way.
    """
    cols = [as_numeric(c, f"column {i}") for i, c in enumerate(columns)]
    starts = _slots([c.size for c in cols])
    values = np.empty(int(starts[-1]), dtype=np.float64)
    counts = np.zeros(len(cols), dtype=np.int64)

    def work(f: int) -> None:
        start = int(starts[f])
        size = cols[f].size
        n, total = copy_sort_finite(cols[f], values[start : start + size], _scratch(size))
        values[start + n : starts[f + 1]] = np.inf
        counts[f] = n
        if then is not None:
            then(f, values[start : start + n], total)

    map_threads(work, len(cols), n_threads or default_threads())
    n_missing = np.array([c.size for c in cols], dtype=np.int64) - counts
    return SortedColumns(values, starts[:-1], counts, n_missing)


def merge_sorted(blocks: Sequence[SortedColumns], n_threads: int | None = None) -> SortedColumns:
    """One :class:`SortedColumns` holding the union of several blocks, exactly."""
    if len(blocks) == 1:
        return blocks[0]
    counts = np.sum([b.counts for b in blocks], axis=0).astype(np.int64)
    n_missing = np.sum([b.n_missing for b in blocks], axis=0).astype(np.int64)
    starts = _slots(counts.tolist())
    values = np.empty(int(starts[-1]), dtype=np.float64)

    def work(f: int) -> None:
        pos = int(starts[f])
        for block in blocks:
            piece = block.column(f)
            values[pos : pos + piece.size] = piece
            pos += piece.size
        sort_finite(values[starts[f] : pos], _scratch(pos - int(starts[f])))
        values[pos : starts[f + 1]] = np.inf

    map_threads(work, counts.size, n_threads or default_threads())
    return SortedColumns(values, starts[:-1], counts, n_missing)


def finite_padded(values, name: str = "values") -> tuple[np.ndarray, int]:
    """Sorted float64 finite values of one column plus ``SENTINELS`` ``+inf``, and #missing."""
    block = sort_columns([as_numeric(values, name)], n_threads=1)
    return block.padded(0), int(block.n_missing[0])


def finite_sorted(values, name: str = "values") -> tuple[np.ndarray, int]:
    """Sorted float64 finite values of one column and its count of NaN/+-inf."""
    padded, n_missing = finite_padded(values, name)
    return padded[:-SENTINELS], n_missing


def pack_sorted(columns: Sequence[np.ndarray], n_missing: np.ndarray) -> SortedColumns:
    """Pack already sorted finite columns (e.g. loaded from a profile) with sentinels."""
    counts = np.array([c.size for c in columns], dtype=np.int64)
    starts = _slots(counts.tolist())
    values = np.full(int(starts[-1]), np.inf)
    for f, col in enumerate(columns):
        values[starts[f] : starts[f] + col.size] = col
    return SortedColumns(values, starts[:-1], counts, np.asarray(n_missing, dtype=np.int64))
