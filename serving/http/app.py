"""The gateway's HTTP app: HTTP <-> protocol-neutral types, then the data plane.

:meth:`GatewayApp.handle` takes a parsed request and returns (status, headers, body);
the gateway's own server (``serving.http.server``) calls it directly, and an ASGI
adapter serves the same app under any ASGI server. Routes: the Open Inference
Protocol v2 REST API and the plain JSON route ``POST /v1/models/{m}:predict``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import orjson

from access.authenticator import Authenticator
from access.identity import ADMIN, METRICS_READ, OPEN, Identity
from contracts.clock import Clock, wall_clock_s
from contracts.errors import InvalidInput, MethodNotAllowed, MlgateError, NotFound, PayloadTooLarge
from serving import protocol
from serving.dataplane import DataPlane
from serving.http.errors import JSON, Response, error_response
from serving.http.routes import Route, match
from serving.protocol import plain
from serving.protocol.model_config import model_config
from serving.types import InferenceRequest

TIMEOUT_HEADER = b"x-mlgate-timeout-ms"
HEADER_LENGTH = b"inference-header-content-length"
_GET_KINDS = {"server_meta", "live", "ready", "model_meta", "model_ready", "model_config", "metrics"}
_POST_KINDS = {"infer", "predict", "feedback", "repo_index", "repo_load", "repo_unload"}
_ADMIN_KINDS = {"repo_index", "repo_load", "repo_unload"}  # Triton's repository extension: admin only
_INFER_KINDS = {"infer": "v2", "predict": "plain"}
_INFER_SCOPED = {"infer", "predict", "model_meta", "model_config"}  # routes that need infer:MODEL
REQUEST_ID_HEADER = b"x-request-id"
MODEL_VERSION_HEADER = b"x-model-version"  # the version that answered
OFFLOAD_DECODE_BYTES = 256 * 1024  # bodies larger than this are decoded on a worker thread
AUTHORIZATION = b"authorization"


def new_request_id() -> str:
    """A request id no one can guess from earlier ones: 128 random bits (the OS's CSPRNG)."""
    return os.urandom(16).hex()


class GatewayApp:
    def __init__(self, dataplane: DataPlane, max_body_bytes: int, extra_get: dict | None = None,
                 extra_post: dict | None = None, clock: Clock = wall_clock_s, auth: Authenticator | None = None,
                 on_refused: Callable[[str], None] | None = None,
                 on_admin_refused: Callable[[Route, MlgateError], Awaitable[None]] | None = None) -> None:
        """``clock``: the wall time a request arrived at (its prediction-log ``ts``);
        ``auth``: who may do what (None: anyone may do anything, ``serving.auth.enabled: false``);
        ``on_refused(reason)``: counts what access control refused (it is not logged per request);
        ``on_admin_refused(route, error)``: hears every refused attempt at an admin route (the audit)."""
        self.dp = dataplane
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.extra_get: dict[str, Callable[[Route, dict], Awaitable[Response]]] = extra_get or {}
        self.extra_post: dict[str, Callable[[Route, dict, bytes, Identity], Awaitable[Response]]] = extra_post or {}
        self.new_id = new_request_id
        self.auth = auth
        self.on_refused = on_refused
        self.on_admin_refused = on_admin_refused

    async def __call__(self, scope, receive, send) -> None:
        """ASGI adapter (tests, other ASGI servers); the gateway's own server calls :meth:`handle`."""
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        body, body_error = b"", None
        try:
            body = await _read_body(receive, headers, self.max_body_bytes)
        except MlgateError as exc:
            body_error = exc
        status, out_headers, payload = await self.handle(scope["method"], scope["path"], headers, body, body_error)
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": payload})

    async def handle(self, method: str, path: str, headers: dict[bytes, bytes], body: bytes,
                     body_error: Exception | None = None) -> Response:
        """One HTTP request -> (status, headers, body). ``body_error``: the body was refused (413)."""
        route = match(path)
        if route is not None and route.kind in _INFER_KINDS and method == "POST":
            try:
                identity = self._authorize(route, headers)
            except MlgateError as exc:
                return error_response(exc, model=route.model)
            return await self._inference(route, headers, body, body_error, identity)
        try:
            if route is None:
                raise NotFound(f"no route {path}")
            if route.kind in _POST_KINDS:
                if method != "POST":
                    raise MethodNotAllowed("POST")
                try:
                    identity = self._authorize(route, headers)
                except MlgateError as exc:
                    if route.kind in _ADMIN_KINDS and self.on_admin_refused is not None:
                        await self.on_admin_refused(route, exc)
                    raise
                if body_error is not None:
                    raise body_error
                return await self._post(route, headers, body, identity)
            if method not in ("GET", "HEAD"):
                raise MethodNotAllowed("GET")
            self._authorize(route, headers)
            return await self._get(route, headers)
        except Exception as exc:  # noqa: BLE001 - mapped in one place
            return error_response(exc, model=route.model if route else None)

    def _authorize(self, route: Route, headers: dict) -> Identity:
        """The identity behind the request, holding the scope its route needs (open routes:
        health, readiness and the server's metadata need none)."""
        if self.auth is None:
            return OPEN
        kind = route.kind
        if kind in _INFER_SCOPED:
            scope = f"infer:{route.model}"
        elif kind == "feedback":
            scope = f"feedback:{route.model}"
        elif kind == "metrics":
            scope = METRICS_READ
        elif kind in _ADMIN_KINDS:
            scope = ADMIN
        else:  # health, readiness, the server's metadata: open
            return OPEN
        try:
            return self.auth.authorize(headers.get(AUTHORIZATION), scope)
        except MlgateError as exc:
            if self.on_refused is not None:
                self.on_refused(exc.reason)
            raise

    async def _get(self, route: Route, headers: dict) -> Response:
        kind = route.kind
        if kind == "live":
            return 200, [JSON], b'{"live":true}'
        if kind == "ready":
            ok = self.dp.ready
            return (200 if ok else 503), [JSON], orjson.dumps({"ready": ok})
        if kind == "server_meta":
            return 200, [JSON], orjson.dumps(protocol.server_metadata())
        if kind == "model_ready":
            self.dp.model(route.model, route.version)
            return 200, [JSON], orjson.dumps({"name": route.model, "ready": self.dp.ready})
        if kind == "model_meta":
            return 200, [JSON], orjson.dumps(self._model_meta(route))
        if kind == "model_config":  # Triton's model configuration (the gRPC ModelConfig's document)
            return 200, [JSON], orjson.dumps(model_config(self.dp.model(route.model, route.version)))
        if kind in self.extra_get:
            return await self.extra_get[kind](route, headers)
        raise NotFound(f"no route for {kind}")

    def _model_meta(self, route: Route) -> dict:
        model = self.dp.model(route.model, route.version)
        versions = sorted(self.dp.models[route.model])
        schema = model.schema
        return protocol.model_metadata(
            name=model.name,
            versions=versions if route.version is None else [model.version],
            platform="pytorch_torchscript",
            inputs=schema.inputs,
            outputs=schema.outputs,
        )

    async def _inference(self, route: Route, headers: dict, body: bytes, body_error: Exception | None,
                         identity: Identity) -> Response:
        """Both inference routes: HTTP in, the data plane's use case, HTTP out."""
        call = self.dp.arrive(self.clock())
        try:
            if body_error is not None:
                raise body_error
            header_timeout_s = _header_timeout_s(headers)
            # a full queue, or a header deadline the queue already rules out, costs no decoding
            call.admit(route.model, route.version, header_timeout_s)
            decode = self._decode_v2 if route.kind == "infer" else self._decode_plain
            if len(body) > OFFLOAD_DECODE_BYTES:  # a big body must not stall the loop's small requests
                request = await asyncio.to_thread(decode, route, headers, body)
            else:
                request = decode(route, headers, body)
            request.identity = identity.id if identity is not OPEN else None
            if route.version is None and route.model in self.dp.routers:  # a traffic policy routes it
                request.sticky = self.dp.routers[route.model].sticky_value(headers, request.parameters)
            if header_timeout_s is not None:  # the smallest deadline wins
                request.timeout_s = header_timeout_s if request.timeout_s is None else \
                    min(request.timeout_s, header_timeout_s)
        except Exception as exc:  # noqa: BLE001 - mapped in one place
            refused = InferenceRequest(route.model, route.version, [], route=_INFER_KINDS[route.kind],
                                       request_id=self.new_id(), identity=identity.id if identity is not OPEN else None)
            call.refuse(refused, exc)
            return _with_id(error_response(exc, refused.request_id, route.model), refused.request_id)
        try:
            response = await call.run(request)
        except Exception as exc:  # noqa: BLE001 - mapped in one place
            return _with_id(error_response(exc, request.request_id, route.model), request.request_id)
        answered = [(REQUEST_ID_HEADER, request.request_id.encode()),
                    (MODEL_VERSION_HEADER, str(response.model_version).encode())]
        if route.kind == "predict":
            outputs = {t.name: t.data for t in response.outputs}
            body = plain.encode_predictions(outputs, response.schema, response.model_name, response.model_version,
                                            request.id)
            return 200, [JSON, *answered], body
        payload, json_length = protocol.encode_infer_response(
            response, requested=request.outputs, binary_default=request.binary_output_default
        )
        if json_length is None:
            return 200, [JSON, *answered], payload
        return 200, [(b"content-type", b"application/octet-stream"), (HEADER_LENGTH, str(json_length).encode()),
                     *answered], payload

    def _decode_v2(self, route: Route, headers: dict, body: bytes) -> InferenceRequest:
        request = protocol.decode_infer_request(body, model=route.model, version=route.version,
                                                header_length=_header_length(headers))
        request.request_id = request.id or self.new_id()
        return request

    def _decode_plain(self, route: Route, headers: dict, body: bytes) -> InferenceRequest:
        model = self.dp.model(route.model, route.version)
        inputs, req_id, params = plain.decode_instances(body, model.schema, model.row_limit)
        request = InferenceRequest(model.name, route.version, inputs, id=req_id, parameters=params,
                                   route="plain", request_id=req_id or self.new_id())
        request.timeout_s = _param_timeout_s(params)
        return request

    async def _post(self, route: Route, headers: dict, body: bytes, identity: Identity) -> Response:
        if route.kind in self.extra_post:
            return await self.extra_post[route.kind](route, headers, body, identity)
        raise NotFound(f"no route for {route.kind}")

def _with_id(response: Response, request_id: str) -> Response:
    status, headers, body = response
    return status, [*headers, (REQUEST_ID_HEADER, request_id.encode())], body


def _header_length(headers: dict) -> int | None:
    raw = headers.get(HEADER_LENGTH)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput("Inference-Header-Content-Length: not an integer") from None


def _param_timeout_s(params: dict) -> float | None:
    value = params.get("timeout_s")
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise InvalidInput("parameters.timeout_s: expected a positive number of seconds")
    return float(value)


def _header_timeout_s(headers: dict) -> float | None:
    raw = headers.get(TIMEOUT_HEADER)
    if raw is None:
        return None
    try:
        value_s = float(raw) / 1000.0
    except ValueError:
        raise InvalidInput("X-Mlgate-Timeout-Ms: not a number") from None
    if not value_s > 0:
        raise InvalidInput("X-Mlgate-Timeout-Ms: must be positive")
    return value_s


async def _read_body(receive, headers: dict, limit: int) -> bytes:
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body: {int(declared)} bytes is over the limit of {limit}")
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("body: client disconnected before sending it")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body: over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
