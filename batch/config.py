"""Typed configuration of batch scoring (composed into ``mlgate.config`` as ``batch``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=4096, ge=1, le=1_048_576, description="Rows per read batch and per model call")
    concurrency: int | None = Field(
        default=None, ge=1,
        description="Scoring actors; None: one per GPU on GPUs, else as many as the free CPUs allow",
    )
    gpu: bool | None = Field(default=None, description="GPU actors (num_gpus=1 each); None: when the cluster has GPUs")
    actor_num_cpus: float = Field(default=1.0, gt=0, description="CPUs reserved per scoring actor")
    torch_num_threads: int | None = Field(
        default=None, ge=1, description="Intra-op threads per actor; None: actor_num_cpus rounded down, at least 1"
    )
    fragment_rows: int = Field(
        default=131_072, ge=1, description="Target rows per input fragment: one output part, the unit of resume"
    )
    max_row_group_splits: int = Field(
        default=4, ge=1,
        description="Most fragments cut from one Parquet row group (each cut decodes the rows before it again)",
    )
    csv_block_bytes: int = Field(
        default=8 << 20, ge=1 << 16, description="CSV read block; key column types are inferred from the first block"
    )
    progress_interval_s: float = Field(default=1.0, gt=0, description="Seconds between progress lines off a terminal")

    def threads_per_actor(self) -> int:
        return self.torch_num_threads or max(1, int(self.actor_num_cpus))
