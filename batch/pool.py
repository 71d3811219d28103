"""The Ray Data side of a run: a pool of actors that each load the model once.

The input of ``map_batches`` is the list of pending fragments (one block each), so the
streaming executor hands a fragment to whichever actor is free; the actor reads its rows
straight from storage, scores them and writes the part, and returns one small result row.
Rows never travel through the object store, and each actor holds one batch at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from batch import plan as bplan
from batch.config import BatchConfig
from batch.job import FragmentResult, ScoreJob
from contracts.errors import InvalidInput

if TYPE_CHECKING:
    from batch.run import RunPlan

_RESULT_FIELDS = tuple(f.name for f in fields(FragmentResult))


class ScoringActor:
    """One per actor of the pool: loads the model once, then scores the fragments it is sent."""

    def __init__(self, job: ScoreJob, torch_num_threads: int) -> None:
        import torch

        from batch.fragment import FragmentScorer  # torch and the model: in the actor, not the driver

        torch.set_num_threads(torch_num_threads)
        self.scorer = FragmentScorer(job)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [self.scorer.score(bplan.Fragment(**json.loads(text))) for text in batch["fragment"]]
        return {name: np.array([getattr(r, name) for r in results]) for name in _RESULT_FIELDS}


def pool_size(cfg: BatchConfig, pending: int, cluster: dict[str, float],
              available: dict[str, float]) -> tuple[int, bool]:
    """(actors, on GPUs) for ``pending`` fragments on a cluster with these resources."""
    gpus = cluster.get("GPU", 0.0)
    use_gpu = cfg.gpu if cfg.gpu is not None else gpus >= 1
    if use_gpu and gpus < 1:
        raise InvalidInput("--gpu: the Ray cluster has no GPUs")
    if cfg.concurrency:
        size = cfg.concurrency
    elif use_gpu:
        size = int(gpus)
    else:
        size = int(available.get("CPU", 0.0) // cfg.actor_num_cpus)
    return max(1, min(size, pending)), use_gpu


def run_on_ray(plan: RunPlan, cfg: BatchConfig, on_result: Callable[[FragmentResult], None]) -> None:
    """Score ``plan.pending`` on an actor pool; ``on_result`` is called as each fragment finishes."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    size, use_gpu = pool_size(cfg, len(plan.pending), ray.cluster_resources(), ray.available_resources())
    job = replace(plan.job, device="cuda" if use_gpu else "cpu")
    items = [{"fragment": json.dumps(asdict(f))} for f in plan.pending]
    ctx = DataContext.get_current()
    shown, ctx.enable_progress_bars = ctx.enable_progress_bars, False
    try:
        ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ScoringActor,
            fn_constructor_kwargs={"job": job, "torch_num_threads": cfg.threads_per_actor()},
            batch_size=1,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1),
            num_cpus=cfg.actor_num_cpus,
            num_gpus=1 if use_gpu else 0,
        )
        for row in ds.iter_rows():
            on_result(FragmentResult(**{k: _plain(row[k]) for k in _RESULT_FIELDS}))
    finally:
        ctx.enable_progress_bars = shown


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
