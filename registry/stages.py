"""Model stages (``candidate``, ``production``, ``archived``) kept as an append-only history.

Every stage change is one event, committed atomically: it is written to a staging
directory, then renamed to ``{root}/{model}/.stages/{seq:08d}/`` (on object stores the
event file is written last, as registry versions are). The current stages are the fold
of the history, so the state and its history can never disagree. A writer reads the
state at ``seq``, decides, and commits ``seq + 1``; if somebody else committed it first,
the rename fails and the writer decides again on the new state (optimistic concurrency).

Rules: one ``production`` version at a time; promoting archives the previous one;
``rollback`` returns to the production version before the current one (repeatable).
"""

from __future__ import annotations

import getpass
import json
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict, Field

from contracts import fs as rfs
from contracts.clock import Clock, wall_clock_s
from contracts.errors import Conflict

Stage = Literal["candidate", "production", "archived"]
STAGES: tuple[str, ...] = ("candidate", "production", "archived")
GATE_FILE = "gate.json"  # a version's gate decision: {"passed": bool, "reasons": [...], ...}
_DIR = ".stages"
_EVENT = "event.json"
_RETRIES = 50


def default_actor() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


class StageEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seq: int = Field(ge=1, description="Position in the model's history, from 1")
    model: str
    version: int = Field(ge=1, description="The version whose stage changed")
    stage: Stage
    action: Literal["candidate", "promote", "rollback"]
    previous_production: int | None = Field(default=None, description="Production version before this event")
    actor: str = Field(description="Who made the change: the name of the CLI credential's verified identity "
                       "(an API key's name, a JWT's subject; user@host with auth off), or run:ID")
    reason: str = Field(default="", description="Why")
    forced: bool = Field(default=False, description="Promoted despite a failed gate")
    gate: Literal["passed", "failed", "none"] = Field(default="none", description="The version's gate record")
    at: float = Field(description="Unix time of the change")


@dataclass
class StageState:
    seq: int = 0
    stages: dict[int, str] = field(default_factory=dict)
    production_history: list[int] = field(default_factory=list)  # promotions not rolled back, oldest first

    @property
    def production(self) -> int | None:
        return self.production_history[-1] if self.production_history else None

    def apply(self, event: StageEvent) -> None:
        self.seq = event.seq
        if event.action == "candidate":
            self.stages[event.version] = "candidate"
            return
        if event.action == "rollback":
            self.production_history.pop()
        else:
            self.production_history.append(event.version)
        if event.previous_production is not None:
            self.stages[event.previous_production] = "archived"
        self.stages[event.version] = "production"


class StageBook:
    """The stage history of the models under one registry root."""

    def __init__(self, fs: pafs.FileSystem, root_path: str, clock: Clock = wall_clock_s) -> None:
        """``clock``: when a stage change happens (each event's ``at``)."""
        self.fs = fs
        self.root_path = root_path
        self.clock = clock

    def _dir(self, model: str) -> str:
        return f"{self.root_path}/{model}/{_DIR}"

    def history(self, model: str) -> list[StageEvent]:
        seqs = sorted(int(d) for d in rfs.list_dirs(self.fs, self._dir(model)) if d.isdigit())
        events = []
        for seq in seqs:
            path = f"{self._dir(model)}/{seq:08d}/{_EVENT}"
            if rfs.exists(self.fs, path):
                events.append(StageEvent.model_validate_json(rfs.read_bytes(self.fs, path)))
        return events

    def state(self, model: str) -> StageState:
        state = StageState()
        for event in self.history(model):
            state.apply(event)
        return state

    def commit(self, model: str, decide: Callable[[StageState], dict]) -> StageEvent:
        """Append the event ``decide(state)`` describes, deciding again if another writer won."""
        for _ in range(_RETRIES):
            state = self.state(model)
            fields = decide(state)
            event = StageEvent(seq=state.seq + 1, model=model, at=self.clock(),
                               previous_production=state.production, **fields)
            if self._try_write(model, event):
                return event
        raise Conflict(f"stage change of {model!r}: too many concurrent writers, try again")

    def _try_write(self, model: str, event: StageEvent) -> bool:
        final = f"{self._dir(model)}/{event.seq:08d}"
        body = json.dumps(event.model_dump(mode="json"), indent=1).encode()
        if rfs.exists(self.fs, final):
            return False
        if not rfs.is_local(self.fs):
            self.fs.create_dir(final, recursive=True)
            rfs.write_bytes(self.fs, f"{final}/{_EVENT}", body)
            return True
        staging = f"{self._dir(model)}/.tmp-{uuid.uuid4().hex}"
        self.fs.create_dir(staging, recursive=True)
        rfs.write_bytes(self.fs, f"{staging}/{_EVENT}", body)
        try:
            rfs.publish(self.fs, staging, final)  # fails if ``final`` exists and is not empty
        except OSError:
            self.fs.delete_dir(staging)
            return False
        return True


def gate_status(gate: dict | None) -> str:
    if gate is None:
        return "none"
    return "passed" if gate.get("passed") else "failed"


def promotion(version: int, gate: dict | None, *, actor: str, reason: str, force: bool) -> Callable[[StageState], dict]:
    """The decision of ``promote``: refuse a failed gate unless forced, and a no-op promotion."""
    status = gate_status(gate)
    if status == "failed" and not force:
        why = "; ".join(gate.get("reasons", [])) or "no reason recorded"
        raise Conflict(f"version {version} failed its gate ({why}); promote with --force and a --reason to override")
    if force and not reason:
        raise Conflict("a forced promotion needs a reason")

    def decide(state: StageState) -> dict:
        if state.production == version:
            raise Conflict(f"version {version} is already in production")
        return {"version": version, "stage": "production", "action": "promote", "actor": actor,
                "reason": reason, "forced": force and status == "failed", "gate": status}

    return decide


def rollback(*, actor: str, reason: str) -> Callable[[StageState], dict]:
    def decide(state: StageState) -> dict:
        if len(state.production_history) < 2:
            raise Conflict("no previous production version to roll back to")
        return {"version": state.production_history[-2], "stage": "production", "action": "rollback",
                "actor": actor, "reason": reason}

    return decide


def candidate(version: int, gate: dict | None, *, actor: str, reason: str) -> Callable[[StageState], dict]:
    def decide(state: StageState) -> dict:
        if state.stages.get(version) is not None:
            raise Conflict(f"version {version} already has the stage {state.stages[version]!r}")
        return {"version": version, "stage": "candidate", "action": "candidate", "actor": actor,
                "reason": reason, "gate": gate_status(gate)}

    return decide
