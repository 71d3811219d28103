"""v2 server and model metadata documents (``GET /v2`` and ``GET /v2/models/{name}``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import metadata as _dist
from typing import Any, Protocol

EXTENSIONS = ("binary_tensor_data",)


class TensorSpec(Protocol):
    """What ``registry.schema.FeatureSpec`` and ``OutputSpec`` provide."""

    name: str
    datatype: str
    shape: Sequence[int]


def server_metadata(name: str = "mlgate", version: str | None = None) -> dict[str, Any]:
    return {"name": name, "version": version or _package_version(), "extensions": list(EXTENSIONS)}


def model_metadata(
    name: str,
    versions: Iterable[str],
    platform: str,
    inputs: Iterable[TensorSpec],
    outputs: Iterable[TensorSpec],
) -> dict[str, Any]:
    """Tensor shapes are per request: ``-1`` for the batch dimension, then the per-row shape."""
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": platform,
        "inputs": [_tensor(spec) for spec in inputs],
        "outputs": [_tensor(spec) for spec in outputs],
    }


def _tensor(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": [-1, *spec.shape]}


def _package_version() -> str:
    try:
        return _dist.version("mlgate")
    except _dist.PackageNotFoundError:
        return "0+unknown"
