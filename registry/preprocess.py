"""The fitted tabular preprocessor: the exact code serving, batch and training apply.

Fitted on the training split only, stored as ``preprocessor.json`` (plain numbers and
strings, no pickle). Encodings, all defined, never an error:

* numeric feature -> two columns: the standardised value clipped to
  ``[-clip_z, clip_z]`` (missing -> 0, the training mean) and a missing indicator;
* categorical feature -> one-hot over the training categories plus two extra
  columns: ``unseen`` (a category never seen in training) and ``missing`` (null).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from registry.schema import ModelSchema

_SMALL_BATCH_ROWS = 64


@dataclass(frozen=True)
class NumericEncoding:
    mean: float
    std: float


@dataclass(frozen=True)
class CategoricalEncoding:
    categories: tuple[str, ...]
    index: dict[str, int] = field(compare=False, repr=False)

    @classmethod
    def of(cls, categories: tuple[str, ...]) -> CategoricalEncoding:
        return cls(categories, {c: i for i, c in enumerate(categories)})

    @property
    def width(self) -> int:
        return len(self.categories) + 2

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Category index; ``n`` for unseen, ``n + 1`` for missing (None or NaN)."""
        n = len(self.categories)
        if len(values) <= _SMALL_BATCH_ROWS:
            return np.fromiter(
                (n + 1 if _is_missing(v) else self.index.get(_as_str(v), n) for v in values),
                dtype=np.int64,
                count=len(values),
            )
        types = set(map(type, values))
        if types <= {str, type(None)}:  # text and None only: one dict lookup per value, exact
            codes = np.fromiter(map(self.index.get, values, repeat(n)), dtype=np.int64, count=len(values))
            if type(None) in types:
                codes[np.equal(values, None)] = n + 1
            return codes
        import pandas as pd

        as_str = [None if _is_missing(v) else _as_str(v) for v in values]
        codes = pd.Categorical(as_str, categories=list(self.categories)).codes.astype(np.int64)
        missing = np.fromiter((v is None for v in as_str), dtype=bool, count=len(as_str))
        codes[codes < 0] = n
        codes[missing] = n + 1
        return codes


def _is_missing(value: object) -> bool:
    """``None``, or the float NaN pandas uses for a missing value."""
    return value is None or (isinstance(value, float) and value != value)


def _as_str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value != value:  # NaN used as missing in pandas
        return "__nan__"
    return str(value)


def categorical_missing(values: np.ndarray) -> np.ndarray:
    """Normalise pandas-style NaN in a categorical column to ``None``."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = None if _is_missing(v) else v
    return out


class Preprocessor:
    """Maps named columns to the model's float32 matrix."""

    def __init__(
        self,
        schema: ModelSchema,
        numeric: dict[str, NumericEncoding],
        categorical: dict[str, CategoricalEncoding],
        clip_z: float = 10.0,
    ) -> None:
        self.schema = schema
        self.numeric = numeric
        self.categorical = categorical
        self.clip_z = clip_z
        self.width = sum(2 for _ in numeric) + sum(e.width for e in categorical.values())

    @classmethod
    def fit(cls, schema: ModelSchema, columns: dict[str, np.ndarray], clip_z: float = 10.0) -> Preprocessor:
        numeric: dict[str, NumericEncoding] = {}
        categorical: dict[str, CategoricalEncoding] = {}
        for spec in schema.inputs:
            col = columns[spec.name]
            if spec.categorical:
                seen = sorted({_as_str(v) for v in categorical_missing(col) if v is not None})
                categorical[spec.name] = CategoricalEncoding.of(tuple(seen))
            else:
                x = np.asarray(col, dtype=np.float64)
                x = x[np.isfinite(x)]
                mean = float(x.mean()) if x.size else 0.0
                std = float(x.std()) if x.size else 1.0
                numeric[spec.name] = NumericEncoding(mean, std if std > 0 else 1.0)
        return cls(schema, numeric, categorical, clip_z)

    def transform(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Columns (numeric: float with NaN as missing; categorical: objects, None missing)."""
        n_rows = len(next(iter(columns.values()))) if columns else 0
        out = np.zeros((n_rows, self.width), dtype=np.float32)
        offset = 0
        for spec in self.schema.inputs:
            col = columns[spec.name]
            if spec.categorical:
                enc = self.categorical[spec.name]
                out[np.arange(n_rows), offset + enc.codes(col)] = 1.0
                offset += enc.width
            else:
                enc_n = self.numeric[spec.name]
                x = np.asarray(col, dtype=np.float64).reshape(n_rows)
                missing = np.isnan(x)
                z = np.clip((x - enc_n.mean) / enc_n.std, -self.clip_z, self.clip_z)
                out[:, offset] = np.where(missing, 0.0, z)
                out[:, offset + 1] = missing
                offset += 2
        return out

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": 1,
                "clip_z": self.clip_z,
                "numeric": {k: {"mean": v.mean, "std": v.std} for k, v in self.numeric.items()},
                "categorical": {k: list(v.categories) for k, v in self.categorical.items()},
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, schema: ModelSchema, text: str) -> Preprocessor:
        data = json.loads(text)
        numeric = {k: NumericEncoding(v["mean"], v["std"]) for k, v in data["numeric"].items()}
        categorical = {k: CategoricalEncoding.of(tuple(v)) for k, v in data["categorical"].items()}
        return cls(schema, numeric, categorical, data["clip_z"])
