"""Registering user torch models: TorchScript, or an ``nn.Module`` with its schema."""

from __future__ import annotations

import io
import json
from typing import Any

from contracts.errors import InvalidInput
from registry.preprocess import Preprocessor
from registry.schema import ModelSchema
from registry.store import ModelVersion, Registry


def to_torchscript(model: Any, example_input: Any = None) -> bytes:
    """Serialise a module as TorchScript: script it, or trace it with ``example_input``."""
    import torch

    if isinstance(model, (str, bytes)) or hasattr(model, "read"):
        raw = model if isinstance(model, bytes) else _read(model)
        try:
            torch.jit.load(io.BytesIO(raw))  # validates it is TorchScript
        except RuntimeError as exc:
            raise InvalidInput(f"model: not a TorchScript file ({exc})") from None
        return raw
    if not isinstance(model, torch.jit.ScriptModule):
        model = model.eval()
        try:
            model = torch.jit.script(model)
        except Exception as exc:  # noqa: BLE001 - scripting fails for many valid modules
            if example_input is None:
                raise InvalidInput(f"model: cannot script it ({exc}); pass example_input to trace") from exc
            with torch.inference_mode():
                model = torch.jit.trace(model, example_input)
    buf = io.BytesIO()
    torch.jit.save(model, buf)
    return buf.getvalue()


def _read(source: Any) -> bytes:
    if isinstance(source, str):
        with open(source, "rb") as f:
            return f.read()
    return source.read()


def register_torch_model(
    registry: Registry,
    name: str,
    model: Any,
    schema: ModelSchema,
    *,
    preprocessor: Preprocessor | None = None,
    metrics: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
    example_input: Any = None,
    extra_files: dict[str, bytes] | None = None,
) -> ModelVersion:
    """Publish a torch model (TorchScript file/bytes or ``nn.Module``) as a new version."""
    if schema.kind == "tabular" and preprocessor is None:
        raise InvalidInput("preprocessor: a tabular model needs its fitted preprocessor")
    files = {
        "model.pt": to_torchscript(model, example_input),
        "schema.json": schema.model_dump_json(indent=1).encode(),
        "metrics.json": json.dumps(metrics or {}, indent=1).encode(),
        "lineage.json": json.dumps(lineage or {}, indent=1).encode(),
        **(extra_files or {}),
    }
    if preprocessor is not None:
        files["preprocessor.json"] = preprocessor.to_json().encode()
    return registry.publish(name, files)
