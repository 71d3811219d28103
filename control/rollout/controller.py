"""The controller: applies each active rollout's decision, once per evaluation.

For a rollout in a phase it gathers that phase's evidence (:mod:`.evidence`, the window
since the phase was entered or resumed), decides (:mod:`.decide`) and acts:

* hold: nothing changes;
* advance: the next phase's traffic policy is set, then the phase recorded; after the
  last phase the candidate is promoted (a stage event), the policy cleared, the rollout
  ``completed``;
* fail: the policy is cleared (the candidate at 0%), the candidate archived (a ``reject``
  stage event saying why), the rollout ``failed``, and an ``MlgateRolloutFailed`` alert
  sent through the monitor's webhook.

Every evaluation, with its evidence and checks, is appended to ``rollouts.jsonl`` in the
model's monitor state directory; every change of traffic or stage to the audit trail as
the controller's service identity. Each action is idempotent and written before its
record, so a controller killed between the two redoes it on restart and ends the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from access.audit import AuditLog
from access.identity import ADMIN, Identity
from contracts.clock import Clock, iso_s, wall_clock_s
from control.rollout import evidence as evd
from control.rollout.actions import LOG_NAME
from control.rollout.decide import Decision, decide
from monitoring.alerts import AlertState, Transition
from monitoring.config import AlertConfig
from monitoring.notify import deliver, log_entries
from monitoring.state import StateStore
from registry.references import CBPE_FILE, load_cbpe
from registry.rollouts import SHADOW, RolloutBook, RolloutState
from registry.schema import ModelSchema
from registry.store import Registry
from registry.traffic import TrafficBook, TrafficPolicy

log = logging.getLogger("mlgate.rollout")
ACTOR = "rollout-controller"
IDENTITY = Identity(id=f"service:{ACTOR}", name=ACTOR, kind="service", scopes=frozenset({ADMIN}))
ALERT_NAME = "MlgateRolloutFailed"


@dataclass(frozen=True)
class Roots:
    registry_root: str
    log_root: str
    state_root: str  # the monitor's (rollouts.jsonl beside its logs)
    audit_root: str


class RolloutController:
    def __init__(self, roots: Roots, alerts: AlertConfig | None = None, clock: Clock = wall_clock_s) -> None:
        self.roots, self.alerts, self.clock = roots, alerts or AlertConfig(), clock
        self.registry = Registry(roots.registry_root, clock)
        self.book = RolloutBook(self.registry)
        self.traffic = TrafficBook(self.registry)
        self.audit = AuditLog(roots.audit_root, clock)
        self._versions_read: dict[str, tuple[ModelSchema, dict]] = {}

    def tick(self) -> list[dict]:
        """Evaluate every active rollout once; returns the records written to ``rollouts.jsonl``."""
        out = []
        for model in self.registry.list_models():
            state = self.book.active(model)
            if state is not None and state.status != "paused":
                out.append(self.step(state))
        return out

    def step(self, state: RolloutState) -> dict:
        """One evaluation of one rollout (pending: enter its first phase)."""
        spec, now = state.spec, self.clock()
        if state.phase is None:
            return self._enter(state, 0, now, "started")
        schema, cbpe = self._versions(spec)
        ev = evd.gather(self.roots.log_root, spec.model, spec.baseline, spec.candidate, schema,
                        since_s=state.phase_since, until_s=now, shadow=state.phase == SHADOW,
                        tolerance=spec.checks.regression_tolerance, cbpe=cbpe)
        decision = decide(state.phase, now - state.phase_since, spec.phase_s(state.phase), ev, spec.checks,
                          evd.prediction_column(schema) is not None)
        record = self._log(state, decision, ev, now)
        if decision.action == "fail":
            self._fail(state, decision, record)
        elif decision.action == "advance":
            self._enter(state, spec.phases().index(state.phase) + 1, now, decision.reason, record)
        return record

    def _versions(self, spec) -> tuple[ModelSchema, dict]:
        """The baseline's schema and each version's CBPE reference (when it stores one): versions
        are immutable, so they are read once per rollout, not at every evaluation."""
        if spec.rollout_id not in self._versions_read:
            mvs = {v: self.registry.get(spec.model, v) for v in (spec.baseline, spec.candidate)}
            refs = {v: load_cbpe(mv.read(CBPE_FILE)) for v, mv in mvs.items() if mv.has(CBPE_FILE)}
            self._versions_read[spec.rollout_id] = mvs[spec.baseline].schema, refs  # one entry per rollout run
        return self._versions_read[spec.rollout_id]

    # -- actions -------------------------------------------------------------------
    def _enter(self, state: RolloutState, index: int, now: float, reason: str, evidence: dict | None = None) -> dict:
        spec = state.spec
        phases = spec.phases()
        if index >= len(phases):
            return self._complete(state, reason, evidence)
        phase = phases[index]
        share = spec.phase_share(phase)
        policy = TrafficPolicy(shadows={spec.candidate: share}) if phase == SHADOW else \
            TrafficPolicy(canaries={spec.candidate: share}, sticky_key=spec.sticky_key)
        self._set_traffic(spec.model, policy, f"rollout {spec.rollout_id}: {phase}", spec.rollout_id)
        self.book.record(spec.model, spec.rollout_id, "phase", actor=ACTOR, actor_id=IDENTITY.id, phase=phase,
                         reason=reason, evidence=evidence)
        return self._append(spec.model, {"rollout_id": spec.rollout_id, "model": spec.model, "at": iso_s(now),
                                         "event": "phase", "phase": phase, "share": share, "reason": reason})

    def _complete(self, state: RolloutState, reason: str, evidence: dict | None) -> dict:
        spec = state.spec
        if self.registry.stages.state(spec.model).production != spec.candidate:
            self.registry.promote(spec.model, spec.candidate, actor=f"rollout:{spec.rollout_id}",
                                  actor_id=IDENTITY.id, force=spec.forced,
                                  reason=f"rollout {spec.rollout_id} passed every step ({reason})")
            self._audit("rollout.promote", spec, {"version": spec.candidate})
        self._set_traffic(spec.model, TrafficPolicy(), f"rollout {spec.rollout_id}: completed", spec.rollout_id)
        self.book.record(spec.model, spec.rollout_id, "completed", actor=ACTOR, actor_id=IDENTITY.id,
                         reason=reason, evidence=evidence)
        log.info("%s: rollout %s completed, version %s in production", spec.model, spec.rollout_id, spec.candidate)
        return self._append(spec.model, {"rollout_id": spec.rollout_id, "model": spec.model,
                                         "at": iso_s(self.clock()), "event": "completed", "reason": reason})

    def _fail(self, state: RolloutState, decision: Decision, record: dict) -> None:
        spec = state.spec
        reason = f"{state.phase}: {decision.reason}"
        self._set_traffic(spec.model, TrafficPolicy(), f"rollout {spec.rollout_id} failed: {reason}", spec.rollout_id)
        if self.registry.stage_of(spec.model, spec.candidate) != "archived":
            self.registry.reject(spec.model, spec.candidate, actor=f"rollout:{spec.rollout_id}",
                                 actor_id=IDENTITY.id, reason=f"rollout {spec.rollout_id} failed at {reason}")
            self._audit("rollout.reject", spec, {"version": spec.candidate, "reason": reason})
        self.book.record(spec.model, spec.rollout_id, "failed", actor=ACTOR, actor_id=IDENTITY.id, reason=reason,
                         evidence=record)
        log.warning("%s: rollout %s of version %s rolled back: %s", spec.model, spec.rollout_id, spec.candidate,
                    reason)
        self._alert(state, reason)

    def _set_traffic(self, model: str, policy: TrafficPolicy, reason: str, rollout_id: str) -> None:
        if self.traffic.current(model) == policy:
            return
        event = self.traffic.set(model, policy, actor=ACTOR, actor_id=IDENTITY.id, reason=reason)
        self.audit.append(IDENTITY, "traffic.set" if policy.versions() else "traffic.clear", model, "ok",
                          {"policy": policy.model_dump(mode="json"), "reason": reason, "traffic_seq": event.seq,
                           "rollout_id": rollout_id})

    def _audit(self, action: str, spec, detail: dict) -> None:
        self.audit.append(IDENTITY, action, spec.model, "ok", {"rollout_id": spec.rollout_id, **detail})

    def _alert(self, state: RolloutState, reason: str) -> None:
        spec, at = state.spec, iso_s(self.clock())
        alert = AlertState(labels={"alertname": ALERT_NAME, "model": spec.model, "version": str(spec.candidate),
                                   "severity": "critical"},
                           status="firing", starts_at=at, level=1.0,
                           annotations={"summary": f"rollout {spec.rollout_id} of {spec.model} version "
                                        f"{spec.candidate} failed and was rolled back", "reason": reason,
                                        "rollout_id": spec.rollout_id, "production": str(spec.baseline)})
        transitions = [Transition("firing", alert, at, f"rollout:{spec.rollout_id}")]
        delivered, error, _ = deliver(transitions, self.alerts, self.clock())
        StateStore(self.roots.state_root, spec.model).append("alerts", log_entries(transitions, delivered, error))

    # -- records ---------------------------------------------------------------------
    def _log(self, state: RolloutState, decision: Decision, ev: evd.Evidence, now: float) -> dict:
        spec = state.spec
        return self._append(spec.model, {"rollout_id": spec.rollout_id, "model": spec.model, "at": iso_s(now),
                                         "event": "evaluation", "phase": state.phase, **decision.to_dict(),
                                         "evidence": ev.to_dict()})

    def _append(self, model: str, record: dict) -> dict:
        StateStore(self.roots.state_root, model).append(LOG_NAME, [record])
        return record
