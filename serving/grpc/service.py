"""The ``inference.GRPCInferenceService`` servicer: each RPC translates its message, asks the
data plane (or the repository handlers, the statistics), and answers; errors end the call
through ``serving.grpc.errors``. Access control as on REST: health, readiness and the server's
metadata are open; a model's metadata, configuration, statistics and inference need
``infer:MODEL`` (every model's statistics: ``metrics:read``); the repository RPCs need ``admin``
and every refused attempt at a load or unload is audited. RPCs mlgate has no use for (shared
memory, trace and log settings) answer ``UNIMPLEMENTED``.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf import json_format

from access.authenticator import Authenticator
from access.identity import ADMIN, METRICS_READ, OPEN, Identity
from contracts.clock import Clock
from contracts.errors import InvalidInput, MlgateError, NotFound
from serving import protocol
from serving.dataplane import DataPlane
from serving.grpc.errors import abort
from serving.grpc.generated import grpc_service_pb2 as pb
from serving.grpc.generated import grpc_service_pb2_grpc as pb_grpc
from serving.grpc.generated import model_config_pb2
from serving.grpc.infer import CallFailed, Inferences
from serving.http.repository import RepositoryHandlers
from serving.http.routes import Route
from serving.observers import StatisticsObserver, VersionStats
from serving.protocol.model_config import PLATFORM, model_config

AUTHORIZATION = "authorization"
REQUEST_ID = "x-request-id"
MODEL_VERSION = "x-model-version"


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, dataplane: DataPlane, *, clock: Clock, new_id: Callable[[], str], max_message_bytes: int,
                 max_stream_inflight: int, auth: Authenticator | None = None,
                 on_refused: Callable[[str], None] | None = None, repository: RepositoryHandlers | None = None,
                 statistics: StatisticsObserver | None = None) -> None:
        """``auth``: None with access control off; ``on_refused(reason)`` counts its refusals;
        ``repository``: the replica's repository API (None: those RPCs answer NOT_FOUND)."""
        self.dp = dataplane
        self.auth = auth
        self.on_refused = on_refused
        self.repository = repository
        self.statistics = statistics
        self.inferences = Inferences(dataplane, self._authorize, clock, new_id, max_message_bytes,
                                     max_stream_inflight)

    def _authorize(self, metadata: dict, scope: str | None) -> Identity:
        if self.auth is None or scope is None:
            return OPEN
        try:
            return self.auth.authorize(metadata.get(AUTHORIZATION), scope)
        except MlgateError as exc:
            if self.on_refused is not None:
                self.on_refused(exc.reason)
            raise

    async def _guard(self, context, scope: str | None) -> Identity:
        try:
            return self._authorize(_metadata(context), scope)
        except MlgateError as exc:
            await abort(context, exc)

    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.dp.ready)

    async def ModelReady(self, request, context):
        try:
            self.dp.model(request.name, request.version or None)
        except NotFound:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=self.dp.ready)

    async def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(**protocol.server_metadata())

    async def _model(self, request, context):
        """The served version a metadata or configuration request names (``infer:MODEL``)."""
        await self._guard(context, f"infer:{request.name}")
        try:
            return self.dp.model(request.name, request.version or None)
        except MlgateError as exc:
            await abort(context, exc, model=request.name)

    async def ModelMetadata(self, request, context):
        model = await self._model(request, context)
        versions = sorted(self.dp.models[request.name]) if not request.version else [model.version]
        doc = protocol.model_metadata(model.name, versions, PLATFORM, model.schema.inputs, model.schema.outputs)
        return json_format.ParseDict(doc, pb.ModelMetadataResponse())

    async def ModelConfig(self, request, context):
        model = await self._model(request, context)
        return pb.ModelConfigResponse(config=json_format.ParseDict(model_config(model), model_config_pb2.ModelConfig()))

    async def ModelStatistics(self, request, context):
        await self._guard(context, f"infer:{request.name}" if request.name else METRICS_READ)
        try:
            return _statistics(self.dp, self.statistics, request.name, request.version)
        except MlgateError as exc:
            await abort(context, exc, model=request.name or None)

    async def ModelInfer(self, request, context):
        try:
            response, request_id = await self.inferences.infer(request, _metadata(context), context.time_remaining())
        except CallFailed as failed:
            await abort(context, failed.error, failed.request_id, request.model_name)
        context.set_trailing_metadata(((REQUEST_ID, request_id), (MODEL_VERSION, response.model_version)))
        return response

    async def ModelStreamInfer(self, request_iterator, context):
        metadata = _metadata(context)
        if self.auth is not None:  # a stream needs a credential that verifies; each request, its scope
            try:
                self.auth.identify(metadata.get(AUTHORIZATION))
            except MlgateError as exc:
                if self.on_refused is not None:
                    self.on_refused(exc.reason)
                await abort(context, exc)
        async for answer in self.inferences.stream(request_iterator, metadata, context.time_remaining):
            yield answer

    async def RepositoryIndex(self, request, context):
        await self._guard(context, ADMIN)
        models = [] if self.repository is None else self.repository.repository.index()
        return pb.RepositoryIndexResponse(models=[pb.RepositoryIndexResponse.ModelIndex(**m) for m in models
                                                  if not request.ready or m["state"] == "READY"])

    async def RepositoryModelLoad(self, request, context):
        await self._repository_action(context, "repo_load", request.model_name, request.parameters)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(self, request, context):
        await self._repository_action(context, "repo_unload", request.model_name, {})
        return pb.RepositoryModelUnloadResponse()

    async def _repository_action(self, context, kind: str, model: str, parameters) -> None:
        route = Route(kind, model)
        try:
            try:
                identity = self._authorize(_metadata(context), ADMIN)
            except MlgateError as exc:
                if self.repository is not None:
                    await self.repository.refused(route, exc)
                raise
            if self.repository is None:
                raise NotFound("the repository API is not served here")
            if parameters:
                raise InvalidInput(f"parameters.{next(iter(parameters))}: not supported by this server")
            action = self.repository.load if kind == "repo_load" else self.repository.unload
            await action(route, {}, b"", identity)
        except MlgateError as exc:
            await abort(context, exc, model=model)


def _metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {key: value for key, value in context.invocation_metadata() or ()}


def _statistics(dp: DataPlane, statistics: StatisticsObserver | None, name: str,
                version: str) -> pb.ModelStatisticsResponse:
    """Every served version of ``name`` (of every model when ""), with what this replica tallied."""
    tallies = statistics.snapshot() if statistics is not None else {}
    keys = {(m, v) for m, versions in dp.models.items() for v in versions} | set(tallies)
    keys = {(m, v) for m, v in keys if (not name or m == name) and (not version or str(v) == version)}
    if name and not keys:
        raise NotFound(f"unknown model {name!r}" + (f" version {version!r}" if version else ""))
    out = pb.ModelStatisticsResponse()
    for m, v in sorted(keys):
        s = tallies.get((m, v)) or VersionStats()
        stats = out.model_stats.add(name=m, version=str(v), last_inference=s.last_inference_ms,
                                    inference_count=s.inference_count, execution_count=s.execution_count)
        infer = stats.inference_stats
        for field, duration in (("success", s.success), ("fail", s.fail), ("queue", s.queue),
                                ("compute_infer", s.compute)):
            getattr(infer, field).count, getattr(infer, field).ns = duration.count, duration.ns
        for rows, duration in sorted(s.batches.items()):
            batch = stats.batch_stats.add(batch_size=rows)
            batch.compute_infer.count, batch.compute_infer.ns = duration.count, duration.ns
    return out
