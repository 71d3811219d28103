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
    def __init__(self, version: ModelVersion, cfg: ModelServingConfig, listener: BatchListener | None = None,
                 *, pipeline: ModelPipeline | None = None, compute_thread: ThreadPoolExecutor | None = None) -> None:
        """``listener.batch_done(model, report)`` hears every batch this version computes.
        Loads and warms up ``version`` in the calling thread, unless :meth:`load` did it
        already (``pipeline``, on ``compute_thread``)."""
        self.pipeline = pipeline if pipeline is not None else _loaded(version, cfg)
        self.name = self.pipeline.name
        self.version = self.pipeline.version
        self.schema = self.pipeline.schema
        self.cfg = cfg
        self.row_limit = cfg.row_limit
        # the one thread that computes this version (batches, warm-up, the liveness probe)
        self.compute_thread = compute_thread or _compute_thread(version)
        self.batcher: Batcher[Prepared, Outputs] = Batcher(
            self.pipeline.predict_split,
            self.compute_thread,
            max_batch_size=cfg.max_batch_size,
            batch_wait_timeout_s=cfg.batch_wait_timeout_s,
            max_queue_size=cfg.max_queue_size,
            on_batch=partial(listener.batch_done, self) if listener is not None else None,
        )

    @classmethod
    async def load(cls, version: ModelVersion, cfg: ModelServingConfig,
                   listener: BatchListener | None = None) -> ServedModel:
        """``version`` read, loaded and warmed up on its own compute thread, off the event
        loop, then put behind a batcher on this loop: ready for traffic when this returns.
        A failure (a damaged file, a model that cannot run its warm-up) raises, and the
        thread is gone."""
        thread = _compute_thread(version)
        try:
            pipeline = await asyncio.get_running_loop().run_in_executor(thread, _loaded, version, cfg)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(version, cfg, listener, pipeline=pipeline, compute_thread=thread)

    async def probe(self) -> None:
        """Returns once the model's thread has run a no-op (behind at most the batch it computes)."""
        await asyncio.get_running_loop().run_in_executor(self.compute_thread, _nothing)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the requests queued or computing now are answered (the caller routes no
        new ones here first); True when that took at most ``timeout_s``."""
        return await self.batcher.drain(timeout_s)

    async def close(self) -> None:
        await self.batcher.close()
        await asyncio.get_running_loop().run_in_executor(None, partial(self.compute_thread.shutdown, wait=True))


def warm_up_sizes(cfg: ModelServingConfig) -> tuple[int, ...]:
    """The batch sizes a version runs before its first request: one row, a full batch."""
    return (1, cfg.max_batch_size)


def _compute_thread(version: ModelVersion) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix=f"model-{version.name}-{version.version}")


def _loaded(version: ModelVersion, cfg: ModelServingConfig) -> ModelPipeline:
    pipeline = ModelPipeline(version, cfg.device, cfg.precision, cfg.cuda_graph_batch_sizes)
    pipeline.warm_up(warm_up_sizes(cfg))
    return pipeline


def _nothing() -> None:
    return None
