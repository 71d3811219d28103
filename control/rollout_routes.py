"""The admin API's rollout routes: start, pause, resume, abort and read a model's rollouts,
through the library calls ``mlgate rollout`` makes (:mod:`control.rollout.actions`,
:func:`registry.rollouts.plan`). The controller (``mlgate up`` runs it) follows what these
record. Writes are audited as ``rollout.start``, ``rollout.paused``, ``rollout.resumed``,
``rollout.aborted``; refusals too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from access.identity import Identity
from control.audited import recorded
from control.context import AdminContext
from control.rollout.actions import change, evaluations, plan_with
from control.routes import ERRORS, Admin, Context, admitted
from control.schemas import RolloutChangeRequest, RolloutStartRequest, RolloutStatus
from registry.rollouts import RolloutState

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["rollouts"])
_LAST = Query(ge=1, le=1000, description="How many of the controller's latest evaluations to include")


def _status(ctx: AdminContext, state: RolloutState, last: int = 20) -> RolloutStatus:
    records = evaluations(ctx.state_root, state, last) if ctx.state_root else []
    return RolloutStatus(**state.to_dict(), events=state.events, evaluations=records)


@router.get("/models/{model}/rollouts", response_model=list[RolloutStatus])
def list_rollouts(model: str, ctx: Context, _: Admin) -> list[RolloutStatus]:
    """Every rollout of the model, oldest first (without evaluations)."""
    ctx.registry.get(model)  # 404 for an unknown model
    return [RolloutStatus(**s.to_dict(), events=s.events) for s in ctx.rollouts.rollouts(model).values()]


@router.get("/models/{model}/rollout", response_model=RolloutStatus)
def get_rollout(model: str, ctx: Context, _: Admin, last: Annotated[int, _LAST] = 20,
                rollout_id: Annotated[str | None, Query(description="A rollout id (default: the active rollout, "
                                                        "else the newest)")] = None) -> RolloutStatus:
    """One rollout: its steps, its status and the evidence behind the controller's decisions."""
    return _status(ctx, ctx.rollouts.get(model, rollout_id), last)


@router.post("/models/{model}/rollout", response_model=RolloutStatus, status_code=201)
def start_rollout(model: str, body: RolloutStartRequest, ctx: Context,
                  who: Annotated[Identity, Depends(admitted("rollout.start"))]) -> RolloutStatus:
    """Start rolling a version out (409: no production version, a gate that did not pass without
    force, or a rollout already in progress)."""
    detail = {"version": body.version, "reason": body.reason, "force": body.force}
    with recorded(ctx.audit, who, "rollout.start", f"{model}/{body.version}", detail) as act:
        spec = plan_with(ctx.registry, model, body.version, ctx.rollout, force=body.force, reason=body.reason,
                         steps_pct=body.steps_pct, step_s=body.step_s, shadow_first_s=body.shadow_first_s,
                         sticky_key=body.sticky_key)
        event = ctx.rollouts.start(spec, actor=who.name, actor_id=who.id)
        act.detail.update(rollout_id=spec.rollout_id, rollout_seq=event.seq)
    return _status(ctx, ctx.rollouts.get(model, spec.rollout_id))


def _change(kind: str, action: str):
    caller = Depends(admitted(action))  # a default, not in the annotation: annotations are strings here

    def route(model: str, body: RolloutChangeRequest, ctx: Context, who: Identity = caller) -> RolloutStatus:
        with recorded(ctx.audit, who, action, model, {"reason": body.reason}) as act:
            done = change(ctx.rollouts, model, None, kind, actor=who.name, actor_id=who.id, reason=body.reason)
            act.detail.update(rollout_id=done.state.spec.rollout_id, rollout_seq=done.event.seq,
                              traffic_seq=done.traffic_seq)
        return _status(ctx, ctx.rollouts.get(model, done.state.spec.rollout_id))

    return route


for _kind, _verb, _doc in [("paused", "pause", "Hold the active rollout where it is (409 unless pending or running)"),
                           ("resumed", "resume", "Go on with a paused rollout; the step's evidence window restarts"),
                           ("aborted", "abort", "End the active rollout: the candidate is taken out of traffic")]:
    router.add_api_route(f"/models/{{model}}/rollout/{_verb}", _change(_kind, f"rollout.{_kind}"), methods=["POST"],
                         response_model=RolloutStatus, summary=_doc, name=f"{_verb}_rollout")
