"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging

import orjson

from contracts.errors import classify

log = logging.getLogger("mlgate.http")

Response = tuple[int, list[tuple[bytes, bytes]], bytes]
JSON = (b"content-type", b"application/json")


def error_response(exc: BaseException, request_id: str | None = None, model: str | None = None) -> Response:
    """The response for ``exc`` (``contracts.errors.classify``); an internal fault is logged
    with its traceback and answered with a generic body."""
    kind = classify(exc)
    if not kind.expected:
        log.error(orjson.dumps({"event": "internal_error", "request_id": request_id, "model": model,
                                "error": repr(exc)}).decode(), exc_info=exc)
    return kind.status, [JSON, *kind.headers], orjson.dumps({"error": kind.message})
