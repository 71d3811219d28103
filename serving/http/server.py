"""Runs the gateway's HTTP server (httptools on uvloop) in a thread of its own.

The socket is bound with ``SO_REUSEPORT`` so every gateway replica on a node listens
on the same port and the kernel spreads connections across them: traffic goes
straight to the replica that computes it, without a proxy hop.

With ``serving.tls`` the listener speaks TLS only (see :mod:`serving.http.tls`): a
handshake has ``header_timeout_s`` to finish, and a client that speaks plain HTTP to it
is disconnected at its first bytes, with no answer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable

from serving.config import HttpLimitsConfig, TlsConfig
from serving.http.connection import Connections, HttpProtocol
from serving.http.tls import ServerTls

log = logging.getLogger("mlgate.http")
GRACEFUL_TIMEOUT_S = 30.0
IDLE_GRACE_S = 1.0  # at stop, how long an idle keep-alive connection may still send one more request
SSL_SHUTDOWN_TIMEOUT_S = 5.0  # how long a closing TLS connection waits for the client's close_notify


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
    """Serves ``app_factory()``'s app on a pre-bound socket, in its own event loop."""

    def __init__(self, app_factory: Callable[[], object], host: str, port: int, max_body_bytes: int,
                 on_stop: Callable[[], Awaitable[None]] | None = None, limits: HttpLimitsConfig | None = None,
                 on_refused: Callable[[str], None] | None = None, tls: TlsConfig | None = None) -> None:
        """``limits``: see :mod:`serving.http.connection`; ``on_refused(reason)`` counts refusals;
        ``tls`` (when enabled): its files are checked here (ConfigError), before the port is bound."""
        self.tls = ServerTls(tls) if tls is not None and tls.enabled else None
        self.limits = limits or HttpLimitsConfig()
        self.on_refused = on_refused
        self.sock = bind_socket(host, port)
        self.port = self.sock.getsockname()[1]
        self.host = host
        self.max_body_bytes = max_body_bytes
        self._app_factory = app_factory
        self._on_stop = on_stop
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._connections = Connections(self.limits)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="mlgate-http", daemon=True)

    def start(self, timeout_s: float = 300.0) -> None:
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
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = self._app_factory()
        tls = {} if self.tls is None else {
            "ssl": self.tls.context, "ssl_handshake_timeout": self.limits.header_timeout_s,
            "ssl_shutdown_timeout": min(self.limits.header_timeout_s, SSL_SHUTDOWN_TIMEOUT_S)}
        server = await self.loop.create_server(
            lambda: HttpProtocol(app, self.max_body_bytes, self._connections, self.limits, self.on_refused),
            sock=self.sock, backlog=2048, **tls)
        self._started.set()
        tasks = [self.loop.create_task(self._sweep())]
        if self.tls is not None:
            tasks.append(self.loop.create_task(self.tls.run()))
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        server.close()  # no new connections (they reach the other replicas); in-flight requests finish
        # A keep-alive connection closed while its client sends its next request breaks that
        # request (a POST is not retried): each connection's next answer says Connection: close
        # instead, and only connections idle for IDLE_GRACE_S are closed unasked.
        for conn in list(self._connections):
            conn.shutdown(close_idle=False)
        now = time.monotonic()
        give_up, close_idle_at = now + GRACEFUL_TIMEOUT_S, now + IDLE_GRACE_S
        while any(True for _ in self._connections) and time.monotonic() < give_up:
            if time.monotonic() >= close_idle_at:
                for conn in list(self._connections):
                    conn.close_if_idle()
                if not any(c.busy for c in self._connections):
                    break
            await asyncio.sleep(0.01)
        if self._on_stop is not None:
            await self._on_stop()

    async def _sweep(self) -> None:
        """Enforce the connections' time limits a few times per shortest limit."""
        limits = self.limits
        interval_s = min(limits.header_timeout_s, limits.body_timeout_s, limits.keepalive_timeout_s) / 4
        while True:
            await asyncio.sleep(interval_s)
            now = self.loop.time()
            for conn in self._connections:
                conn.sweep(now)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self._error is None

    def responsive(self, timeout_s: float, probe: Callable[[], Awaitable[None]] | None = None) -> bool:
        """Whether the server's event loop runs ``probe()`` (or just answers) within
        ``timeout_s``: a wedged loop, or a probe stuck behind one, is not responsive."""
        if not self.alive or self.loop is None:
            return False

        async def check() -> None:
            if probe is not None:
                await probe()

        future = asyncio.run_coroutine_threadsafe(check(), self.loop)
        try:
            future.result(timeout_s)
        except Exception:  # noqa: BLE001 - late, failed or cancelled: not responsive
            future.cancel()
            return False
        return True

    def reload_tls(self, timeout_s: float = 10.0) -> bool:
        """Look at the TLS files now, as the periodic check does; True when new handshakes
        get a new certificate. False without TLS."""
        if self.tls is None or self.loop is None or not self.alive:
            return False
        return asyncio.run_coroutine_threadsafe(self.tls.check(), self.loop).result(timeout_s)

    def stop(self, timeout_s: float = 60.0) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)
        self.sock.close()
