"""Rollouts: a candidate version brought to traffic in steps, kept as a model's history.

A rollout is a :class:`RolloutSpec` (candidate, baseline, steps, checks) and the events
that moved it: started, a phase entered (shadow, then each canary step), paused, resumed,
failed (rolled back), aborted, completed. They are one append-only
:class:`~registry.journal.Journal` per model (``{root}/{model}/.rollouts/{seq:08d}/``), so
every step is atomic and numbered, the CLI and the controller can both write (pause and
abort work while no controller runs), and a restarted controller resumes from the fold of
the history (:func:`fold`). The controller's every evaluation, with its evidence, goes to
``rollouts.jsonl`` beside the monitor's logs; the journal keeps the decisions that changed
the rollout.

Phases: ``shadow`` (when ``shadow_first_s`` > 0: the candidate gets a copy of
``shadow_share`` of the requests, answering none), then one per canary step but the last;
the last step (100) is the promotion: the candidate becomes production and the traffic
policy is cleared.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.clock import utc_at
from contracts.errors import Conflict, InvalidInput, NotFound
from registry.journal import Journal
from registry.stages import gate_status
from registry.traffic import TrafficPolicy

if TYPE_CHECKING:
    from registry.store import Registry

EventKind = Literal["started", "phase", "paused", "resumed", "failed", "aborted", "completed"]
TERMINAL: frozenset[str] = frozenset({"failed", "aborted", "completed"})
SHADOW = "shadow"


def _check_steps(steps: tuple[float, ...]) -> tuple[float, ...]:
    if any(not 0 < s <= 100 for s in steps):
        raise ValueError("each step is a percentage in (0, 100]")
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError("steps must increase")
    if steps[-1] != 100:
        raise ValueError("the last step must be 100 (the promotion)")
    return steps


# Canary shares in percent: increasing, each in (0, 100], ending at 100 (the promotion). One rule for a
# rollout's spec and for every config that gives one its steps (rollout, monitoring.retrain.rollout).
StepsPct = Annotated[tuple[float, ...], Field(min_length=1), AfterValidator(_check_steps)]
DEFAULT_STEPS_PCT: tuple[float, ...] = (5, 25, 50, 100)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RolloutChecks(_Strict):
    """What the candidate must show against the production version, on the same window."""

    min_requests: int = Field(default=200, ge=1, description="Requests each version must have answered in the "
                              "window before the error, latency and divergence checks count")
    max_error_rate_increase: float = Field(default=0.01, ge=0, le=1, description="Candidate's failed share "
                                           "(5xx, timeouts) minus the production version's, at most this")
    max_p50_ratio: float = Field(default=1.5, ge=1, description="Candidate's median latency over production's")
    max_p99_ratio: float = Field(default=2.0, ge=1, description="Candidate's p99 latency over production's")
    latency_slack_ms: float = Field(default=2.0, ge=0, description="Latency differences below this many ms never "
                                    "fail a check (ratios of sub-millisecond latencies are noise)")
    max_js_divergence: float = Field(default=0.1, ge=0, le=1, description="Jensen-Shannon divergence (base 2) "
                                     "between the two versions' prediction distributions, at most this")
    min_shadow_agreement: float = Field(default=0.95, ge=0, le=1, description="Share of shadowed rows where the "
                                        "candidate's prediction equals production's (classifiers) or is within "
                                        "regression_tolerance of it (regressors), at least this")
    regression_tolerance: float = Field(default=0.05, ge=0, description="Relative difference two regression "
                                        "predictions may have and still agree")
    min_shadow_rows: int = Field(default=200, ge=1, description="Shadowed rows before the agreement check counts")
    max_accuracy_drop: float = Field(default=0.02, ge=0, le=1, description="Production's live accuracy minus "
                                     "the candidate's (from feedback labels), at most this")
    max_loss_ratio: float = Field(default=1.2, ge=1, description="Candidate's live mean absolute error over "
                                  "production's (regressors, from feedback labels), at most this")
    min_labels: int = Field(default=100, ge=1, description="Labelled rows each version needs before the live "
                            "accuracy or loss check counts (without labels it is skipped)")


class RolloutSpec(_Strict):
    """What one rollout does (fixed at its start)."""

    rollout_id: str = Field(description="Unique id, e.g. 20261207T142900-3fa2c1")
    model: str
    candidate: int = Field(ge=1, description="The version rolled out")
    baseline: int = Field(ge=1, description="The production version at the start, compared with")
    steps_pct: StepsPct = Field(default=DEFAULT_STEPS_PCT, description="Canary shares in percent, increasing, "
                                "ending at 100 (the promotion)")
    step_s: float = Field(default=600.0, gt=0, description="Time at each step before it can pass")
    shadow_first_s: float = Field(default=0.0, ge=0, description="Shadow phase before the first step (0: none)")
    shadow_share: float = Field(default=1.0, gt=0, le=1, description="Share of requests copied to the candidate "
                                "in the shadow phase")
    sticky_key: str | None = Field(default=None, description="Header (or param:NAME) keeping a caller on one "
                                   "version during the canary steps; unset: random per request")
    checks: RolloutChecks = Field(default_factory=RolloutChecks, description="Thresholds")
    forced: bool = Field(default=False, description="Started although the candidate's gate did not pass")
    reason: str = Field(default="", description="Why it was started (required when forced)")

    @field_validator("sticky_key")
    @classmethod
    def _sticky(cls, key: str | None) -> str | None:
        try:  # the policy's rules: a header name or param:NAME
            return TrafficPolicy(sticky_key=key).sticky_key
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None

    @model_validator(mode="after")
    def _distinct(self) -> RolloutSpec:
        if self.candidate == self.baseline:
            raise ValueError(f"version {self.candidate} is the production version already")
        return self

    def phases(self) -> list[str]:
        """Every phase before the promotion, in order: ``shadow`` (if any), then ``canary:PCT``."""
        return ([SHADOW] if self.shadow_first_s > 0 else []) + [f"canary:{s:g}" for s in self.steps_pct[:-1]]

    def phase_share(self, phase: str) -> float:
        """The candidate's share of requests in ``phase`` (a fraction)."""
        return self.shadow_share if phase == SHADOW else float(phase.split(":", 1)[1]) / 100

    def phase_s(self, phase: str) -> float:
        return self.shadow_first_s if phase == SHADOW else self.step_s


