"""The admin API's wire types: request and response bodies, plain data (no logic, no web
framework). Stage and traffic events are the registry's own records."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from registry.rollouts import RolloutEvent
from registry.stages import StageEvent
from registry.traffic import TrafficPolicy


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, naming the field or the scope; generic for a server fault")


class PromoteRequest(_Body):
    version: int = Field(ge=1, description="The version to make production")
    reason: str = Field(default="", max_length=2000, description="Why (recorded; required with force)")
    force: bool = Field(default=False, description="Promote even though the version failed (or has no) gate")


class RollbackRequest(_Body):
    reason: str = Field(min_length=1, max_length=2000, description="Why (recorded)")


class TrafficRequest(_Body):
    policy: TrafficPolicy = Field(description="The whole new policy: what it leaves out is gone")
    reason: str = Field(default="", max_length=2000, description="Why (recorded)")


class ModelSummary(BaseModel):
    name: str
    versions: list[int] = Field(description="Published versions, oldest first")
    stages: dict[int, str] = Field(description="Version -> candidate, production or archived (unstaged: absent)")
    production: int | None = Field(description="The production version, if any")


class VersionInfo(BaseModel):
    version: int
    stage: str | None = Field(description="candidate, production, archived, or none")
    gate: str = Field(description="The version's gate record as the registry reports it (passed, failed, ungated)")
    created_at: Any = Field(default=None, description="When the version was published, as the registry wrote it")


class TrafficState(BaseModel):
    model: str
    production: int | None = Field(description="The version that answers what the canaries leave")
    seq: int = Field(description="The traffic change in force (0: never set)")
    policy: TrafficPolicy
    set_by: str | None = Field(default=None, description="Who set it: the identity's name")
    actor_id: str | None = Field(default=None, description="The stable id of that identity")
    at: str | None = Field(default=None, description="When, ISO 8601 UTC")
    reason: str | None = None


class ReplicaView(BaseModel):
    source: str = Field(description="The replica's name")
    host: str | None = None
    pid: int | None = None
    stale: bool = Field(description="Not refreshed for a few heartbeats: probably gone")
    serving: list[int] = Field(default_factory=list)
    draining: list[int] = Field(default_factory=list)
    failed: dict[str, dict] = Field(default_factory=dict, description="Version -> its load error, when, attempts")


class ModelDetail(BaseModel):
    name: str
    production: int | None
    versions: list[VersionInfo]
    traffic: TrafficState
    replicas: list[ReplicaView] = Field(description="What each gateway replica reports for this model")


class StageHistory(BaseModel):
    model: str
    production: int | None
    stages: dict[int, str]
    history: list[StageEvent] = Field(description="Every stage change, oldest first")


class AuditRecords(BaseModel):
    records: list[dict] = Field(description="Audit records, oldest first (seq, ts, identity, action, target, "
                                "outcome, detail, prev, hash)")


class AuditVerify(BaseModel):
    ok: bool
    count: int = Field(description="Records that verified")
    line: int | None = Field(default=None, description="The first bad line, from 1")
    problem: str | None = None
    last_hash: str = Field(description="Hash of the last good record's line: keep it elsewhere")


class Health(BaseModel):
    status: str = "ok"


class RolloutStartRequest(_Body):
    version: int = Field(ge=1, description="The candidate version (its gate passed, or force with a reason)")
    steps_pct: tuple[float, ...] | None = Field(default=None, description="Canary shares in percent, ending at 100 "
                                                "(default: rollout.steps_pct)")
    step_s: float | None = Field(default=None, gt=0, description="Time at each step (default: rollout.step_s)")
    shadow_first_s: float | None = Field(default=None, ge=0, description="Shadow phase first (default: "
                                         "rollout.shadow_first_s)")
    sticky_key: str | None = Field(default=None, description="Header (or param:NAME) keeping a caller on one version")
    force: bool = Field(default=False, description="Roll out a version whose gate did not pass (needs a reason)")
    reason: str = Field(default="", max_length=2000, description="Why (recorded)")


class RolloutChangeRequest(_Body):
    reason: str = Field(default="", max_length=2000, description="Why (recorded)")


class RolloutStatus(BaseModel):
    rollout_id: str
    model: str
    candidate: int
    baseline: int = Field(description="The production version it is compared with")
    status: str = Field(description="pending, running, paused, failed, aborted or completed")
    phase: str | None = Field(description="shadow or canary:PCT while running")
    phase_since: float | None = Field(description="When the phase's evidence window opened (Unix time)")
    started_at: float
    ended_at: float | None
    reason: str = Field(description="Why it ended, when it has")
    spec: dict[str, Any] = Field(description="Steps, times and check thresholds")
    events: list[RolloutEvent] = Field(default_factory=list, description="Its history, oldest first")
    evaluations: list[dict[str, Any]] = Field(default_factory=list, description="The controller's latest "
                                              "evaluations: decision, checks and evidence (rollouts.jsonl)")
