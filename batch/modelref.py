"""``NAME``, ``NAME:VERSION`` or ``NAME@STAGE``: which model version a batch run scores with."""

from __future__ import annotations

import re
from dataclasses import dataclass

from contracts.errors import InvalidInput, NotFound
from registry.store import ModelVersion, Registry

_REF = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?::(?P<version>[0-9]+)|@(?P<stage>[A-Za-z][A-Za-z0-9_-]*))?")


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None = None  # None with no stage: the latest version
    stage: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.stage}" if self.stage else self.name


def parse_model_ref(text: str) -> ModelRef:
    match = _REF.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"--model: expected NAME, NAME:VERSION or NAME@STAGE, got {text!r}")
    version = match["version"]
    return ModelRef(match["name"], int(version) if version is not None else None, match["stage"])


def resolve(registry: Registry, ref: ModelRef) -> ModelVersion:
    """The version ``ref`` names now; a stage resolves to its newest version."""
    if ref.stage is None:
        return registry.get(ref.name, ref.version)
    in_stage = getattr(registry, "versions_in_stage", None)
    if in_stage is None:  # a registry without stages (registry.stages)
        raise NotFound(f"model {ref}: this registry has no stages; name a version ({ref.name}:N)")
    versions = in_stage(ref.name, ref.stage)
    if not versions:
        raise NotFound(f"model {ref.name!r} has no version in stage {ref.stage!r}")
    return registry.get(ref.name, max(versions))
