"""The one place where errors become gRPC statuses.

The meaning of an error (its HTTP status, whether it is expected, a safe message) comes from
``contracts.errors.classify``; this maps the status to a gRPC code once. An internal fault is
logged with its traceback and answered ``INTERNAL`` with a generic message. An error that says
when to try again (503, 429) carries it as trailing metadata: ``retry-after`` (seconds, as the
HTTP header) and ``grpc-retry-pushback-ms`` (what gRPC's own retry policy reads).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus

import grpc
import orjson

from contracts.errors import classify

log = logging.getLogger("mlgate.grpc")

CODES: dict[int, grpc.StatusCode] = {
    HTTPStatus.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.UNAUTHORIZED: grpc.StatusCode.UNAUTHENTICATED,
    HTTPStatus.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    HTTPStatus.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    HTTPStatus.METHOD_NOT_ALLOWED: grpc.StatusCode.UNIMPLEMENTED,
    HTTPStatus.REQUEST_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    HTTPStatus.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    HTTPStatus.TOO_MANY_REQUESTS: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    HTTPStatus.SERVICE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    HTTPStatus.GATEWAY_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
}


@dataclass(frozen=True)
class GrpcError:
    """What a call that failed answers: its code, a message safe to send, trailing metadata."""

    code: grpc.StatusCode
    message: str
    trailers: tuple[tuple[str, str], ...] = ()


def grpc_error(exc: BaseException, request_id: str | None = None, model: str | None = None) -> GrpcError:
    """The answer for ``exc``; an unexpected one is logged here with its traceback."""
    kind = classify(exc)
    if not kind.expected:
        log.error(orjson.dumps({"event": "internal_error", "request_id": request_id, "model": model,
                                "error": repr(exc)}).decode(), exc_info=exc)
    code = CODES.get(kind.status, grpc.StatusCode.INTERNAL if kind.status >= 500 else grpc.StatusCode.UNKNOWN)
    trailers = []
    for name, value in kind.headers:
        if name == b"retry-after":
            trailers += [("retry-after", value.decode()), ("grpc-retry-pushback-ms", str(int(value) * 1000))]
    if request_id:
        trailers.append(("x-request-id", request_id))
    return GrpcError(code, kind.message, tuple(trailers))


async def abort(context: grpc.aio.ServicerContext, exc: BaseException, request_id: str | None = None,
                model: str | None = None):
    """End the call with ``exc``'s status (raises, as ``context.abort`` does)."""
    error = grpc_error(exc, request_id, model)
    await context.abort(error.code, error.message, trailing_metadata=error.trailers)
