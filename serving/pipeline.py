"""A model version's compute path: validated payloads, preprocessing, the runner, postprocessing.

Ray-free and HTTP-free: real-time serving (through the batcher) and batch scoring
(on Ray Data) call exactly this, so their predictions agree.

* :func:`prepare` validates a request's tensors against the model schema (names,
  shapes, datatypes, finiteness) into a :class:`Prepared` payload: columns for tabular
  models, one array for tensor models, that the batcher concatenates across callers.
* :class:`ModelPipeline` computes a batch of payloads: preprocessing, the runner
  (``serving.runner``), postprocessing, outputs split back per payload.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from contracts.errors import InvalidInput
from registry.schema import FeatureSpec, ModelSchema
from registry.store import ModelVersion
from serving.runner import Precision, TorchRunner
from serving.types import Tensor

Outputs = dict[str, np.ndarray]

_NUMERIC_V2 = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
_INTEGER_V2 = {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}


@dataclass
class Prepared:
    rows: int
    columns: dict[str, np.ndarray] | None = None  # tabular
    tensor: np.ndarray | None = None  # tensor models


def prepare(schema: ModelSchema, inputs: list[Tensor], input_names: frozenset[str] | None = None) -> Prepared:
    """``inputs`` validated against ``schema`` (``input_names``: its input names, when the
    caller keeps them)."""
    by_name = {t.name: t for t in inputs}
    names = input_names if input_names is not None else frozenset(schema.feature_names)
    unknown = [n for n in by_name if n not in names]
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

class SplitOutputs(list):
    """Outputs per payload (a list, in order), with the whole batch's validated ``inputs``
    and ``outputs`` (the per-payload outputs are views of these): the prediction log
    records a batch as it was computed, without gathering it back request by request."""

    def __init__(self, parts: list[Outputs], inputs: dict[str, np.ndarray], outputs: Outputs) -> None:
        super().__init__(parts)
        self.inputs = inputs
        self.outputs = outputs


class ModelPipeline:
    def __init__(self, version: ModelVersion, device: str = "auto", precision: Precision = "fp32",
                 cuda_graph_batch_sizes: tuple[int, ...] = ()) -> None:
        self.name = version.name
        self.version: int = version.version
        self.schema: ModelSchema = version.schema
        self.preprocessor = version.preprocessor()
        self.runner = TorchRunner(version.load_torch("cpu"), device=device, precision=precision,
                                  cuda_graph_batch_sizes=cuda_graph_batch_sizes)
        self._labels = np.array([s.encode() for s in self.schema.class_labels], dtype=object)
        self.input_names = frozenset(self.schema.feature_names)
        self._feature_names = tuple(self.schema.feature_names)
        self.output_datatypes = {spec.name: spec.datatype for spec in self.schema.outputs}

    def prepare(self, inputs: list[Tensor]) -> Prepared:
        """A request's tensors, validated against this version's schema."""
        return prepare(self.schema, inputs, self.input_names)

    @property
    def row_shape(self) -> tuple[int, ...]:
        if self.preprocessor is not None:
            return (self.preprocessor.width,)
        return tuple(abs(d) for d in self.schema.inputs[0].shape)

    def warm_up(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        """Run the runner at each batch size (and its CUDA graph buckets), then whole batches
        built from the schema through preprocessing, the runner and postprocessing, so the
        first real request finds every path compiled and every buffer allocated."""
        self.runner.warm_up(self.row_shape, batch_sizes)
        for rows in sorted(set(batch_sizes)):
            self.predict_split([self.synthetic(rows)])

    def synthetic(self, rows: int) -> Prepared:
        """A valid payload of ``rows`` rows made from the schema alone: numeric features 0,
        categorical ones the first training category (missing when none was seen)."""
        if self.schema.kind == "tensor":
            spec = self.schema.inputs[0]
            return Prepared(rows, tensor=np.zeros((rows, *(abs(d) for d in spec.shape)), dtype=spec.numpy_dtype))
        columns = {}
        for spec in self.schema.inputs:
            if spec.categorical:
                encoding = self.preprocessor.categorical.get(spec.name) if self.preprocessor is not None else None
                value = encoding.categories[0] if encoding is not None and encoding.categories else None
                columns[spec.name] = np.full(rows, value, dtype=object)
            else:
                columns[spec.name] = np.zeros(rows, dtype=np.float64)
        return Prepared(rows, columns=columns)

    def inputs(self, batch: Sequence[Prepared]) -> dict[str, np.ndarray]:
        """The validated inputs of several payloads, concatenated in order, by input name."""
        if self.preprocessor is not None:
            return {n: concat_rows([p.columns[n] for p in batch]) for n in self._feature_names}
        return {self.schema.inputs[0].name: concat_rows([p.tensor for p in batch])}

    def features(self, batch: Sequence[Prepared]) -> np.ndarray:
        """The model's input matrix for several validated payloads, in order."""
        return self._features(self.inputs(batch))

    def _features(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        if self.preprocessor is not None:
            return self.preprocessor.transform(inputs)
        return inputs[self.schema.inputs[0].name].astype(np.float32, copy=False)

    def predict(self, batch: Sequence[Prepared]) -> Outputs:
        """Outputs for all rows of ``batch`` (concatenated in order)."""
        return self.postprocess(self.runner(self.features(batch)))

    def predict_split(self, batch: Sequence[Prepared]) -> SplitOutputs:
        """Outputs per payload: rows never cross from one payload to another."""
        inputs = self.inputs(batch)
        outputs = self.postprocess(self.runner(self._features(inputs)))
        if len(batch) == 1:
            return SplitOutputs([outputs], inputs, outputs)
        bounds = np.cumsum([0] + [p.rows for p in batch]).tolist()
        parts = [{k: v[a:b] for k, v in outputs.items()} for a, b in zip(bounds[:-1], bounds[1:])]
        return SplitOutputs(parts, inputs, outputs)

    def postprocess(self, y: np.ndarray) -> Outputs:
        if self.schema.task == "classification":
            return {"probabilities": y.astype(np.float32, copy=False), "label": self._labels[y.argmax(axis=1)]}
        first = self.schema.outputs[0]
        if self.schema.task == "regression":
            return {first.name: y.reshape(len(y), *first.shape)}
        return {first.name: y}


def concat_rows(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Arrays of rows, one after the other (no copy for a single part)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
