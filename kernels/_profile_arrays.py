"""A profile as a flat ``dict[str, np.ndarray]`` (plain arrays, no pickle) and back."""

from __future__ import annotations

import numpy as np

from ._columns import pack_sorted
from ._reference import CategoricalReference, NumericReference, offsets

FORMAT_VERSION = 1
_NUM = "numeric."
_CAT = "categorical."


def _names(names: tuple[str, ...]) -> np.ndarray:
    return np.array(names, dtype=str) if names else np.zeros(0, dtype="U1")


def numeric_to_arrays(ref: NumericReference) -> dict[str, np.ndarray]:
    block = ref.sorted
    values = np.concatenate([block.column(f) for f in range(block.n_columns)] or [block.values[:0]])
    return {
        _NUM + "names": _names(ref.names),
        _NUM + "values": values,
        _NUM + "counts": block.counts.copy(),
        _NUM + "n_missing": block.n_missing.copy(),
        _NUM + "edges": ref.edges,
        _NUM + "edge_starts": ref.edge_starts,
        _NUM + "bin_counts": ref.bin_counts,
        _NUM + "mean": ref.mean,
        _NUM + "std": ref.std,
    }


def categorical_to_arrays(ref: CategoricalReference) -> dict[str, np.ndarray]:
    out = {
        _CAT + "names": _names(ref.names),
        _CAT + "counts": ref.counts,
        _CAT + "count_starts": ref.count_starts,
        _CAT + "n_missing": ref.n_missing,
    }
    for f, vocab in enumerate(ref.vocabularies):
        out[f"{_CAT}vocabulary.{f}"] = vocab
    return out


def _get(arrays, key: str, dtype=None) -> np.ndarray:
    if key not in arrays:
        raise ValueError(f"profile arrays lack {key!r}")
    arr = np.asarray(arrays[key])
    return arr.astype(dtype, copy=False) if dtype is not None else arr


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(f"inconsistent profile arrays: {what}")


def numeric_from_arrays(arrays) -> NumericReference:
    names = tuple(str(n) for n in _get(arrays, _NUM + "names"))
    counts = _get(arrays, _NUM + "counts", np.int64)
    values = _get(arrays, _NUM + "values", np.float64)
    edge_starts = _get(arrays, _NUM + "edge_starts", np.int64)
    edges = _get(arrays, _NUM + "edges", np.float64)
    bin_counts = _get(arrays, _NUM + "bin_counts", np.int64)
    f = len(names)
    _check(counts.size == f and int(counts.sum()) == values.size, "numeric values/counts")
    _check(edge_starts.size == f + 1 and int(edge_starts[-1]) == edges.size, "numeric edges")
    _check(bin_counts.size == edges.size + f, "numeric bin counts")
    bounds = offsets(counts)
    cols = [values[bounds[i] : bounds[i + 1]] for i in range(f)]
    block = pack_sorted(cols, _get(arrays, _NUM + "n_missing", np.int64))
    return NumericReference(
        names, block, edges, edge_starts, bin_counts,
        _get(arrays, _NUM + "mean", np.float64), _get(arrays, _NUM + "std", np.float64),
    )  # fmt: skip


def categorical_from_arrays(arrays) -> CategoricalReference:
    names = tuple(str(n) for n in _get(arrays, _CAT + "names"))
    vocabularies = tuple(_get(arrays, f"{_CAT}vocabulary.{f}") for f in range(len(names)))
    count_starts = _get(arrays, _CAT + "count_starts", np.int64)
    counts = _get(arrays, _CAT + "counts", np.int64)
    _check(count_starts.size == len(names) + 1, "categorical count_starts")
    _check(counts.size == sum(v.size + 1 for v in vocabularies), "categorical counts")
    n_missing = _get(arrays, _CAT + "n_missing", np.int64)
    return CategoricalReference(names, vocabularies, counts, count_starts, n_missing)


def settings_to_arrays(bins: int, eps: float) -> dict[str, np.ndarray]:
    return {
        "format_version": np.array(FORMAT_VERSION),
        "bins": np.array(bins, dtype=np.int64),
        "eps": np.array(eps, dtype=np.float64),
    }


def settings_from_arrays(arrays) -> tuple[int, float]:
    version = int(_get(arrays, "format_version"))
    if version != FORMAT_VERSION:
        raise ValueError(f"profile format version {version} is not supported ({FORMAT_VERSION})")
    return int(_get(arrays, "bins")), float(_get(arrays, "eps"))
