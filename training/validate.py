"""Row validation of a source table against a :class:`DatasetSchema`, and schema inference.

Columns are parsed whole (vectorised); a row with any problem is rejected with its row
number in the source (0-based, header excluded) and every reason, never silently dropped.
Clean columns come out in the form the preprocessor takes: numeric float64 with NaN as
missing, categorical object arrays with ``None`` as missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from contracts.errors import InvalidInput
from training.dataschema import ColumnSpec, DatasetSchema

_NUMERIC_SHARE = 0.98  # an inferred string column is numeric when this share parses


@dataclass
class Validated:
    columns: dict[str, np.ndarray]  # clean, accepted rows only
    source_rows: np.ndarray         # row number in the source of each accepted row
    rejected: pa.Table              # the source's rejected rows + source_row + reasons

    @property
    def n_rejected(self) -> int:
        return self.rejected.num_rows


class _Problems:
    """Reasons per row, collected column by column."""

    def __init__(self, n_rows: int) -> None:
        self.bad = np.zeros(n_rows, dtype=bool)
        self.reasons: dict[int, list[str]] = {}

    def add(self, mask: np.ndarray, raw: np.ndarray, template: str) -> None:
        for i in np.flatnonzero(mask):
            self.reasons.setdefault(int(i), []).append(template.format(value=raw[i]))
        self.bad |= mask


def _strings(col: pa.ChunkedArray) -> np.ndarray:
    """Object array of str, ``None`` where missing (empty strings count as missing)."""
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    out = np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    out[np.equal(out, None) | (out == "")] = None
    return out


def _numbers(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values with NaN where missing or unparsable, missing mask, unparsable mask)."""
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type) \
            or pa.types.is_decimal(col.type):
        values = np.array(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        missing = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool) | np.isnan(values)
        return values, missing, np.zeros(len(values), dtype=bool)
    raw = _strings(col)
    missing = np.equal(raw, None)
    parsed = pd.to_numeric(pd.Series(raw, dtype=object).str.strip(), errors="coerce")
    values = np.array(parsed, dtype=np.float64)
    literal_nan = np.array([isinstance(v, str) and v.strip().lower() == "nan" for v in raw], dtype=bool)
    missing |= literal_nan
    return values, missing, np.isnan(values) & ~missing


def _check_numeric(spec: ColumnSpec, col: pa.ChunkedArray, problems: _Problems, label: str) -> np.ndarray:
    values, missing, unparsable = _numbers(col)
    raw = _strings(col) if unparsable.any() else None
    if raw is not None:
        problems.add(unparsable, raw, f"{label}: not a number ({{value!r}})")
    infinite = np.isinf(values)
    problems.add(infinite, values, f"{label}: not finite ({{value}})")
    if not spec.nullable:
        problems.add(missing, values, f"{label}: missing")
    values[unparsable] = np.nan
    return values


def _check_categorical(spec: ColumnSpec, col: pa.ChunkedArray, problems: _Problems, label: str) -> np.ndarray:
    values = _strings(col)
    missing = np.equal(values, None)
    if not spec.nullable:
        problems.add(missing, values, f"{label}: missing")
    if spec.levels is not None:
        unknown = ~missing & ~pd.Series(values, dtype=object).isin(spec.levels).to_numpy()
        problems.add(unknown, values, f"{label}: unknown level {{value!r}}")
    return values


def validate(table: pa.Table, schema: DatasetSchema) -> Validated:
    """Split ``table`` into clean accepted columns and the rejected rows with their reasons."""
    absent = [c for c in schema.columns if c not in table.column_names]
    if absent:
        raise InvalidInput(f"source: missing column(s) {', '.join(absent)}")
    problems = _Problems(table.num_rows)
    columns: dict[str, np.ndarray] = {}
    for spec in schema.features:
        check = _check_categorical if spec.kind == "categorical" else _check_numeric
        columns[spec.name] = check(spec, table[spec.name], problems, spec.name)
    columns[schema.target] = _check_target(schema, table[schema.target], problems)
    if schema.group_by and schema.group_by not in columns:
        columns[schema.group_by] = _strings(table[schema.group_by])
    keep = np.flatnonzero(~problems.bad)
    bad = np.flatnonzero(problems.bad)
    reasons = pa.array(["; ".join(problems.reasons[int(i)]) for i in bad], type=pa.string())
    rejected = table.take(pa.array(bad)).append_column("source_row", pa.array(bad, type=pa.int64()))
    rejected = rejected.append_column("reasons", reasons)
    return Validated({k: v[keep] for k, v in columns.items()}, keep.astype(np.int64), rejected)


def _check_target(schema: DatasetSchema, col: pa.ChunkedArray, problems: _Problems) -> np.ndarray:
    label = f"target {schema.target}"
    if schema.task == "regression":
        spec = ColumnSpec(name=schema.target, kind="numeric", nullable=False)
        return _check_numeric(spec, col, problems, label)
    spec = ColumnSpec(name=schema.target, kind="categorical", nullable=False, levels=schema.class_labels)
    return _check_categorical(spec, col, problems, label)


def infer_schema(table: pa.Table, target: str, *, task: str | None = None, group_by: str | None = None,
                 drop: tuple[str, ...] = (), max_levels: int = 256) -> DatasetSchema:
    """Numeric when (almost) every value parses as a number, else categorical with the seen levels."""
    for name in (target, group_by, *drop):
        if name and name not in table.column_names:
            raise InvalidInput(f"source: no column {name!r}")
    features = []
    for name in table.column_names:
        if name in (target, group_by) or name in drop:
            continue
        features.append(_infer_column(name, table[name], max_levels))
    if not features:
        raise InvalidInput("source: no feature columns left besides the target")
    col = table[target]
    numeric_target = _numeric_share(col) >= _NUMERIC_SHARE
    task = task or ("regression" if numeric_target else "classification")
    labels: tuple[str, ...] = ()
    if task == "classification":
        labels = tuple(sorted({v for v in _strings(col) if v is not None}))
        if len(labels) > max_levels:
            raise InvalidInput(f"--target {target}: {len(labels)} classes; is it a regression target (--task)?")
    return DatasetSchema(features=tuple(features), target=target, task=task, class_labels=labels, group_by=group_by)


def _numeric_share(col: pa.ChunkedArray) -> float:
    values, missing, unparsable = _numbers(col)
    present = int((~missing).sum())
    return 1.0 if present == 0 else 1.0 - float(unparsable.sum()) / present


def _infer_column(name: str, col: pa.ChunkedArray, max_levels: int) -> ColumnSpec:
    if _numeric_share(col) >= _NUMERIC_SHARE:
        return ColumnSpec(name=name, kind="numeric")
    levels = sorted({v for v in _strings(col) if v is not None})
    if len(levels) > max_levels:
        raise InvalidInput(f"source column {name!r}: {len(levels)} distinct values (limit {max_levels}); "
                           "drop it (--drop) or give a schema (--schema)")
    return ColumnSpec(name=name, kind="categorical", levels=tuple(levels))
