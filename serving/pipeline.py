"""A model version's full compute path: preprocessing, the runner, postprocessing.

Ray-free and HTTP-free: real-time serving (through the batcher) and batch scoring
(on Ray Data) call exactly this, so their predictions agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from registry.schema import ModelSchema
from registry.store import ModelVersion
from serving.runner import Precision, TorchRunner
from serving.validate import Prepared

Outputs = dict[str, np.ndarray]


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
        self.version = str(version.version)
        self.schema: ModelSchema = version.schema
        self.preprocessor = version.preprocessor()
        self.runner = TorchRunner(version.load_torch("cpu"), device=device, precision=precision,
                                  cuda_graph_batch_sizes=cuda_graph_batch_sizes)
        self._labels = np.array([s.encode() for s in self.schema.class_labels], dtype=object)

    @property
    def row_shape(self) -> tuple[int, ...]:
        if self.preprocessor is not None:
            return (self.preprocessor.width,)
        return tuple(abs(d) for d in self.schema.inputs[0].shape)

    def warm_up(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        self.runner.warm_up(self.row_shape, batch_sizes)

    def inputs(self, batch: Sequence[Prepared]) -> dict[str, np.ndarray]:
        """The validated inputs of several payloads, concatenated in order, by input name."""
        if self.preprocessor is not None:
            return {n: concat_rows([p.columns[n] for p in batch]) for n in self.schema.feature_names}
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
