"""The admin API's one error mapping: every error becomes ``{"error": ...}`` with its status.

mlgate's errors carry their status and headers (:func:`contracts.errors.classify`; a 5xx
body stays generic, the detail goes to the log); a body or parameter that does not
validate is 422 naming the field; Starlette's own (unknown route, wrong method) keep
their status.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from contracts.errors import MlgateError, classify

log = logging.getLogger("mlgate.control")


def _answer(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _mlgate_error(request: Request, exc: Exception) -> JSONResponse:
    kind = classify(exc)
    if not kind.expected:
        log.error("%s %s: %s", request.method, request.url.path, kind.detail, exc_info=exc)
    return _answer(kind.status, kind.message, {k.decode(): v.decode() for k, v in kind.headers})


def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    why = str(first["ctx"]["error"]) if first["type"] == "value_error" and "ctx" in first else first["msg"]
    return _answer(422, f"{where}: {why}")


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return _answer(exc.status_code, str(exc.detail), dict(exc.headers or {}))


def install(app: FastAPI) -> None:
    app.add_exception_handler(MlgateError, _mlgate_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _mlgate_error)  # anything else: 500, generic, logged
