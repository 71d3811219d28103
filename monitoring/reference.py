"""What the monitor compares a model version with, and how log columns become kernel columns.

Each model version carries its reference profile and optionally an output reference and a
multivariate reference (the artifacts and their naming are defined in ``registry.references``).
The multivariate reference scores the model's preprocessed features (its own preprocessor);
it is left off for a version when ``drift.exclude`` names a feature it covers (a PCA cannot
drop a column after the fit).

Personal-data features (``pii`` in the schema) and features in ``drift.exclude`` are
never tested: they are fed to the kernels as missing and left out of every verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contracts import predlog
from kernels import CbpeReference, ReconstructionReference, ReferenceProfile
from registry.preprocess import Preprocessor
from registry.references import (
    CBPE_FILE,
    MULTIVARIATE_FILE,
    OUTPUT_PROFILE_FILE,
    PROFILE_FILE,
    is_text,
    load_cbpe,
    load_multivariate,
    load_profile,
    multivariate_matrix,
    output_columns,
)
from registry.schema import ModelSchema
from registry.store import ModelVersion


def numeric(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """float64 with NaN for nulls (zero copy when there are none)."""
    if not pa.types.is_floating(col.type) or col.type != pa.float64():
        col = pc.cast(col, pa.float64())
    if col.null_count:
        col = pc.fill_null(col, np.nan)
    return col.to_numpy() if isinstance(col, pa.Array) else np.asarray(col.to_numpy())


def categorical(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Strings for the kernels: a numpy unicode array without nulls, else objects with None.

    Built from Arrow's dictionary encoding (as read from Parquet, or computed here): one
    Python string per distinct value, then a C-level take, instead of one object per row.
    """
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if not all(_is_string(c.type) for c in chunks):
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    parts = [_decoded(c if pa.types.is_dictionary(c.type) else pc.dictionary_encode(c)) for c in chunks]
    if len(parts) == 1:
        return parts[0]
    if any(p.dtype == object for p in parts):
        parts = [p.astype(object) for p in parts]
    return np.concatenate(parts) if parts else np.array([], dtype=str)


def _is_string(kind: pa.DataType) -> bool:
    kind = kind.value_type if pa.types.is_dictionary(kind) else kind
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _decoded(encoded: pa.DictionaryArray) -> np.ndarray:
    values = encoded.dictionary.to_numpy(zero_copy_only=False)
    if encoded.null_count == 0:
        return values.astype(str)[encoded.indices.to_numpy()] if len(values) else np.array([], dtype=str)
    values = np.append(values.astype(object), None)
    return values[pc.fill_null(encoded.indices, len(values) - 1).to_numpy()]


