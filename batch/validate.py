"""Row-level validation of Arrow batches against a model schema, for batch scoring.

Real-time serving rejects a whole request; a batch run rejects single rows, with the
reason, and scores the rest. The checks are serving's own (``check_finite``; an empty
category is missing, as on the v2 and plain routes), applied per row, and the valid
rows come out as serving's ``Prepared`` payload, so ``ModelPipeline`` sees batch rows
exactly as it sees request rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contracts.errors import InvalidInput
from registry.schema import FeatureSpec, ModelSchema
from serving.pipeline import Prepared, check_finite

Problems = dict[int, str]  # row position in the batch -> reason


@dataclass
class CheckedBatch:
    prepared: Prepared  # the valid rows, in order
    valid: np.ndarray | None  # mask over the batch's rows; None: every row is valid
    reasons: list[str]  # one per rejected row, in order


def check_batch(schema: ModelSchema, batch: pa.RecordBatch) -> CheckedBatch:
    columns: dict[str, np.ndarray] = {}
    problems: dict[int, list[str]] = {}
    for spec in schema.inputs:
        values, bad = feature_values(spec, batch.column(spec.name))
        columns[spec.name] = values
        for row, reason in bad.items():
            problems.setdefault(row, []).append(reason)
    if not problems:
        return CheckedBatch(Prepared(rows=batch.num_rows, columns=columns), None, [])
    rejected = sorted(problems)
    valid = np.ones(batch.num_rows, dtype=bool)
    valid[rejected] = False
    kept = {name: values[valid] for name, values in columns.items()}
    return CheckedBatch(Prepared(rows=int(valid.sum()), columns=kept), valid,
                        ["; ".join(problems[row]) for row in rejected])


def feature_values(spec: FeatureSpec, arr: pa.Array) -> tuple[np.ndarray, Problems]:
    """The column as ``Preprocessor.transform`` takes it, and the rows it cannot take."""
    if spec.categorical:
        return _categorical(spec, arr)
    values, bad = _numbers(spec, arr)
    bad.update({row: reason for row, reason in _not_finite(spec, values).items() if row not in bad})
    return values, bad


def accepts(spec: FeatureSpec, dtype: pa.DataType) -> bool:
    """Whether a column of ``dtype`` can feed ``spec`` (per-row problems aside)."""
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if pa.types.is_null(dtype) or _is_text(dtype) or pa.types.is_integer(dtype):
        return True
    return not spec.categorical and (pa.types.is_floating(dtype) or pa.types.is_boolean(dtype)
                                     or pa.types.is_decimal(dtype))


def _is_text(dtype: pa.DataType) -> bool:
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype)


def _is_binary(dtype: pa.DataType) -> bool:
    return pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype)


def _everywhere(n: int, reason: str) -> Problems:
    return dict.fromkeys(range(n), reason)


def _numbers(spec: FeatureSpec, arr: pa.Array) -> tuple[np.ndarray, Problems]:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if _is_text(arr.type):
        return _parse_numbers(spec.name, arr)
    if not accepts(spec, arr.type):
        return np.full(len(arr), np.nan), _everywhere(len(arr), f"{spec.name}: expected a number, got {arr.type}")
    return pc.cast(arr, pa.float64(), safe=False).to_numpy(zero_copy_only=False), {}


def _parse_numbers(name: str, arr: pa.Array) -> tuple[np.ndarray, Problems]:
    try:
        return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), {}
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # some value is not a number: find which, row by row
    values, bad = np.full(len(arr), np.nan), {}
    for row, text in enumerate(arr.to_pylist()):
        try:
            values[row] = np.nan if text is None else float(text)
        except ValueError:
            bad[row] = f"{name}: expected a number, got {text[:40]!r}"
    return values, bad


def _not_finite(spec: FeatureSpec, values: np.ndarray) -> Problems:
    """Rows ``serving.pipeline.check_finite`` refuses, each with its message."""
    try:
        check_finite(spec, values, spec.name)
        return {}
    except InvalidInput:
        pass
    bad = {}
    for row in np.flatnonzero(~np.isfinite(values)):
        try:
            check_finite(spec, values[row:row + 1], spec.name)
        except InvalidInput as exc:
            bad[int(row)] = exc.message
    return bad


def _categorical(spec: FeatureSpec, arr: pa.Array) -> tuple[np.ndarray, Problems]:
    """Object array of str (bytes for binary columns); null and "" are missing (None)."""
    n = len(arr)
    if pa.types.is_null(arr.type):
        values = np.full(n, None, dtype=object)
    else:
        if not pa.types.is_dictionary(arr.type):
            arr = pc.dictionary_encode(arr)
        levels = arr.dictionary
        if pa.types.is_integer(levels.type):
            levels = pc.cast(levels, pa.string())  # 7 -> "7", as serving takes integer categories
        if not (_is_text(levels.type) or _is_binary(levels.type)):
            return np.full(n, None, dtype=object), _everywhere(
                n, f"{spec.name}: a categorical feature takes text or integers, got {levels.type}")
        table = np.array([None if v in ("", b"") else v for v in levels.to_pylist()] + [None], dtype=object)
        values = table[arr.indices.fill_null(len(levels)).to_numpy(zero_copy_only=False)]
    if spec.nullable:
        return values, {}
    return values, {int(r): f"{spec.name}: missing value not allowed" for r in np.flatnonzero(np.equal(values, None))}