class RolloutEvent(_Strict):
    seq: int = Field(ge=1, description="Position in the model's rollout history, from 1")
    model: str
    rollout_id: str
    kind: EventKind
    spec: RolloutSpec | None = Field(default=None, description="On 'started' only")
    phase: str | None = Field(default=None, description="On 'phase': the phase entered (shadow, canary:PCT)")
    actor: str = Field(description="Who: the credential's identity name, or rollout-controller")
    actor_id: str | None = Field(default=None, description="The stable id of that identity, when there is one")
    reason: str = Field(default="")
    evidence: dict[str, Any] | None = Field(default=None, description="The evaluation behind the decision")
    at: float = Field(description="Unix time")


@dataclass
class RolloutState:
    """One rollout as its events leave it."""

    spec: RolloutSpec
    status: Literal["pending", "running", "paused", "failed", "aborted", "completed"] = "pending"
    phase: str | None = None  # the phase in force (None before the first)
    phase_since: float | None = None  # when the phase's evidence window opened (entered or resumed)
    started_at: float = 0.0
    ended_at: float | None = None
    reason: str = ""
    events: list[RolloutEvent] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status not in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return {"rollout_id": self.spec.rollout_id, "model": self.spec.model, "candidate": self.spec.candidate,
                "baseline": self.spec.baseline, "status": self.status, "phase": self.phase,
                "phase_since": self.phase_since, "started_at": self.started_at, "ended_at": self.ended_at,
                "reason": self.reason, "spec": self.spec.model_dump(mode="json")}


def fold(history: list[RolloutEvent]) -> dict[str, RolloutState]:
    """Every rollout of a model by id, in start order."""
    out: dict[str, RolloutState] = {}
    for e in history:
        if e.kind == "started":
            out[e.rollout_id] = RolloutState(spec=e.spec, started_at=e.at, events=[e])
            continue
        state = out[e.rollout_id]
        state.events.append(e)
        if e.kind == "phase":
            state.status, state.phase, state.phase_since = "running", e.phase, e.at
        elif e.kind == "paused":
            state.status = "paused"
        elif e.kind == "resumed":
            state.status, state.phase_since = ("running" if state.phase else "pending"), e.at
        else:
            state.status, state.ended_at, state.reason = e.kind, e.at, e.reason
    return out


