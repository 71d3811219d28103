"""A served model version: its pipeline behind a batcher on the server's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from registry.store import ModelVersion
from serving.batching import Batcher, BatchStats
from serving.config import ModelServingConfig
from serving.pipeline import ModelPipeline, Outputs, Prepared, prepare
from serving.types import Tensor


class ServedModel:
    def __init__(
        self,
        version: ModelVersion,
        cfg: ModelServingConfig,
        on_batch: Callable[[str, str, BatchStats], None] | None = None,
        on_done: Callable[[ServedModel, list, list[Prepared], list[Outputs], Any], None] | None = None,
    ) -> None:
        """``on_done(model, tags, payloads, results, whole)``: see :class:`serving.batching.Batcher`."""
        self.pipeline = ModelPipeline(version, cfg.device, cfg.precision, cfg.cuda_graph_batch_sizes)
        self.name = self.pipeline.name
        self.version = self.pipeline.version
        self.schema = self.pipeline.schema
        self.cfg = cfg
        # the one thread that computes this version (batches, warm-up, the liveness probe)
        self.compute_thread = ThreadPoolExecutor(1, thread_name_prefix=f"model-{self.name}-{self.version}")
        report = (lambda stats: on_batch(self.name, self.version, stats)) if on_batch else None
        self.batcher: Batcher[Prepared, Outputs] = Batcher(
            self.pipeline.predict_split,
            self.compute_thread,
            max_batch_size=cfg.max_batch_size,
            batch_wait_timeout_s=cfg.batch_wait_timeout_s,
            max_queue_size=cfg.max_queue_size,
            on_batch=report,
            on_done=(lambda *done: on_done(self, *done)) if on_done else None,
        )
        self.pipeline.warm_up((1, cfg.max_batch_size))

    def prepare(self, inputs: list[Tensor]) -> Prepared:
        return prepare(self.schema, inputs)

    async def infer(self, prepared: Prepared, deadline: float | None, tag: Any = None) -> Outputs:
        """``tag`` comes back in ``on_done`` with the answer."""
        return await self.batcher.submit(prepared, prepared.rows, deadline, tag)

    async def probe(self) -> None:
        """Returns once the model's thread has run a no-op (behind at most the batch it computes)."""
        await asyncio.get_running_loop().run_in_executor(self.compute_thread, _nothing)

    async def close(self) -> None:
        await self.batcher.close()
        self.compute_thread.shutdown(wait=True)


def _nothing() -> None:
    return None
