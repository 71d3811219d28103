"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging
import math

import orjson

from registry.errors import MlgateError, Overloaded

log = logging.getLogger("mlgate.http")

Response = tuple[int, list[tuple[bytes, bytes]], bytes]
JSON = (b"content-type", b"application/json")


def error_response(exc: BaseException, request_id: str | None = None, model: str | None = None) -> Response:
    if isinstance(exc, MlgateError) and (exc.client_error or int(exc.status) in (503, 504)):
        headers = [JSON]
        if isinstance(exc, Overloaded):
            headers.append((b"retry-after", str(max(1, math.ceil(exc.retry_after_s))).encode()))
        return int(exc.status), headers, orjson.dumps({"error": exc.message})
    log.error(
        orjson.dumps({"event": "internal_error", "request_id": request_id, "model": model,
                      "error": repr(exc)}).decode(),
        exc_info=exc,
    )
    return 500, [JSON], b'{"error":"internal server error"}'
