"""The admin API's own listener: uvicorn serving the FastAPI app in a thread of its own, with
the data plane's TLS (:class:`serving.http.tls.ServerTls`).

Ray Serve's HTTP proxy cannot require client certificates and reads its certificate once; this
listener takes the same context as the gateway's: TLS 1.2+, mutual TLS when
``serving.tls.client_ca_file`` is set (a handshake without a certificate that CA signed fails),
and the files checked every ``reload_interval_s`` on the server's own event loop, so a renewed
certificate reaches new connections without a restart while open ones keep theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from serving.config import TlsConfig
from serving.http.server import bind_socket
from serving.http.tls import ServerTls

log = logging.getLogger("mlgate.control")
GRACEFUL_TIMEOUT_S = 10.0
KEEPALIVE_TIMEOUT_S = 5.0
_START_POLL_S = 0.02


class AdminServer:
    """Serves ``app_factory()`` (an ASGI app, built on the server's loop) on ``host:port``.
    The port is bound here (0: any free one, see :attr:`port`) and exclusively: a second
    admin API on the same port fails at once instead of sharing it. ``tls`` (when enabled):
    its files are checked here too (ConfigError), before the port is bound."""

    def __init__(self, app_factory: Callable[[], object], host: str, port: int, tls: TlsConfig | None = None) -> None:
        self.tls = ServerTls(tls) if tls is not None and tls.enabled else None
        self.sock = bind_socket(host, port, reuse_port=False)
        self.host, self.port = host, self.sock.getsockname()[1]
        self._app_factory = app_factory
        self._server = None  # the uvicorn.Server, made on the loop
        self._error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="mlgate-admin-http", daemon=True)

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    def start(self, timeout_s: float = 60.0) -> None:
        """Return once the app's lifespan started and the socket accepts; RuntimeError when it
        failed or took longer than ``timeout_s``."""
        self._thread.start()
        for _ in range(int(timeout_s / _START_POLL_S)):
            if self._error is not None or not self._thread.is_alive():
                break
            if self._server is not None and self._server.started:
                return
            time.sleep(_START_POLL_S)
        self.stop(timeout_s=5.0)
        raise RuntimeError(f"admin API server did not start: {self._error!r}") from self._error

    def _main(self) -> None:
        import uvloop

        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - uvicorn exits a failed lifespan with SystemExit
            self._error = exc
            log.exception("admin API server stopped with an error")
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        import uvicorn

        tls = {} if self.tls is None else {"ssl_context_factory": lambda _config, _default: self.tls.context}
        config = uvicorn.Config(self._app_factory(), loop="none", lifespan="on", access_log=False,
                                log_level="warning", timeout_keep_alive=KEEPALIVE_TIMEOUT_S,
                                timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S, server_header=False, **tls)
        self._server = uvicorn.Server(config)
        reload = None if self.tls is None else asyncio.get_running_loop().create_task(self.tls.run())
        try:
            await self._server.serve(sockets=[self.sock])
        finally:
            if reload is not None:
                reload.cancel()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self._error is None

    def responsive(self, timeout_s: float) -> bool:
        """Whether the server's event loop runs a no-op within ``timeout_s``."""
        if not self.alive or self.loop is None:
            return False

        async def noop() -> None:
            return None

        future = asyncio.run_coroutine_threadsafe(noop(), self.loop)
        try:
            future.result(timeout_s)
        except Exception:  # noqa: BLE001 - late, failed or cancelled: not responsive
            future.cancel()
            return False
        return True

    def reload_tls(self, timeout_s: float = 10.0) -> bool:
        """Look at the TLS files now, as the periodic check does; True when new handshakes get
        a new certificate. False without TLS."""
        if self.tls is None or self.loop is None or not self.alive:
            return False
        return asyncio.run_coroutine_threadsafe(self.tls.check(), self.loop).result(timeout_s)

    def stop(self, timeout_s: float = GRACEFUL_TIMEOUT_S + 5.0) -> None:
        """Stop accepting, let requests in flight finish, run the app's lifespan shutdown."""
        if self._server is not None and self.loop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it stopped by itself
                self.loop.call_soon_threadsafe(setattr, self._server, "should_exit", True)
        self._thread.join(timeout_s)
        self.sock.close()
