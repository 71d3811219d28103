"""Model stages (``candidate``, ``production``, ``archived``) kept as an append-only history.

Every stage change is one event, committed atomically by :class:`registry.journal.Journal`:
it is written to a staging directory, then renamed to ``{root}/{model}/.stages/{seq:08d}/``
(on object stores the event file is written last, as registry versions are). The current stages are the fold
of the history, so the state and its history can never disagree. A writer reads the
state at ``seq``, decides, and commits ``seq + 1``; if somebody else committed it first,
the rename fails and the writer decides again on the new state (optimistic concurrency).

Rules: one ``production`` version at a time; promoting archives the previous one;
``rollback`` returns to the production version before the current one (repeatable). A version
is promoted only when its gate passed (:attr:`registry.store.ModelVersion.gate`); one that failed
its gate or has none (``ungated``: registered by hand, never evaluated) only with ``force`` and a
reason.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict, Field

from contracts.clock import Clock, wall_clock_s
from contracts.errors import Conflict
from registry.journal import Journal

Stage = Literal["candidate", "production", "archived"]
STAGES: tuple[str, ...] = ("candidate", "production", "archived")
GATE_FILE = "gate.json"  # a version's gate decision: {"passed": bool, "reasons": [...], ...}
GateStatus = Literal["passed", "failed", "ungated", "none"]
_DIR = ".stages"
_EVENT = "event.json"


def default_actor() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


class StageEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seq: int = Field(ge=1, description="Position in the model's history, from 1")
    model: str
    version: int = Field(ge=1, description="The version whose stage changed")
    stage: Stage
    action: Literal["candidate", "promote", "rollback", "reject"] = Field(
        description="candidate: registered for evaluation; promote/rollback: production changed; reject: a "
        "rollout's checks failed and the version was taken out of traffic (archived)")
    previous_production: int | None = Field(default=None, description="Production version before this event")
    actor: str = Field(description="Who made the change: the name of the CLI credential's verified identity "
                       "(an API key's name, a JWT's subject; user@host with auth off), or run:ID")
    actor_id: str | None = Field(default=None, description="The stable id of that identity (key:ID, a JWT's "
                                 "issuer and subject, local:user@host with auth off), when there is one; "
                                 "events written before it was recorded have none")
    reason: str = Field(default="", description="Why")
    forced: bool = Field(default=False, description="Promoted despite a failed gate or none")
    gate: GateStatus = Field(default="none", description="The version's gate when the event was written: "
                             "passed, failed, or ungated (no gate record); none on rollbacks, and on the "
                             "events of ungated versions written before 'ungated' existed (then they could "
                             "be promoted unforced)")
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
        if event.action in ("candidate", "reject"):
            self.stages[event.version] = event.stage
            return
        if event.action == "rollback":
            self.production_history.pop()
        else:
            self.production_history.append(event.version)
        if event.previous_production is not None:
            self.stages[event.previous_production] = "archived"
        self.stages[event.version] = "production"


class StageBook:
    """The stage history of the models under one registry root (a :class:`Journal` of events)."""

    def __init__(self, fs: pafs.FileSystem, root_path: str, clock: Clock = wall_clock_s) -> None:
        """``clock``: when a stage change happens (each event's ``at``)."""
        self.journal = Journal(fs, root_path, _DIR, StageEvent, filename=_EVENT, what="stage change")
        self.clock = clock

    def history(self, model: str) -> list[StageEvent]:
        return self.journal.history(model)

    def state(self, model: str) -> StageState:
        return _fold(self.history(model))

    def commit(self, model: str, decide: Callable[[StageState], dict]) -> StageEvent:
        """Append the event ``decide(state)`` describes, deciding again if another writer won."""

        def make(seq: int, history: list[StageEvent]) -> StageEvent:
            state = _fold(history)
            return StageEvent(seq=seq, model=model, at=self.clock(), previous_production=state.production,
                              **decide(state))

        return self.journal.commit(model, make)


def _fold(history: list[StageEvent]) -> StageState:
    state = StageState()
    for event in history:
        state.apply(event)
    return state


def gate_status(gate: dict | None) -> GateStatus:
    if gate is None:
        return "ungated"
    return "passed" if gate.get("passed") else "failed"


def _refusal(model: str, version: int, gate: dict | None) -> str:
    override = "promote with --force and a --reason to override"
    if gate is None:
        return (f"{model} version {version} is ungated (no gate record: registered by hand, never evaluated); "
                f"evaluate it with `mlgate models evaluate {model} {version} --data DATASET`, or {override}")
    why = "; ".join(gate.get("reasons", [])) or "no reason recorded"
    return f"version {version} failed its gate ({why}); {override}"


def promotion(model: str, version: int, gate: dict | None, *, actor: str, reason: str, force: bool,
              actor_id: str | None = None) -> Callable[[StageState], dict]:
    """The decision of ``promote``: refuse a failed or missing gate unless forced, and a no-op promotion."""
    status = gate_status(gate)
    if status != "passed" and not force:
        raise Conflict(_refusal(model, version, gate))
    if force and not reason:
        raise Conflict("a forced promotion needs a reason")

    def decide(state: StageState) -> dict:
        if state.production == version:
            raise Conflict(f"version {version} is already in production")
        return {"version": version, "stage": "production", "action": "promote", "actor": actor,
                "actor_id": actor_id, "reason": reason, "forced": force and status != "passed", "gate": status}

    return decide


def rollback(*, actor: str, reason: str, actor_id: str | None = None) -> Callable[[StageState], dict]:
    def decide(state: StageState) -> dict:
        if len(state.production_history) < 2:
            raise Conflict("no previous production version to roll back to")
        return {"version": state.production_history[-2], "stage": "production", "action": "rollback",
                "actor": actor, "actor_id": actor_id, "reason": reason}

    return decide


def rejection(version: int, *, actor: str, reason: str,
              actor_id: str | None = None) -> Callable[[StageState], dict]:
    """A version that failed its rollout: archived (never the production version: roll back instead)."""
    def decide(state: StageState) -> dict:
        if state.production == version:
            raise Conflict(f"version {version} is in production; roll it back instead")
        return {"version": version, "stage": "archived", "action": "reject", "actor": actor, "actor_id": actor_id,
                "reason": reason}

    return decide


def candidate(version: int, gate: dict | None, *, actor: str, reason: str,
              actor_id: str | None = None) -> Callable[[StageState], dict]:
    def decide(state: StageState) -> dict:
        if state.stages.get(version) is not None:
            raise Conflict(f"version {version} already has the stage {state.stages[version]!r}")
        return {"version": version, "stage": "candidate", "action": "candidate", "actor": actor,
                "actor_id": actor_id, "reason": reason, "gate": gate_status(gate)}

    return decide
