"""A loaded model version: schema, preprocessor, runner and its batcher."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np

from registry.schema import ModelSchema
from registry.store import ModelVersion
from serving.batching import Batcher, BatchStats
from serving.config import ModelServingConfig
from serving.runner import TorchRunner
from serving.validate import Prepared, prepare
from serving.types import Tensor

Outputs = dict[str, np.ndarray]


class ServedModel:
    def __init__(
        self,
        version: ModelVersion,
        cfg: ModelServingConfig,
        on_batch: Callable[[str, str, BatchStats], None] | None = None,
    ) -> None:
        self.name = version.name
        self.version = str(version.version)
        self.schema: ModelSchema = version.schema
        self.preprocessor = version.preprocessor()
        self.runner = TorchRunner(
            version.load_torch("cpu"),
            device=cfg.device,
            precision=cfg.precision,
            cuda_graph_batch_sizes=cfg.cuda_graph_batch_sizes,
        )
        self.cfg = cfg
        self._labels = np.array([s.encode() for s in self.schema.class_labels], dtype=object)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"model-{self.name}-{self.version}")
        report = (lambda stats: on_batch(self.name, self.version, stats)) if on_batch else None
        self.batcher: Batcher[Prepared, Outputs] = Batcher(
            self.compute,
            self._executor,
            max_batch_size=cfg.max_batch_size,
            batch_wait_timeout_s=cfg.batch_wait_timeout_s,
            max_queue_size=cfg.max_queue_size,
            on_batch=report,
        )
        self.warm_up()

    def warm_up(self) -> None:
        width = self.preprocessor.width if self.preprocessor else None
        shape = (width,) if width else tuple(abs(d) for d in self.schema.inputs[0].shape)
        self.runner.warm_up(shape, (1, self.cfg.max_batch_size))

    def prepare(self, inputs: list[Tensor]) -> Prepared:
        return prepare(self.schema, inputs)

    async def infer(self, prepared: Prepared, deadline: float | None) -> Outputs:
        return await self.batcher.submit(prepared, prepared.rows, deadline)

    def compute(self, batch: Sequence[Prepared]) -> list[Outputs]:
        """Runs in the model's worker thread: preprocess, forward, split per caller."""
        if self.preprocessor is not None:
            names = self.schema.feature_names
            cols = {n: _concat([p.columns[n] for p in batch]) for n in names}
            x = self.preprocessor.transform(cols)
        else:
            x = _concat([p.tensor for p in batch]).astype(np.float32, copy=False)
        y = self.runner(x)
        outputs = self._postprocess(y)
        bounds = np.cumsum([0] + [p.rows for p in batch])
        return [{k: v[a:b] for k, v in outputs.items()} for a, b in zip(bounds[:-1], bounds[1:])]

    def _postprocess(self, y: np.ndarray) -> Outputs:
        if self.schema.task == "classification":
            return {"probabilities": y.astype(np.float32, copy=False), "label": self._labels[y.argmax(axis=1)]}
        if self.schema.task == "regression":
            return {self.schema.outputs[0].name: y.reshape(len(y), *self.schema.outputs[0].shape)}
        return {self.schema.outputs[0].name: y}

    async def close(self) -> None:
        await self.batcher.close()
        self._executor.shutdown(wait=True)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def monotonic_deadline(timeout_s: float | None) -> float | None:
    return None if timeout_s is None else time.monotonic() + timeout_s
