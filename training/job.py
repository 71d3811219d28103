"""The Ray Train part of a run: ``TorchTrainer`` over the dataset's splits read with Ray Data.

Each worker trains an MLP on its shard of the preprocessed training split, evaluates on
its shard of the validation split (sums all-reduced across workers), reports the epoch's
metrics with ``ray.train.report`` and, on rank 0, a checkpoint (weights, optimiser,
epoch, history) into the run's own storage. A resubmitted run finds that storage again
and every worker continues from the last checkpoint's epoch.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import torch
from torch import nn

from registry.preprocess import Preprocessor
from training.datastore import DatasetVersion
from training.featurize import Featurize
from training.models import TabularMLP

STATE_FILE = "state.pt"


def _sum_all(values: list[float], device: torch.device) -> list[float]:
    """Sums across workers (on the workers' device: NCCL reduces GPU tensors only)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)
    return t.tolist()


def _run_epoch(model, batches, loss_fn, optimiser=None) -> tuple[float, float, float]:
    """(loss sum, correct predictions, rows) over one pass; trains when given an optimiser."""
    loss_sum = correct = rows = 0.0
    for batch in batches:
        x, y = batch["x"], batch["y"]
        with torch.set_grad_enabled(optimiser is not None):
            out = model(x)
            loss = loss_fn(out if y.dtype == torch.int64 else out[:, 0], y)
        if optimiser is not None:
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        loss_sum += loss.item() * len(y)
        correct += float((out.argmax(1) == y).sum()) if y.dtype == torch.int64 else 0.0
        rows += len(y)
    return loss_sum, correct, rows


def train_loop(config: dict[str, Any]) -> None:
    """Per-worker training function (runs inside Ray Train workers)."""
    import ray.train
    import ray.train.torch

    from training.runs import RunStore

    rank = ray.train.get_context().get_world_rank()
    torch.manual_seed(config["seed"])
    module = TabularMLP(config["in_features"], config["n_outputs"], tuple(config["hidden"]))
    model = ray.train.torch.prepare_model(module)
    bare = getattr(model, "module", model)
    optimiser = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    start, history = _restore(ray.train.get_checkpoint(), bare, optimiser, rank)
    run = RunStore(config["runs_root"]).get(config["run_id"])
    for epoch in range(start + 1, config["epochs"] + 1):
        metrics = _epoch(model, optimiser, config, epoch)
        history.append(metrics)
        _report(rank, metrics, {"model": bare.state_dict(), "optimiser": optimiser.state_dict(),
                                "epoch": epoch, "history": history})
        if rank == 0:
            run.record_epoch(metrics)
            print(f"[mlgate] epoch {epoch}/{config['epochs']} checkpointed: "
                  + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)), flush=True)


def _restore(checkpoint, bare: nn.Module, optimiser, rank: int) -> tuple[int, list[dict[str, Any]]]:
    """(last finished epoch, metrics history) from the run's latest checkpoint, or (0, [])."""
    if checkpoint is None:
        return 0, []
    with checkpoint.as_directory() as d:
        state = torch.load(os.path.join(d, STATE_FILE), map_location="cpu", weights_only=True)
    bare.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    if rank == 0:
        print(f"[mlgate] resuming from checkpoint after epoch {state['epoch']}", flush=True)
    return state["epoch"], state["history"]


def _epoch(model, optimiser, config: dict[str, Any], epoch: int) -> dict[str, Any]:
    """Train on this worker's shard, validate on its validation shard; metrics summed over workers."""
    import ray.train
    import ray.train.torch

    started = time.perf_counter()
    device = ray.train.torch.get_device()
    classify = config["task"] == "classification"
    loss_fn = nn.CrossEntropyLoss() if classify else nn.MSELoss()
    model.train()
    batches = ray.train.get_dataset_shard("train").iter_torch_batches(
        batch_size=config["batch_size"], local_shuffle_buffer_size=4096,
        local_shuffle_seed=config["seed"] * 10_007 + epoch)
    t_loss, t_correct, t_rows = _sum_all(list(_run_epoch(model, batches, loss_fn, optimiser)), device)
    model.eval()
    batches = ray.train.get_dataset_shard("validation").iter_torch_batches(batch_size=config["batch_size"])
    v_loss, v_correct, v_rows = _sum_all(list(_run_epoch(model, batches, loss_fn)), device)
    metrics = {"epoch": epoch, "train_loss": t_loss / max(t_rows, 1), "val_loss": v_loss / max(v_rows, 1),
               "train_rows": int(t_rows), "val_rows": int(v_rows), "epoch_s": time.perf_counter() - started}
    if classify:
        metrics.update(train_accuracy=t_correct / max(t_rows, 1), val_accuracy=v_correct / max(v_rows, 1))
    return metrics


def _report(rank: int, metrics: dict[str, Any], state: dict[str, Any]) -> None:
    import ray.train

    if rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as d:
        torch.save(state, os.path.join(d, STATE_FILE))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


def fit(dataset: DatasetVersion, pre: Preprocessor, config: dict[str, Any], *, workers: int,
        cpus_per_worker: float, use_gpu: bool, storage: str, keep: int) -> dict[str, Any]:
    """Run the trainer to the last epoch (resuming from ``storage``); returns the final state."""
    import ray.data
    import ray.train
    from ray.train.torch import TorchTrainer

    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")  # one copy of each worker line in the logs
    ray.data.DataContext.get_current().enable_progress_bars = False
    schema = dataset.schema
    featurize = Featurize(pre, schema.target, schema.task, schema.class_labels,
                          config.get("target_mean", 0.0), config.get("target_std", 1.0))
    fs = dataset.store.fs
    started = time.perf_counter()
    datasets = {split: ray.data.read_parquet(dataset.split_path(split), filesystem=fs)
                .map_batches(featurize, batch_format="pyarrow").materialize()
                for split in ("train", "validation")}
    print(f"[mlgate] splits read and preprocessed with Ray Data in {time.perf_counter() - started:.1f}s", flush=True)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config=config,
        scaling_config=ray.train.ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                               resources_per_worker={"CPU": cpus_per_worker}),
        run_config=ray.train.RunConfig(name="train", storage_path=storage,
                                       checkpoint_config=ray.train.CheckpointConfig(num_to_keep=keep)),
        datasets=datasets,
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    with result.checkpoint.as_directory() as d:
        return torch.load(os.path.join(d, STATE_FILE), map_location="cpu", weights_only=True)
