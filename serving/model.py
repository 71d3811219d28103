"""A served model version: its pipeline behind a batcher, on the server's event loop.

The data plane admits, validates (``pipeline.prepare``) and queues (``batcher``) each
request itself; this module builds the pair, warms it up, probes and closes it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Protocol

from registry.store import ModelVersion
from serving.batching import Batcher, BatchReport
from serving.config import ModelServingConfig
from serving.pipeline import ModelPipeline, Outputs, Prepared


class BatchListener(Protocol):
    def batch_done(self, model: ServedModel, report: BatchReport[Prepared, Outputs]) -> None: ...


class ServedModel:
    def __init__(self, version: ModelVersion, cfg: ModelServingConfig, listener: BatchListener | None = None) -> None:
        """``listener.batch_done(model, report)`` hears every batch this version computes."""
        self.pipeline = ModelPipeline(version, cfg.device, cfg.precision, cfg.cuda_graph_batch_sizes)
        self.name = self.pipeline.name
        self.version = self.pipeline.version
        self.schema = self.pipeline.schema
        self.cfg = cfg
        self.row_limit = cfg.row_limit
        # the one thread that computes this version (batches, warm-up, the liveness probe)
        self.compute_thread = ThreadPoolExecutor(1, thread_name_prefix=f"model-{self.name}-{self.version}")
        self.batcher: Batcher[Prepared, Outputs] = Batcher(
            self.pipeline.predict_split,
            self.compute_thread,
            max_batch_size=cfg.max_batch_size,
            batch_wait_timeout_s=cfg.batch_wait_timeout_s,
            max_queue_size=cfg.max_queue_size,
            on_batch=partial(listener.batch_done, self) if listener is not None else None,
        )
        self.pipeline.warm_up((1, cfg.max_batch_size))

    async def probe(self) -> None:
        """Returns once the model's thread has run a no-op (behind at most the batch it computes)."""
        await asyncio.get_running_loop().run_in_executor(self.compute_thread, _nothing)

    async def close(self) -> None:
        await self.batcher.close()
        self.compute_thread.shutdown(wait=True)


def _nothing() -> None:
    return None
