"""The admin API's version-policy routes: which versions of a model the replicas serve, set at
run time (``mlgate models policy``'s library calls: :class:`registry.version_policies.PolicyBook`);
every replica follows within ``serving.reload_interval_s``. Writes are audited as
``models.policy``, refusals too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from access.identity import Identity
from control.audited import recorded
from control.routes import ERRORS, Admin, Context, admitted
from registry.store import VersionPolicy
from registry.version_policies import PolicyBook, PolicyEvent

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["models"])


class PolicyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: VersionPolicy = Field(description="The version policy from now on")
    reason: str = Field(default="", max_length=2000, description="Why (recorded)")


class PolicyState(BaseModel):
    model: str
    policy: VersionPolicy | None = Field(description="Set at run time; null: the configured policy applies")
    serves_now: list[int] | None = Field(description="The versions the policy set here admits now (null: unset)")
    last: PolicyEvent | None = Field(description="The change that set it")


@router.get("/models/{model}/version-policy", response_model=PolicyState)
def get_policy(model: str, ctx: Context, _: Admin) -> PolicyState:
    """The version policy set at run time, if any, and what it admits now."""
    ctx.registry.get(model)
    event = PolicyBook(ctx.registry).last(model)
    policy = event.policy if event else None
    serves = [mv.version for mv in ctx.registry.served(model, policy)] if policy else None
    return PolicyState(model=model, policy=policy, serves_now=serves, last=event)


def _set(ctx, who: Identity, model: str, policy: VersionPolicy | None, reason: str) -> PolicyEvent:
    detail = {"policy": policy.model_dump(mode="json") if policy else None, "reason": reason}
    with recorded(ctx.audit, who, "models.policy", model, detail) as act:
        event = PolicyBook(ctx.registry).set(model, policy, actor=who.name, actor_id=who.id, reason=reason)
        act.detail["policy_seq"] = event.seq
    return event


@router.put("/models/{model}/version-policy", response_model=PolicyEvent)
def put_policy(model: str, body: PolicyRequest, ctx: Context,
               who: Annotated[Identity, Depends(admitted("models.policy"))]) -> PolicyEvent:
    """Replace the version policy on every replica, without a restart."""
    return _set(ctx, who, model, body.policy, body.reason)


@router.delete("/models/{model}/version-policy", response_model=PolicyEvent)
def delete_policy(model: str, ctx: Context, who: Annotated[Identity, Depends(admitted("models.policy"))],
                  reason: Annotated[str, Query(max_length=2000, description="Why (recorded)")] = "") -> PolicyEvent:
    """Back to the configured version policy."""
    return _set(ctx, who, model, None, reason)
