"""Typed configuration of the training sidecar (composed into ``mlgate.config`` as ``training``).

Plain pydantic models: no environment reading here (``mlgate.config`` does that), no Ray.
A training job receives the resolved section as JSON on its command line.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitConfig(_Strict):
    """How ``mlgate data ingest`` splits rows: by a seeded hash of each row (or its group key)."""

    seed: int = Field(default=0, ge=0, description="Seed of the split hash; same seed, same split")
    validation_share: float = Field(default=0.1, ge=0, lt=1, description="Expected share of rows in validation")
    test_share: float = Field(default=0.2, gt=0, lt=1, description="Expected share of rows in test")
    max_levels: int = Field(default=256, ge=2, description="Most distinct values an inferred categorical may have")

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.validation_share + self.test_share >= 0.9:
            raise ValueError("validation_share + test_share must leave at least 10% for training")
        return self


class GateConfig(_Strict):
    """When a candidate may replace production. Tolerances are relative to production's value."""

    metric_tolerances: dict[str, float] = Field(
        default_factory=lambda: {"accuracy": 0.01, "roc_auc": 0.01, "log_loss": 0.05, "rmse": 0.02, "mae": 0.02},
        description="Per metric: allowed relative degradation vs production (0.01 = 1%)",
    )
    max_slice_gap: float = Field(
        default=0.25, ge=0,
        description="Largest allowed gap between slices of one categorical feature "
                    "(accuracy points for classifiers, MAE relative to overall MAE for regressors)",
    )
    max_latency_ratio: float = Field(default=1.5, ge=1, description="Candidate p50 latency / production p50, at most")
    latency_slack_ms: float = Field(default=1.0, ge=0, description="Absolute slack added to the latency ratio rule")
    max_p95_latency_ms: float | None = Field(default=None, gt=0, description="Absolute p95 limit at every batch size")


class EvalConfig(_Strict):
    latency_batch_sizes: tuple[int, ...] = Field(default=(1, 32, 256), min_length=1, description="Batch sizes timed")
    latency_repeats: int = Field(default=30, ge=3, le=10_000, description="Timed calls per batch size")
    min_slice_rows: int = Field(default=30, ge=1, description="Slices with fewer test rows are reported, not gated")
    profile_bins: int = Field(default=10, ge=2, le=1_000, description="Quantile bins of the reference profile")


class TrainingConfig(_Strict):
    epochs: int = Field(default=5, ge=1, le=10_000, description="Training epochs")
    batch_size: int = Field(default=256, ge=1, description="Rows per step per worker")
    learning_rate: float = Field(default=3e-3, gt=0, description="Adam learning rate")
    hidden: tuple[int, ...] = Field(default=(64, 32), description="Hidden layer widths of the MLP")
    seed: int = Field(default=0, ge=0, description="Seed of model init and shuffling")
    workers: int = Field(default=1, ge=1, le=1_024, description="Ray Train workers")
    cpus_per_worker: float = Field(default=1.0, gt=0, description="CPUs reserved per Ray Train worker")
    use_gpu: bool | None = Field(default=None, description="GPU per worker; None: when the cluster has GPUs")
    checkpoints_to_keep: int = Field(default=2, ge=1, description="Newest checkpoints kept per run")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Data splits of `mlgate data ingest`")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation on the test split")
    gate: GateConfig = Field(default_factory=GateConfig, description="Candidate vs production gate")
    insecure_job_api: bool = Field(default=False, description="Allow sending the cluster token over plain "
                                   "http:// to a non-loopback job API (mlgate train --insecure, the monitor's "
                                   "retraining); only on a network you trust")
