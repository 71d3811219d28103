"""``ModelInfer`` and ``ModelStreamInfer``: one request's way from the message to the data
plane and back, as ``serving.http.app`` does it for REST.

Access control first (the ``authorization`` metadata, scope ``infer:MODEL``); then the data
plane's use case: arrival (its timing), admission before any decoding (a full queue: 503 ->
``UNAVAILABLE``; a deadline the queue rules out: 504 -> ``DEADLINE_EXCEEDED``), decoding, the
traffic policy's sticky key (metadata or a request parameter), the deadline (the smallest of
the gRPC deadline and ``parameters.timeout``), the batch. What a request leaves behind
(metrics, prediction log with route ``grpc``) is the data plane's observers' business.

A stream answers its requests in the order they came, computing up to ``max_inflight`` of
them at once (they batch together); a request that fails is answered with ``error_message``
and the stream goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from access.identity import OPEN, Identity
from contracts.clock import Clock
from contracts.errors import MlgateError
from serving.dataplane import DataPlane
from serving.grpc.codec import decode_infer_request, encode_infer_response
from serving.grpc.errors import grpc_error
from serving.grpc.generated import grpc_service_pb2 as pb
from serving.types import InferenceRequest

OFFLOAD_DECODE_BYTES = 256 * 1024  # raw inputs larger than this are decoded on a worker thread


class CallFailed(Exception):
    """An inference call's error, with the request id it was answered under."""

    def __init__(self, error: BaseException, request_id: str | None) -> None:
        super().__init__(repr(error))
        self.error = error
        self.request_id = request_id


class Inferences:
    def __init__(self, dataplane: DataPlane, authorize: Callable[[dict, str], Identity], clock: Clock,
                 new_id: Callable[[], str], max_elements: int, max_inflight: int) -> None:
        """``authorize(metadata, scope)``: the caller's identity, or the error refusing it."""
        self.dp = dataplane
        self.authorize = authorize
        self.clock = clock
        self.new_id = new_id
        self.max_elements = max_elements
        self.max_inflight = max_inflight

    async def infer(self, msg: pb.ModelInferRequest, metadata: dict,
                    remaining_s: float | None) -> tuple[pb.ModelInferResponse, str]:
        """The answer and the request id it was answered under; raises :class:`CallFailed`."""
        try:
            identity = self.authorize(metadata, f"infer:{msg.model_name}")
        except MlgateError as exc:
            raise CallFailed(exc, None) from None
        call = self.dp.arrive(self.clock())
        try:
            request = await self._request(call, msg, metadata, identity, remaining_s)
        except Exception as exc:  # noqa: BLE001 - observed, then mapped in one place
            refused = InferenceRequest(msg.model_name, msg.model_version or None, [], route="grpc",
                                       request_id=self.new_id(), identity=_who(identity))
            call.refuse(refused, exc)
            raise CallFailed(exc, refused.request_id) from None
        try:
            response = await call.run(request)
            return encode_infer_response(response, request.outputs, request.id), request.request_id
        except Exception as exc:  # noqa: BLE001 - mapped in one place
            raise CallFailed(exc, request.request_id) from None

    async def _request(self, call, msg: pb.ModelInferRequest, metadata: dict, identity: Identity,
                       remaining_s: float | None) -> InferenceRequest:
        call.admit(msg.model_name, msg.model_version or None, remaining_s)
        if sum(map(len, msg.raw_input_contents)) > OFFLOAD_DECODE_BYTES:
            request = await asyncio.to_thread(decode_infer_request, msg, self.max_elements)
        else:
            request = decode_infer_request(msg, self.max_elements)
        request.request_id = request.id or self.new_id()
        request.identity = _who(identity)
        if request.version is None and request.model in self.dp.routers:
            request.sticky = self.dp.routers[request.model].sticky_value(metadata, request.parameters)
        if remaining_s is not None:
            request.timeout_s = remaining_s if request.timeout_s is None else min(request.timeout_s, remaining_s)
        return request

    async def stream(self, messages: AsyncIterator[pb.ModelInferRequest], metadata: dict,
                     remaining_s: Callable[[], float | None]) -> AsyncIterator[pb.ModelStreamInferResponse]:
        """The answers of a stream's requests, in their order."""
        loop = asyncio.get_running_loop()
        pending: asyncio.Queue = asyncio.Queue()  # answers in the making, in request order; None: the end
        slots = asyncio.Semaphore(self.max_inflight)  # held from a request's arrival until its answer is sent

        async def read() -> None:
            try:
                async for msg in messages:
                    await slots.acquire()
                    pending.put_nowait(loop.create_task(self._stream_one(msg, metadata, remaining_s())))
            finally:
                pending.put_nowait(None)

        reader = loop.create_task(read())
        try:
            while (task := await pending.get()) is not None:
                yield await task
                slots.release()
            await reader  # the stream's own failure, if it had one
        finally:
            reader.cancel()
            while not pending.empty():
                task = pending.get_nowait()
                if task is not None:
                    task.cancel()

    async def _stream_one(self, msg: pb.ModelInferRequest, metadata: dict,
                          remaining_s: float | None) -> pb.ModelStreamInferResponse:
        try:
            response, _ = await self.infer(msg, metadata, remaining_s)
        except CallFailed as failed:
            error = grpc_error(failed.error, failed.request_id, msg.model_name)
            return pb.ModelStreamInferResponse(
                error_message=f"{error.code.name}: {error.message}",
                infer_response=pb.ModelInferResponse(model_name=msg.model_name, model_version=msg.model_version,
                                                     id=msg.id))
        return pb.ModelStreamInferResponse(infer_response=response)


def _who(identity: Identity) -> str | None:
    return identity.id if identity is not OPEN else None
