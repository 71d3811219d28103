"""The one exception root of mlgate.

Every error class declares its HTTP status once. Transports (``serving/http``) map
errors to responses in exactly one place; 5xx bodies stay generic there and the
detail goes to the server log.
"""

from __future__ import annotations

from http import HTTPStatus


class MlgateError(Exception):
    """Root of every error mlgate raises on purpose."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def client_error(self) -> bool:
        return 400 <= int(self.status) < 500


class InvalidInput(MlgateError):
    """The client sent something malformed; the message names the field."""

    status = HTTPStatus.BAD_REQUEST


class NotFound(MlgateError):
    """Unknown model, version, route or run."""

    status = HTTPStatus.NOT_FOUND


class PayloadTooLarge(MlgateError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class Conflict(MlgateError):
    """A write that would change something immutable (a published version)."""

    status = HTTPStatus.CONFLICT


class Overloaded(MlgateError):
    """Admission refused because a queue is full; the client should retry later."""

    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotReady(Overloaded):
    """The model exists but is not loaded yet (or is shutting down)."""


class DeadlineExceeded(MlgateError):
    """The request's own deadline passed before an answer was ready."""

    status = HTTPStatus.GATEWAY_TIMEOUT


class ConfigError(MlgateError):
    """Invalid configuration; raised at start with the offending field named."""


class RegistryError(MlgateError):
    """A registry artifact is missing, incomplete or corrupt (a server-side problem)."""
