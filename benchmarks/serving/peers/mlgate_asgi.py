"""mlgate's gateway behind a well-kept HTTP server instead of its own (issue 15's choice):
the same ``serving.gateway.Gateway`` (registry, data plane, observers, ``GatewayApp``), no
Ray, served over ASGI by uvicorn (its httptools or h11 protocol) or by granian. Compared
with ``mlgate-noray`` (the same gateway on mlgate's own server) in the serving benchmark
for speed, and by ``python -m benchmarks.serving.limits`` for what each does with hostile
input.

Each server gets the nearest of its own settings to mlgate's HTTP limits
(``serving.http``); what it has no setting for it does not do:

- uvicorn: ``limit_concurrency`` = ``max_connections`` (503 beyond), ``timeout_keep_alive``,
  ``h11_max_incomplete_event_size`` = ``max_header_bytes`` (h11 only);
- granian: ``--http1-header-read-timeout`` = ``header_timeout_s``, ``--http1-buffer-size``
  = ``max_header_bytes``, ``--backpressure`` = ``max_connections``.

The body limit is the bridge's, as a careful ASGI user would write it: a declared
``Content-Length`` over it gets the 413 before a byte is read (so no ``100 Continue``),
and a body that grows past it stops being read.

    MLGATE_REGISTRY_ROOT=REG python benchmarks/serving/peers/mlgate_asgi.py --server uvicorn-httptools --port 8300

Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from pathlib import Path

from contracts.errors import ConfigError, PayloadTooLarge
from serving.http.errors import error_response
from serving.http.server import bind_socket

UVICORN = {"uvicorn-httptools": "httptools", "uvicorn-h11": "h11"}
SERVERS = (*UVICORN, "granian")


class AsgiBridge:
    """Takes :class:`serving.http.server.ServerThread`'s place in ``Gateway`` and serves
    its app over ASGI; the app is built at the ASGI lifespan start, on the server's loop
    (where the batchers must live). Started by the ASGI server, not by ``start()``."""

    def __init__(self, app_factory, host: str, port: int, max_body_bytes: int, on_stop=None, limits=None,
                 on_refused=None, tls=None) -> None:
        if tls is not None and tls.enabled:  # the benchmark compares plain HTTP servers
            raise ConfigError(f"serving.tls: {type(self).__name__} serves plain HTTP only; unset serving.tls "
                              "or use mlgate's own server")
        self._app_factory, self._on_stop = app_factory, on_stop
        self.host, self.port, self.max_body_bytes, self.limits = host, port, max_body_bytes, limits
        self.app = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def responsive(self, timeout_s: float, probe=None) -> bool:
        return self.app is not None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.loop = asyncio.get_running_loop()
                self.app = self._app_factory()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._on_stop is not None:
                    await self._on_stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        headers = {name.lower(): value for name, value in scope["headers"]}
        body, error = await self._body(headers, receive)
        if error is not None and body is None:
            status, out_headers, out = error_response(error)
        else:
            status, out_headers, out = await self.app.handle(scope["method"], scope["path"], headers, body, error)
        await send({"type": "http.response.start", "status": status, "headers": list(out_headers)})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else out})

    async def _body(self, headers: dict[bytes, bytes], receive) -> tuple[bytes | None, Exception | None]:
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return None, PayloadTooLarge(f"body: {declared[:20].decode()} bytes is over the limit of "
                                         f"{self.max_body_bytes}")
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None, PayloadTooLarge(f"body: over the limit of {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None


class UvicornBridge(AsgiBridge):
    """The bridge served by uvicorn in a thread of its own (as mlgate's own server runs)."""

    protocol = "httptools"

    def start(self) -> None:
        import uvicorn

        limits = self.limits
        config = uvicorn.Config(self, http=self.protocol, loop="uvloop", lifespan="on", access_log=False,
                                server_header=False, date_header=False, backlog=2048,
                                limit_concurrency=limits.max_connections,
                                timeout_keep_alive=int(limits.keepalive_timeout_s),
                                h11_max_incomplete_event_size=limits.max_header_bytes)
        self._server = uvicorn.Server(config)
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._main, args=(sock,), name="uvicorn", daemon=True)
        self._thread.start()

    def _main(self, sock) -> None:
        import uvloop

        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self._server.serve(sockets=[sock]))

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(60)


def uvicorn_bridge(protocol: str) -> type[UvicornBridge]:
    return type(f"Uvicorn_{protocol}", (UvicornBridge,), {"protocol": protocol})


def granian_app() -> AsgiBridge:
    """Granian's factory (``--factory``): the gateway, configured from ``MLGATE_*``, as an ASGI app."""
    from mlgate.config import load_config
    from serving.gateway import Gateway

    cfg = load_config()
    return Gateway(cfg.registry_root, cfg.serving, server_class=AsgiBridge).server


def granian_argv(port: int) -> list[str]:
    from mlgate.config import load_config

    limits = load_config().serving.http
    return [str(Path(sys.executable).with_name("granian")), "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "uvloop", "--http", "1",
            "--no-ws", "--log-level", "warning", "--backpressure", str(limits.max_connections),
            "--http1-header-read-timeout", str(int(limits.header_timeout_s * 1000)),
            "--http1-buffer-size", str(limits.max_header_bytes),
            "benchmarks.serving.peers.mlgate_asgi:granian_app"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=SERVERS, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.server == "granian":  # granian runs its own worker process; it prints nothing when ready
        os.execv(granian_argv(args.port)[0], granian_argv(args.port))
    from benchmarks.serving.peers.mlgate_noray import serve

    serve(args.port, f"mlgate gateway on {args.server}", server_class=uvicorn_bridge(UVICORN[args.server]))


if __name__ == "__main__":
    main()
