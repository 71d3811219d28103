"""Triton's model configuration of a served version, as a JSON document (the protobuf JSON
mapping of ``inference.ModelConfig``): ``GET /v2/models/{m}/config`` answers it and the gRPC
``ModelConfig`` call parses the same document into its message, so both say the same.

Dims exclude the batch dimension (``max_batch_size`` > 0: the model takes batches); a
per-row scalar (a tabular feature, shape ``[]``) is ``dims [1]`` with ``reshape {shape: []}``,
as Triton writes it. Dynamic batching is how mlgate batches: the longest wait for a batch,
the queue bound and the default deadline (a request past it is rejected).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from serving.protocol.metadata import TensorSpec

PLATFORM = "pytorch_torchscript"  # what the model metadata names too


class _Schema(Protocol):
    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]


class _Batching(Protocol):
    max_batch_size: int
    batch_wait_timeout_s: float
    max_queue_size: int
    default_timeout_s: float | None


class Served(Protocol):
    """What ``serving.model.ServedModel`` provides."""

    name: str
    version: int
    schema: _Schema
    cfg: _Batching


def model_config(model: Served) -> dict[str, Any]:
    cfg = model.cfg
    queue: dict[str, Any] = {"max_queue_size": cfg.max_queue_size, "timeout_action": "REJECT",
                             "allow_timeout_override": True}
    if cfg.default_timeout_s is not None:
        queue["default_timeout_microseconds"] = round(cfg.default_timeout_s * 1e6)
    return {
        "name": model.name,
        "platform": PLATFORM,
        "version_policy": {"specific": {"versions": [model.version]}},
        "max_batch_size": cfg.max_batch_size,
        "input": [_tensor(spec) for spec in model.schema.inputs],
        "output": [_tensor(spec) for spec in model.schema.outputs],
        "dynamic_batching": {"max_queue_delay_microseconds": round(cfg.batch_wait_timeout_s * 1e6),
                             "preserve_ordering": True, "default_queue_policy": queue},
    }


def _tensor(spec: TensorSpec) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": spec.name, "data_type": f"TYPE_{_TYPE_NAMES.get(spec.datatype, spec.datatype)}",
                           "dims": list(spec.shape) or [1]}
    if not spec.shape:
        doc["reshape"] = {"shape": []}
    return doc


_TYPE_NAMES = {"BYTES": "STRING"}  # model_config.proto's DataType: TYPE_STRING is the v2 BYTES