def matrix(col: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed_size_list<float>[width] column as a [rows, width] float64 array (NaN rows for nulls)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        col = pc.if_else(pc.is_null(col), pa.scalar([np.nan] * width, col.type), col)
    flat = col.flatten().to_numpy(zero_copy_only=False)
    return flat.astype(np.float64, copy=False).reshape(-1, width)


@dataclass
class VersionContext:
    """One model version as the monitor sees it."""

    model: str
    version: str
    schema: ModelSchema
    profile: ReferenceProfile
    outputs_profile: ReferenceProfile | None
    excluded: dict[str, str] = field(default_factory=dict)  # feature -> why it is not tested
    multivariate: ReconstructionReference | None = None
    multivariate_features: tuple[str, ...] = ()
    preprocessor: Preprocessor | None = None
    multivariate_off: str | None = None  # why a version with a multivariate reference is not scored by it
    cbpe: CbpeReference | None = None
    cbpe_column: str | None = None  # the output column (positive-class probability) CBPE reads

    def multivariate_rows(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The preprocessed matrix of the features the multivariate reference covers."""
        return multivariate_matrix(self.preprocessor, inputs, self.multivariate_features)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f for f in self.profile.features if f not in self.excluded)

    @property
    def log_columns(self) -> list[str]:
        return [predlog.INPUT_PREFIX + f for f in self.features] + self.output_log_columns

    @property
    def output_log_columns(self) -> list[str]:
        """The outputs' log columns when outputs are compared (else none is read)."""
        return [predlog.OUTPUT_PREFIX + o.name for o in self.schema.outputs] if self.outputs_profile is not None else []

    @property
    def dictionary_columns(self) -> list[str]:
        """Log columns that may hold strings (categorical inputs, outputs): read dictionary-encoded."""
        cats = [predlog.INPUT_PREFIX + f for f in self.profile.categorical.names if f not in self.excluded]
        return cats + self.output_log_columns

    def input_columns(self, table: pa.Table) -> dict[str, np.ndarray]:
        """Every profile feature; excluded or absent ones as all-missing (no evidence)."""
        n = table.num_rows
        cats = set(self.profile.categorical.names)
        cols = {}
        for name in self.profile.features:
            log_name = predlog.INPUT_PREFIX + name
            present = name not in self.excluded and log_name in table.column_names
            if name in cats:
                cols[name] = categorical(table[log_name]) if present else np.full(n, None, dtype=object)
            else:
                cols[name] = numeric(table[log_name]) if present else np.full(n, np.nan)
        return cols

    def model_outputs(self, table: pa.Table) -> dict[str, np.ndarray]:
        """Outputs as the model returned them (probability matrices, labels, predictions)."""
        out = {}
        for spec in self.schema.outputs:
            name = predlog.OUTPUT_PREFIX + spec.name
            if name not in table.column_names:
                continue
            col = table[name]
            if len(spec.shape) == 1:
                out[spec.name] = matrix(col, spec.shape[0])
            elif _is_string(col.type):
                out[spec.name] = categorical(col)
            else:
                out[spec.name] = numeric(col)
        return out

    def prediction(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """What live metrics score: class probabilities [n, C], or a regressor's output [n]."""
        for spec in self.schema.outputs:
            values = outputs.get(spec.name)
            if values is None or is_text(values):
                continue
            if self.schema.task == "classification" and values.ndim == 2:
                return values
            if self.schema.task == "regression" and values.ndim == 1:
                return values
        return None

    def output_columns(self, outputs: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """Columns for the output profile; absent ones as all-missing."""
        cols = output_columns(self.schema, outputs)
        ref = self.outputs_profile
        cats = set(ref.categorical.names)
        out = {}
        for name in ref.features:
            if name in cols:
                out[name] = cols[name]
            else:
                out[name] = np.full(n, None, dtype=object) if name in cats else np.full(n, np.nan)
        return out


def load_context(mv: ModelVersion, exclude: tuple[str, ...] = (), use_outputs: bool = True) -> VersionContext | None:
    """The context of a registered version, or None when it has no reference profile."""
    if not mv.has(PROFILE_FILE):
        return None
    schema = mv.schema
    profile = load_profile(mv.read(PROFILE_FILE))
    outputs = load_profile(mv.read(OUTPUT_PROFILE_FILE)) if use_outputs and mv.has(OUTPUT_PROFILE_FILE) else None
    excluded = {f.name: "personal data" for f in schema.inputs if f.pii and f.name in profile.features}
    excluded.update({f: "excluded by configuration" for f in exclude if f in profile.features})
    ctx = VersionContext(mv.name, str(mv.version), schema, profile, outputs, excluded)
    if mv.has(MULTIVARIATE_FILE):
        reference, features = load_multivariate(mv.read(MULTIVARIATE_FILE))
        left_out = [f for f in features if f in exclude]
        pre = mv.preprocessor()
        if left_out:
            ctx.multivariate_off = f"covers features excluded by configuration ({', '.join(left_out)})"
        elif pre is None:
            ctx.multivariate_off = "the version has no preprocessor"
        else:
            ctx.multivariate, ctx.multivariate_features, ctx.preprocessor = reference, features, pre
    if outputs is not None and mv.has(CBPE_FILE):
        ctx.cbpe, ctx.cbpe_column = load_cbpe(mv.read(CBPE_FILE))
    return ctx