def new_id(now_s: float) -> str:
    return utc_at(now_s).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class RolloutBook:
    """The rollouts of the models of one registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.journal = Journal(registry.fs, registry.path, ".rollouts", RolloutEvent, what="rollout change")

    def history(self, model: str) -> list[RolloutEvent]:
        return self.journal.history(model)

    def rollouts(self, model: str) -> dict[str, RolloutState]:
        return fold(self.history(model))

    def active(self, model: str) -> RolloutState | None:
        """The model's rollout in progress (at most one), or None."""
        return next((s for s in self.rollouts(model).values() if s.active), None)

    def get(self, model: str, rollout_id: str | None = None) -> RolloutState:
        """A rollout by id, or (no id) the active one, else the newest; NotFound when there is none."""
        states = self.rollouts(model)
        if rollout_id is not None:
            if rollout_id not in states:
                raise NotFound(f"model {model!r} has no rollout {rollout_id!r}")
            return states[rollout_id]
        state = next((s for s in states.values() if s.active), None) or next(reversed(states.values()), None)
        if state is None:
            raise NotFound(f"model {model!r} has no rollout")
        return state

    def start(self, spec: RolloutSpec, *, actor: str, actor_id: str | None = None) -> RolloutEvent:
        """Record a new rollout; Conflict when the model has one in progress."""
        self.registry.get(spec.model, spec.candidate)  # NotFound: no such version
        self.registry.get(spec.model, spec.baseline)

        def make(seq: int, history: list[RolloutEvent]) -> RolloutEvent:
            running = next((s for s in fold(history).values() if s.active), None)
            if running is not None:
                raise Conflict(f"model {spec.model!r} has rollout {running.spec.rollout_id} of version "
                               f"{running.spec.candidate} in progress ({running.status}); abort it first")
            return RolloutEvent(seq=seq, model=spec.model, rollout_id=spec.rollout_id, kind="started", spec=spec,
                                actor=actor, actor_id=actor_id, reason=spec.reason, at=self.registry.clock())

        return self.journal.commit(spec.model, make)

    def record(self, model: str, rollout_id: str, kind: EventKind, *, actor: str, actor_id: str | None = None,
               reason: str = "", phase: str | None = None, evidence: dict | None = None,
               expect: tuple[str, ...] | None = None) -> RolloutEvent:
        """Append an event to an active rollout. ``expect``: the statuses it may be in (Conflict
        otherwise, e.g. resuming a running one): the check and the write are one commit."""

        def make(seq: int, history: list[RolloutEvent]) -> RolloutEvent:
            state = fold(history).get(rollout_id)
            if state is None:
                raise NotFound(f"model {model!r} has no rollout {rollout_id!r}")
            if not state.active:
                raise Conflict(f"rollout {rollout_id} has ended ({state.status})")
            if expect is not None and state.status not in expect:
                raise Conflict(f"rollout {rollout_id} is {state.status}; {kind} needs it {' or '.join(expect)}")
            return RolloutEvent(seq=seq, model=model, rollout_id=rollout_id, kind=kind, phase=phase, actor=actor,
                                actor_id=actor_id, reason=reason, evidence=evidence, at=self.registry.clock())

        return self.journal.commit(model, make)


def plan(registry: Registry, model: str, candidate: int, *, force: bool = False, reason: str = "",
         now_s: float | None = None, **spec: Any) -> RolloutSpec:
    """The spec of a rollout of ``candidate`` against the production version in force. Conflict
    when there is no production version to compare with, or when the candidate's gate did not
    pass (``ungated`` or ``failed``) and it is not forced with a reason; NotFound for an
    unknown version. ``spec``: the other :class:`RolloutSpec` fields (steps, checks...)."""
    mv = registry.get(model, candidate)
    production = registry.stages.state(model).production
    if production is None:
        raise Conflict(f"model {model!r} has no production version to compare version {candidate} with; "
                       "promote one first")
    if production == candidate:
        raise Conflict(f"version {candidate} is the production version already")
    status = gate_status(mv.gate)
    if status != "passed":
        if not force:
            hint = "run mlgate models evaluate first" if status == "ungated" else "its gate failed"
            raise Conflict(f"version {candidate} of {model!r} is {status}: {hint}, or start it with --force "
                           "--reason")
        if not reason:
            raise Conflict("a forced rollout needs a reason")
    now_s = registry.clock() if now_s is None else now_s
    try:
        return RolloutSpec(rollout_id=new_id(now_s), model=model, candidate=candidate, baseline=production,
                           forced=status != "passed", reason=reason, **spec)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(map(str, err["loc"])) or "rollout"
        raise InvalidInput(f"{field}: {err['msg'].removeprefix('Value error, ')}") from None
