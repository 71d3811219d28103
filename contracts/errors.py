"""The one exception root of mlgate.

Every error class declares its HTTP status and its metric reason once; whether an
outcome is *expected* (the client's mistake, overload, a missed deadline, a client that
left) or an internal fault follows from the status, here and nowhere else. :func:`classify`
turns any exception into that description, for the transports (``serving/http``, which map
errors to responses in exactly one place; 5xx bodies stay generic there and the detail goes
to the server log) and the observers (metrics, error log, prediction log).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from http import HTTPStatus

INTERNAL_MESSAGE = "internal server error"


class MlgateError(Exception):
    """Root of every error mlgate raises on purpose."""

    status: int = HTTPStatus.INTERNAL_SERVER_ERROR
    reason: str = "internal"  # the ``reason`` label of rejection metrics

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def client_error(self) -> bool:
        return 400 <= int(self.status) < 500

    @property
    def expected(self) -> bool:
        """A handled outcome (answered with its own status and message), not a fault."""
        return self.client_error or int(self.status) in (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.GATEWAY_TIMEOUT)

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """Response headers this error adds (``Retry-After``, ``Allow``)."""
        return []


class InvalidInput(MlgateError):
    """The client sent something malformed; the message names the field."""

    status = HTTPStatus.BAD_REQUEST
    reason = "bad_input"


class NotFound(MlgateError):
    """Unknown model, version, route or run."""

    status = HTTPStatus.NOT_FOUND
    reason = "not_found"


class MethodNotAllowed(MlgateError):
    """A route asked with a method it does not take; ``allow`` names the one it does."""

    status = HTTPStatus.METHOD_NOT_ALLOWED
    reason = "method_not_allowed"

    def __init__(self, allow: str) -> None:
        super().__init__(f"method not allowed; use {allow}")
        self.allow = allow

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"allow", self.allow.encode())]


class PayloadTooLarge(MlgateError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    reason = "too_large"


class MalformedRequest(InvalidInput):
    """Bytes that do not parse as an HTTP/1.1 request (the connection closes)."""

    reason = "malformed"


class RequestTimeout(MlgateError):
    """A request's headers or body did not arrive in time (``phase``: header or body)."""

    status = HTTPStatus.REQUEST_TIMEOUT

    def __init__(self, phase: str) -> None:
        super().__init__(f"request {phase} not received in time")
        self.reason = f"{phase}_timeout"


class UriTooLong(MlgateError):
    status = HTTPStatus.REQUEST_URI_TOO_LONG
    reason = "url"


class HeadersTooLarge(MlgateError):
    status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    reason = "headers"


class ExpectationFailed(MlgateError):
    status = HTTPStatus.EXPECTATION_FAILED
    reason = "expect"


class Conflict(MlgateError):
    """A write that would change something immutable (a published version)."""

    status = HTTPStatus.CONFLICT
    reason = "conflict"


class ClientClosed(MlgateError):
    """The client closed the connection before its answer: logged and counted with nginx's
    499, never sent."""

    status = 499
    reason = "client_closed"

    def __init__(self, message: str = "the client closed the connection before the answer") -> None:
        super().__init__(message)


class RetryLater(MlgateError):
    """Refused for now: the answer tells when to try again (``Retry-After``)."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", str(max(1, math.ceil(self.retry_after_s))).encode())]


class Overloaded(RetryLater):
    """Admission refused because a queue is full; the client should retry later."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    reason = "queue_full"


class NotReady(Overloaded):
    """The model exists but is not loaded yet (or is shutting down)."""


class TooManyConnections(Overloaded):
    """A replica holds its ``serving.http.max_connections`` already."""

    reason = "connections"


class TooManyClientConnections(Overloaded):
    """The client's address holds its ``serving.http.max_connections_per_client`` already."""

    reason = "client_connections"


class Unauthenticated(MlgateError):
    """No credentials, or credentials that do not verify (unknown, malformed, expired, revoked,
    a bad signature): 401 with a ``WWW-Authenticate: Bearer`` challenge (RFC 6750). The message
    says what is missing, never which credentials exist."""

    status = HTTPStatus.UNAUTHORIZED
    reason = "unauthenticated"

    def __init__(self, message: str, invalid: bool = True) -> None:
        super().__init__(message)
        self.invalid = invalid  # credentials were sent and refused (error="invalid_token")

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.invalid:
            return [(b"www-authenticate", b'Bearer realm="mlgate", error="invalid_token"')]
        return [(b"www-authenticate", b'Bearer realm="mlgate"')]


class Forbidden(MlgateError):
    """A verified identity without the scope a request needs: 403, the scope named."""

    status = HTTPStatus.FORBIDDEN
    reason = "forbidden"


class RateLimited(RetryLater):
    """An identity over its request rate: 429 with ``Retry-After``."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    reason = "rate_limited"


class DeadlineExceeded(MlgateError):
    """The request's own deadline passed before an answer was ready."""

    status = HTTPStatus.GATEWAY_TIMEOUT
    reason = "deadline"


class ConfigError(MlgateError):
    """Invalid configuration; raised at start with the offending field named."""


class RegistryError(MlgateError):
    """A registry artifact is missing, incomplete or corrupt (a server-side problem)."""


@dataclass(frozen=True)
class ErrorKind:
    """What an exception means for the answer, the metrics and the logs."""

    status: int
    reason: str
    expected: bool
    message: str  # safe to send: an internal fault's detail is never in it
    detail: str  # for our own logs: the error's message, also for an internal MlgateError
    headers: tuple[tuple[bytes, bytes], ...] = ()


def classify(error: BaseException) -> ErrorKind:
    """The one mapping of any exception to its status, reason and whether it is expected:
    a cancelled request is a client that left; anything not an :class:`MlgateError`, or one
    with a 5xx status other than 503/504, is an internal fault."""
    if isinstance(error, asyncio.CancelledError):
        error = ClientClosed()
    if isinstance(error, MlgateError) and error.expected:
        return ErrorKind(int(error.status), error.reason, True, error.message, error.message, tuple(error.headers))
    detail = error.message if isinstance(error, MlgateError) else INTERNAL_MESSAGE
    return ErrorKind(500, "internal", False, INTERNAL_MESSAGE, detail)
