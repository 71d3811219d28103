"""Request validation against a model schema: names, shapes, datatypes, finiteness.

Produces a :class:`Prepared` payload (columns for tabular models, one array for
tensor models) that the batcher can concatenate across callers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contracts.errors import InvalidInput
from registry.schema import FeatureSpec, ModelSchema
from serving.types import Tensor

_NUMERIC_V2 = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
_INTEGER_V2 = {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}


@dataclass
class Prepared:
    rows: int
    columns: dict[str, np.ndarray] | None = None  # tabular
    tensor: np.ndarray | None = None  # tensor models


def prepare(schema: ModelSchema, inputs: list[Tensor]) -> Prepared:
    by_name = {t.name: t for t in inputs}
    unknown = [n for n in by_name if schema.input(n) is None]
    if unknown:
        raise InvalidInput(f"inputs: unknown input {unknown[0]!r}; the model takes {schema.feature_names}")
    missing = [f.name for f in schema.inputs if f.name not in by_name]
    if missing:
        raise InvalidInput(f"inputs: missing input {missing[0]!r}")
    if schema.kind == "tensor":
        spec = schema.inputs[0]
        return Prepared(rows=_rows(by_name[spec.name]), tensor=_tensor(spec, by_name[spec.name]))
    columns = {f.name: _column(f, by_name[f.name]) for f in schema.inputs}
    rows = {len(c) for c in columns.values()}
    if len(rows) != 1:
        raise InvalidInput(f"inputs: all inputs need the same batch size, got {sorted(rows)}")
    return Prepared(rows=rows.pop(), columns=columns)


def _rows(t: Tensor) -> int:
    if not t.shape:
        raise InvalidInput(f"inputs.{t.name}.shape: needs a batch dimension")
    return t.shape[0]


def _column(spec: FeatureSpec, t: Tensor) -> np.ndarray:
    if len(t.shape) == 0 or len(t.shape) > 2 or (len(t.shape) == 2 and t.shape[1] != 1):
        raise InvalidInput(f"inputs.{spec.name}.shape: expected [N] or [N,1], got {list(t.shape)}")
    data = t.data.reshape(t.shape[0])
    if spec.categorical:
        return _categorical(spec, t, data)
    if t.datatype not in _NUMERIC_V2:
        raise InvalidInput(f"inputs.{spec.name}.datatype: numeric feature, got {t.datatype}")
    values = data.astype(np.float64)
    check_finite(spec, values, f"inputs.{spec.name}")
    return values


def check_finite(spec: FeatureSpec, values: np.ndarray, where: str) -> None:
    if values.dtype.kind != "f" or (math.isfinite(values.flat[0]) if values.size == 1 else np.isfinite(values).all()):
        return
    if not spec.allow_nonfinite and np.isinf(values).any():
        raise InvalidInput(f"{where}: non-finite value (infinity) not allowed")
    if not spec.nullable and np.isnan(values).any():
        raise InvalidInput(f"{where}: missing value (NaN) not allowed")


def _categorical(spec: FeatureSpec, t: Tensor, data: np.ndarray) -> np.ndarray:
    if t.datatype == "BYTES":
        out = np.array([None if v in (b"", "") else v for v in data], dtype=object)
    elif t.datatype in _INTEGER_V2:
        out = np.array([str(int(v)) for v in data], dtype=object)
    else:
        raise InvalidInput(f"inputs.{spec.name}.datatype: categorical feature takes BYTES, got {t.datatype}")
    if not spec.nullable and any(v is None for v in out):
        raise InvalidInput(f"inputs.{spec.name}: missing value not allowed")
    return out


def _tensor(spec: FeatureSpec, t: Tensor) -> np.ndarray:
    if t.datatype != spec.datatype:
        raise InvalidInput(f"inputs.{spec.name}.datatype: expected {spec.datatype}, got {t.datatype}")
    want = spec.shape
    got = t.shape[1:]
    if len(got) != len(want) or any(w not in (-1, g) for w, g in zip(want, got)):
        raise InvalidInput(f"inputs.{spec.name}.shape: expected [N,{','.join(map(str, want))}], got {list(t.shape)}")
    check_finite(spec, t.data, f"inputs.{spec.name}")
    return t.data.reshape(t.shape)
