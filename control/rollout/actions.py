"""What a person does to a rollout, for the CLI and the admin API alike: plan one, pause,
resume or abort it, read its story. Each is one journal commit (abort also clears the
traffic policy itself, so it works while no controller runs); the callers audit them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from control.config import RolloutConfig
from monitoring.state import StateStore
from registry.rollouts import EventKind, RolloutBook, RolloutEvent, RolloutSpec, RolloutState, plan
from registry.store import Registry
from registry.traffic import TrafficBook, TrafficPolicy

# the statuses each change needs the rollout in (None: any active status)
EXPECT: dict[str, tuple[str, ...] | None] = {"paused": ("pending", "running"), "resumed": ("paused",),
                                             "aborted": None}
LOG_NAME = "rollouts"  # rollouts.jsonl, the controller's evaluations


def plan_with(registry: Registry, model: str, version: int, defaults: RolloutConfig, *, force: bool = False,
              reason: str = "", steps_pct: tuple[float, ...] | None = None, step_s: float | None = None,
              shadow_first_s: float | None = None, sticky_key: str | None = None) -> RolloutSpec:
    """The spec a person asks for: what they leave out comes from ``rollout`` (``defaults``), the
    checks always do. The refusals of :func:`registry.rollouts.plan`."""
    return plan(registry, model, version, force=force, reason=reason, steps_pct=steps_pct or defaults.steps_pct,
                step_s=step_s or defaults.step_s,
                shadow_first_s=defaults.shadow_first_s if shadow_first_s is None else shadow_first_s,
                sticky_key=sticky_key, checks=defaults.checks)


@dataclass(frozen=True)
class Change:
    state: RolloutState  # before the change
    event: RolloutEvent
    traffic_seq: int | None  # abort: the traffic event that cleared the policy


def change(book: RolloutBook, model: str, rollout_id: str | None, kind: EventKind, *, actor: str,
           actor_id: str | None, reason: str = "") -> Change:
    """Pause, resume or abort (``kind``: paused, resumed, aborted) the given rollout, or the
    model's active one; Conflict when it is not in a status the change needs."""
    state = book.get(model, rollout_id)
    event = book.record(model, state.spec.rollout_id, kind, actor=actor, actor_id=actor_id, reason=reason,
                        expect=EXPECT[kind])
    traffic_seq = None
    if kind == "aborted":
        traffic = TrafficBook(book.registry)
        if traffic.current(model).versions():
            traffic_seq = traffic.set(model, TrafficPolicy(), actor=actor, actor_id=actor_id,
                                      reason=f"rollout {state.spec.rollout_id} aborted").seq
    return Change(state, event, traffic_seq)


def evaluations(state_root: str, state: RolloutState, last: int | None = None) -> list[dict[str, Any]]:
    """The controller's records of one rollout from ``rollouts.jsonl``, oldest first (the last ``last``)."""
    records = [r for r in StateStore(state_root, state.spec.model).read(LOG_NAME)
               if r.get("rollout_id") == state.spec.rollout_id]
    return records[-last:] if last else records
