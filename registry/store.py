"""The model registry: versions published atomically, read by name and version.

Layout under a root (local path or pyarrow URI)::

    {root}/{model}/{version}/manifest.json   written last: a version without it does not exist
    {root}/{model}/{version}/model.pt        TorchScript weights
    {root}/{model}/{version}/schema.json     ModelSchema
    {root}/{model}/{version}/...             preprocessor.json, metrics.json, lineage.json, ...
    {root}/{model}/.staging/{uuid}/          versions being written
    {root}/{model}/.stages/, .gates/         stage history, gate decisions made after publishing

On a local filesystem a version is staged, then renamed into place (atomic; a
concurrent publisher that lost the race retries with the next number). On object
stores the files are written in place and ``manifest.json`` is committed last.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import fs as rfs
from contracts.clock import Clock, wall_clock_s
from contracts.errors import Conflict, NotFound, RegistryError
from contracts.names import check_name
from registry import stages as rstages
from registry.gates import GateBook, GateRecord
from registry.preprocess import Preprocessor
from registry.schema import ModelSchema

MANIFEST = "manifest.json"
_PUBLISH_RETRIES = 20


class VersionPolicy(BaseModel):
    """Which versions of a model are served (Triton's model repository semantics).

    ``latest`` takes the newest ``latest_n`` versions; once a model has versions in
    ``prefer_stage`` (``production`` by default) it takes the newest of those instead,
    so a freshly trained candidate is never served before it is promoted.
    """

    model_config = ConfigDict(extra="forbid")
    policy: Literal["latest", "all", "specific"] = Field(default="latest", description="Selection rule")
    latest_n: int = Field(default=1, ge=1, description="How many newest versions, for 'latest'")
    versions: tuple[int, ...] = Field(default=(), description="Exact versions, for 'specific'")
    prefer_stage: str | None = Field(
        default="production", description="For 'latest': choose among this stage's versions when it has any"
    )

    def select(self, available: list[int]) -> list[int]:
        if self.policy == "all":
            return sorted(available)
        if self.policy == "specific":
            return sorted(v for v in self.versions if v in available)
        return sorted(available)[-self.latest_n:]


@dataclass(frozen=True)
class ModelVersion:
    """A published, immutable model version."""

    registry: Registry
    name: str
    version: int
    manifest: dict[str, Any]

    @property
    def path(self) -> str:
        return f"{self.registry.path}/{self.name}/{self.version}"

    def read(self, filename: str) -> bytes:
        """The file's bytes, checked against the size and sha256 its manifest recorded at
        publishing: a version changed afterwards (tampered or damaged) is refused."""
        meta = self.manifest["files"].get(filename)
        if meta is None:
            raise NotFound(f"model {self.name} version {self.version} has no file {filename!r}")
        data = rfs.read_bytes(self.registry.fs, f"{self.path}/{filename}")
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != meta["bytes"] or digest != meta["sha256"]:
            raise RegistryError(
                f"model {self.name} version {self.version}: {filename} does not match its manifest "
                f"({len(data)} bytes, sha256 {digest[:16]}; published as {meta['bytes']} bytes, sha256 "
                f"{meta['sha256'][:16]}): it changed after publishing, so this version is not loaded")
        return data

    def read_json(self, filename: str) -> Any:
        return json.loads(self.read(filename))

    def has(self, filename: str) -> bool:
        return filename in self.manifest["files"]

    @property
    def schema(self) -> ModelSchema:
        return ModelSchema.model_validate_json(self.read("schema.json"))

    def preprocessor(self) -> Preprocessor | None:
        if not self.has("preprocessor.json"):
            return None
        return Preprocessor.from_json(self.schema, self.read("preprocessor.json").decode())

    def load_torch(self, device: str = "cpu"):
        import torch

        return torch.jit.load(io.BytesIO(self.read("model.pt")), map_location=device)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.read_json("metrics.json") if self.has("metrics.json") else {}

    @property
    def lineage(self) -> dict[str, Any]:
        return self.read_json("lineage.json") if self.has("lineage.json") else {}

    @property
    def gate(self) -> dict[str, Any] | None:
        """The newest gate decision: the latest evaluation recorded after publishing
        (:mod:`registry.gates`), else the one training published inside the version, else None."""
        record = self.registry.gates.latest(self.name, self.version)
        if record is not None:
            return record.gate()
        return self.read_json(rstages.GATE_FILE) if self.has(rstages.GATE_FILE) else None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "created_at": self.manifest["created_at"],
            "files": sorted(self.manifest["files"]),
            "metrics": self.metrics,
            "lineage": self.lineage,
        }


class Registry:
    def __init__(self, root: str, clock: Clock = wall_clock_s) -> None:
        """``clock``: when versions are published (``created_at``) and stages change."""
        self.root = root
        self.clock = clock
        self.fs, self.path = rfs.resolve(root)

    # -- reading -----------------------------------------------------------------
    def list_models(self) -> list[str]:
        return [m for m in rfs.list_dirs(self.fs, self.path) if not m.startswith(".") and self.list_versions(m)]

    def list_versions(self, name: str) -> list[int]:
        check_name(name, "model name")
        versions = [int(d) for d in rfs.list_dirs(self.fs, f"{self.path}/{name}") if d.isdigit()]
        return sorted(v for v in versions if rfs.exists(self.fs, f"{self.path}/{name}/{v}/{MANIFEST}"))

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        versions = self.list_versions(name)
        if not versions:
            raise NotFound(f"unknown model {name!r}")
        if version is None:
            version = versions[-1]
        if version not in versions:
            raise NotFound(f"model {name!r} has no version {version}")
        path = f"{self.path}/{name}/{version}/{MANIFEST}"
        try:
            manifest = json.loads(rfs.read_bytes(self.fs, path))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"cannot read {path}: {exc}") from exc
        return ModelVersion(self, name, version, manifest)

    def served(self, name: str, policy: VersionPolicy) -> list[ModelVersion]:
        available = self.list_versions(name)
        if policy.policy == "latest" and policy.prefer_stage:
            staged = [v for v in self.versions_in_stage(name, policy.prefer_stage) if v in available]
            available = staged or available
        return [self.get(name, v) for v in policy.select(available)]

    # -- stages (registry.stages): candidate, production, archived; kept as history ----
    @property
    def stages(self) -> rstages.StageBook:
        return rstages.StageBook(self.fs, self.path, self.clock)

    def stage_of(self, name: str, version: int) -> str | None:
        return self.stages.state(name).stages.get(version)

    def versions_in_stage(self, name: str, stage: str) -> list[int]:
        if stage not in rstages.STAGES:
            raise NotFound(f"unknown stage {stage!r}; stages: {', '.join(rstages.STAGES)}")
        return sorted(v for v, s in self.stages.state(name).stages.items() if s == stage)

    def stage_history(self, name: str) -> list[rstages.StageEvent]:
        return self.stages.history(name)

    @property
    def gates(self) -> GateBook:
        return GateBook(self.fs, self.path, self.clock)

    def record_gate(self, name: str, version: int, decision: dict[str, Any], *, dataset: dict[str, Any],
                    actor: str | None = None, actor_id: str | None = None) -> GateRecord:
        """Record a gate decision for a published version (it supersedes any earlier one)."""
        self.get(name, version)  # the version exists
        return self.gates.record(name, version, decision, dataset=dataset, actor=actor or rstages.default_actor(),
                                 actor_id=actor_id)

    def set_candidate(self, name: str, version: int, *, actor: str, actor_id: str | None = None,
                      reason: str = "") -> rstages.StageEvent:
        """Mark ``version`` a candidate; ``actor_id``: the stable id of the actor's identity, if any."""
        mv = self.get(name, version)
        return self.stages.commit(name, rstages.candidate(version, mv.gate, actor=actor, actor_id=actor_id,
                                                          reason=reason))

    def promote(self, name: str, version: int, *, actor: str | None = None, actor_id: str | None = None,
                reason: str = "", force: bool = False) -> rstages.StageEvent:
        """Make ``version`` production; refuses a failed gate or none (``ungated``) unless ``force``
        (with a reason)."""
        mv = self.get(name, version)
        decide = rstages.promotion(name, version, mv.gate, actor=actor or rstages.default_actor(), actor_id=actor_id,
                                   reason=reason, force=force)
        return self.stages.commit(name, decide)

    def rollback(self, name: str, *, actor: str | None = None, actor_id: str | None = None,
                 reason: str = "") -> rstages.StageEvent:
        """Return to the production version before the current one."""
        self.get(name)  # the model exists
        return self.stages.commit(name, rstages.rollback(actor=actor or rstages.default_actor(), actor_id=actor_id,
                                                         reason=reason))

    def reject(self, name: str, version: int, *, actor: str, actor_id: str | None = None,
               reason: str = "") -> rstages.StageEvent:
        """Archive ``version`` after a failed rollout (a stage event saying why)."""
        self.get(name, version)
        return self.stages.commit(name, rstages.rejection(version, actor=actor, actor_id=actor_id, reason=reason))

    # -- publishing --------------------------------------------------------------
    def publish(self, name: str, files: dict[str, bytes], **manifest_extra: Any) -> ModelVersion:
        """Publish ``files`` as the next version of ``name``; returns the new version."""
        check_name(name, "model name")
        if "schema.json" not in files or "model.pt" not in files:
            raise RegistryError("a model version needs at least schema.json and model.pt")
        ModelSchema.model_validate_json(files["schema.json"])
        manifest = {
            "format": 1,
            "name": name,
            "created_at": self.clock(),
            "files": {k: {"bytes": len(v), "sha256": hashlib.sha256(v).hexdigest()} for k, v in files.items()},
            **manifest_extra,
        }
        for _ in range(_PUBLISH_RETRIES):
            version = self._next_version(name)
            if self._try_publish(name, version, files, manifest):
                return self.get(name, version)
        raise Conflict(f"could not allocate a version for {name!r} after {_PUBLISH_RETRIES} tries")

    def _next_version(self, name: str) -> int:
        """Past every numbered directory, committed or not: a stray or half-written one
        (no manifest) is never reused, and never blocks publishing."""
        taken = [int(d) for d in rfs.list_dirs(self.fs, f"{self.path}/{name}") if d.isdigit()]
        return max(taken, default=0) + 1

    def _try_publish(self, name: str, version: int, files: dict[str, bytes], manifest: dict) -> bool:
        final = f"{self.path}/{name}/{version}"
        body = json.dumps({**manifest, "version": version}, indent=1).encode()
        if not rfs.is_local(self.fs):
            if rfs.exists(self.fs, final):
                return False
            self._write_dir(final, files, body)
            return True
        staging = f"{self.path}/{name}/.staging/{uuid.uuid4().hex}"
        self._write_dir(staging, files, body)
        if rfs.exists(self.fs, final):
            self.fs.delete_dir(staging)
            return False
        try:
            rfs.publish(self.fs, staging, final)
        except OSError:  # lost the race: somebody published this number first
            self.fs.delete_dir(staging)
            return False
        return True

    def _write_dir(self, path: str, files: dict[str, bytes], manifest: bytes) -> None:
        self.fs.create_dir(path, recursive=True)
        for fname, data in files.items():
            rfs.write_bytes(self.fs, f"{path}/{fname}", data)
        rfs.write_bytes(self.fs, f"{path}/{MANIFEST}", manifest)
