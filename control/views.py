"""What the admin API's read routes answer, built from the registry and the replicas'
reports (plain functions of an :class:`~control.context.AdminContext`)."""

from __future__ import annotations

from contracts.clock import iso_s
from contracts.replicas import read_statuses
from control.context import AdminContext
from control.schemas import ModelDetail, ModelSummary, ReplicaView, StageHistory, TrafficState, VersionInfo
from registry.stages import gate_status


def existing(ctx: AdminContext, model: str) -> list[int]:
    """The model's versions; NotFound (404) for a model the registry does not hold."""
    versions = ctx.registry.list_versions(model)
    if not versions:
        ctx.registry.get(model)  # raises NotFound with the registry's own message
    return versions


def model_summary(ctx: AdminContext, model: str) -> ModelSummary:
    state = ctx.registry.stages.state(model)
    return ModelSummary(name=model, versions=ctx.registry.list_versions(model), stages=dict(state.stages),
                        production=state.production)


def traffic_state(ctx: AdminContext, model: str) -> TrafficState:
    existing(ctx, model)
    event = ctx.book.last(model)
    production = ctx.registry.stages.state(model).production
    if event is None:
        return TrafficState(model=model, production=production, seq=0, policy=ctx.book.current(model))
    return TrafficState(model=model, production=production, seq=event.seq, policy=event.policy, set_by=event.actor,
                        actor_id=event.actor_id, at=iso_s(event.at), reason=event.reason)


def replicas(ctx: AdminContext, model: str) -> list[ReplicaView]:
    """What each live or stale replica reports about ``model`` (those that hold it in any state)."""
    if ctx.log_root is None:
        return []
    out = []
    for record in read_statuses(ctx.log_root, ctx.clock()):
        held = record.get("models", {}).get(model)
        if held is None:
            continue
        out.append(ReplicaView(source=record.get("source", "?"), host=record.get("host"), pid=record.get("pid"),
                               stale=record["stale"], serving=held.get("serving", []),
                               draining=held.get("draining", []), failed=held.get("failed", {})))
    return out


def model_detail(ctx: AdminContext, model: str) -> ModelDetail:
    versions = existing(ctx, model)
    state = ctx.registry.stages.state(model)
    infos = []
    for v in versions:
        mv = ctx.registry.get(model, v)
        infos.append(VersionInfo(version=v, stage=state.stages.get(v), gate=gate_status(mv.gate),
                                 created_at=mv.manifest.get("created_at")))
    return ModelDetail(name=model, production=state.production, versions=infos, traffic=traffic_state(ctx, model),
                       replicas=replicas(ctx, model))


def stage_history(ctx: AdminContext, model: str) -> StageHistory:
    existing(ctx, model)
    state = ctx.registry.stages.state(model)
    return StageHistory(model=model, production=state.production, stages=dict(state.stages),
                        history=ctx.registry.stage_history(model))
