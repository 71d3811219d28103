"""The admin API's routes: translate HTTP to the library calls the CLI makes
(:class:`registry.Registry`, :class:`registry.traffic.TrafficBook`, :class:`access.audit.AuditLog`)
and back. Every route needs the ``admin`` scope; writes are audited like the CLI's
(``models.promote``, ``models.rollback``, ``traffic.set``, ``traffic.clear``), refusals too.

Handlers are plain ``def``: FastAPI runs them in its thread pool, so registry and audit
file I/O never blocks the event loop.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPBearer

from access.identity import Identity
from contracts.errors import InvalidInput
from control import views
from control.audited import recorded
from control.context import AdminContext
from control.schemas import (
    AuditRecords,
    AuditVerify,
    ErrorBody,
    ModelDetail,
    ModelSummary,
    PromoteRequest,
    RollbackRequest,
    StageHistory,
    TrafficRequest,
    TrafficState,
)
from registry.stages import StageEvent
from registry.traffic import TrafficEvent, TrafficPolicy

_BEARER = HTTPBearer(auto_error=False, description="An API key or JWT with the admin scope")
ERRORS = {status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422, 429)}


def context(request: Request) -> AdminContext:
    return request.app.state.admin


def authorization(request: Request, _: Annotated[object, Depends(_BEARER)]) -> str | None:
    """The raw ``Authorization`` value (the bearer scheme is declared for OpenAPI and /docs;
    :class:`access.authenticator.Authenticator` judges the value itself)."""
    return request.headers.get("authorization")


Context = Annotated[AdminContext, Depends(context)]
Authorization = Annotated[str | None, Depends(authorization)]


def admin(request: Request, ctx: Context, authorization: Authorization) -> Identity:
    """The caller, for a read: the admin scope or 401/403/429; a refusal is audited too
    (action ``api.read``, target the path): every refused admin attempt is on the trail."""
    return ctx.admit(authorization, "api.read", request.url.path, {})


def admitted(action: str):
    """The caller, for a write of ``action`` on the path's model: checked before the body is
    read; a refusal is audited (target: the model) and raised."""

    def dependency(request: Request, model: str, ctx: Context, authorization: Authorization) -> Identity:
        return ctx.admit(authorization, action, model, {"path": request.url.path})

    return dependency


Admin = Annotated[Identity, Depends(admin)]
router = APIRouter(prefix="/v1", responses=ERRORS)


@router.get("/models", response_model=list[ModelSummary], tags=["models"])
def list_models(ctx: Context, _: Admin) -> list[ModelSummary]:
    """Every model with its versions, stages and production version."""
    return [views.model_summary(ctx, name) for name in ctx.registry.list_models()]


@router.get("/models/{model}", response_model=ModelDetail, tags=["models"])
def get_model(model: str, ctx: Context, _: Admin) -> ModelDetail:
    """One model: versions with stage and gate, the traffic policy in force, what replicas serve."""
    return views.model_detail(ctx, model)


@router.get("/models/{model}/stages", response_model=StageHistory, tags=["models"])
def get_stages(model: str, ctx: Context, _: Admin) -> StageHistory:
    """Current stages and the whole stage history."""
    return views.stage_history(ctx, model)


@router.post("/models/{model}/promote", response_model=StageEvent, tags=["models"])
def promote(model: str, body: PromoteRequest, ctx: Context,
            who: Annotated[Identity, Depends(admitted("models.promote"))]) -> StageEvent:
    """Make a version production (409 when its gate refuses it without force, or it is production already)."""
    detail = {"reason": body.reason, "force": body.force}
    with recorded(ctx.audit, who, "models.promote", f"{model}/{body.version}", detail) as act:
        event = ctx.registry.promote(model, body.version, actor=who.name, actor_id=who.id, reason=body.reason,
                                     force=body.force)
        act.detail.update(stage_seq=event.seq, previous_production=event.previous_production, forced=event.forced)
    return event


@router.post("/models/{model}/rollback", response_model=StageEvent, tags=["models"])
def rollback(model: str, body: RollbackRequest, ctx: Context,
             who: Annotated[Identity, Depends(admitted("models.rollback"))]) -> StageEvent:
    """Return to the production version before the current one (409 when there is none)."""
    with recorded(ctx.audit, who, "models.rollback", model, {"reason": body.reason}) as act:
        event = ctx.registry.rollback(model, actor=who.name, actor_id=who.id, reason=body.reason)
        act.detail.update(stage_seq=event.seq, version=event.version, previous_production=event.previous_production)
    return event


@router.get("/models/{model}/traffic", response_model=TrafficState, tags=["traffic"])
def get_traffic(model: str, ctx: Context, _: Admin) -> TrafficState:
    """The traffic policy in force, with the production version it splits against."""
    return views.traffic_state(ctx, model)


def _set_traffic(ctx: AdminContext, who: Identity, model: str, policy: TrafficPolicy, reason: str,
                 action: str) -> TrafficEvent:
    detail = {"policy": policy.model_dump(mode="json"), "reason": reason}
    with recorded(ctx.audit, who, action, model, detail) as act:
        event = ctx.book.set(model, policy, actor=who.name, actor_id=who.id, reason=reason)
        act.detail["traffic_seq"] = event.seq
    return event


@router.put("/models/{model}/traffic", response_model=TrafficEvent, tags=["traffic"])
def put_traffic(model: str, body: TrafficRequest, ctx: Context,
                who: Annotated[Identity, Depends(admitted("traffic.set"))]) -> TrafficEvent:
    """Replace the policy (404 when the model or a version it names does not exist)."""
    if not body.policy.versions():
        raise InvalidInput("policy: needs at least one canary or shadow (DELETE clears the policy)")
    return _set_traffic(ctx, who, model, body.policy, body.reason, "traffic.set")


@router.delete("/models/{model}/traffic", response_model=TrafficEvent, tags=["traffic"])
def delete_traffic(model: str, ctx: Context, who: Annotated[Identity, Depends(admitted("traffic.clear"))],
                   reason: Annotated[str, Query(max_length=2000, description="Why (recorded)")] = "") -> TrafficEvent:
    """Remove canaries and shadows: production answers everything."""
    return _set_traffic(ctx, who, model, TrafficPolicy(), reason, "traffic.clear")


@router.get("/audit", response_model=AuditRecords, tags=["audit"])
def list_audit(ctx: Context, _: Admin, since: Annotated[dt.datetime | None, Query(
        description="Only records at or after this time (ISO 8601; without a zone: UTC)")] = None) -> AuditRecords:
    """The audit trail of admin actions, oldest first."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    return AuditRecords(records=ctx.audit.records(since))


@router.get("/audit/verify", response_model=AuditVerify, tags=["audit"])
def verify_audit(ctx: Context, _: Admin) -> AuditVerify:
    """Check the trail's hash chain; the first broken record is named."""
    report = ctx.audit.verify()
    return AuditVerify(ok=report.ok, count=report.count, line=report.line, problem=report.problem,
                       last_hash=report.last_hash)
