"""Runs the gateway's ASGI app on uvicorn (httptools + uvloop) in a thread of its own.

The socket is bound with ``SO_REUSEPORT`` so every gateway replica on a node listens
on the same port and the kernel spreads connections across them: traffic goes
straight to the replica that computes it, without a proxy hop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Awaitable, Callable

import uvicorn

log = logging.getLogger("mlgate.http")


def bind_socket(host: str, port: int, reuse_port: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class ServerThread:
    """uvicorn serving ``app_factory()``'s app on a pre-bound socket, in its own loop."""

    def __init__(self, app_factory: Callable[[], object], host: str, port: int,
                 on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
        self.sock = bind_socket(host, port)
        self.port = self.sock.getsockname()[1]
        self.host = host
        self._app_factory = app_factory
        self._on_stop = on_stop
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.server: uvicorn.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="mlgate-http", daemon=True)

    def start(self, timeout_s: float = 120.0) -> None:
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise RuntimeError("HTTP server did not start in time")
        if self._error is not None:
            raise RuntimeError(f"HTTP server failed to start: {self._error!r}") from self._error

    def _main(self) -> None:
        import uvloop

        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start() or logged
            self._error = exc
            log.exception("HTTP server stopped with an error")
        finally:
            self._started.set()

    async def _serve(self) -> None:
        try:
            app = self._app_factory()
        except BaseException as exc:
            self._error = exc
            raise
        config = uvicorn.Config(app, loop="none", http="httptools", lifespan="off", access_log=False,
                                log_level="warning", timeout_keep_alive=30, backlog=2048)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # the owner handles signals
        serving = asyncio.ensure_future(self.server.serve(sockets=[self.sock]))
        while not self.server.started and not serving.done():
            await asyncio.sleep(0.01)
        self._started.set()
        await serving
        if self._on_stop is not None:
            await self._on_stop()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self._error is None

    def run_coroutine(self, coro, timeout_s: float = 30.0):
        """Run ``coro`` on the server's loop from another thread and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self._thread.join(timeout_s)
        self.sock.close()
