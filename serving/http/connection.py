"""HTTP/1.1 on httptools, straight into :meth:`GatewayApp.handle` (no ASGI layer).

Keep-alive, pipelining (answers in request order), chunked request bodies (decoded by
httptools), ``Expect: 100-continue``, and the limits of ``serving.http``
(:class:`serving.config.HttpLimitsConfig`), each answered as a reverse proxy would:

- request target over ``max_url_bytes``: 414; more than ``max_header_count`` headers or
  ``max_header_bytes`` of them: 431; an unparseable request: 400 (all then close);
- a body declared over the body limit: 413 as soon as the headers are read (never a
  ``100 Continue``), and one that grows past it while read: 413; another ``Expect``: 417;
- headers not complete ``header_timeout_s`` after the request's first byte (or the
  connection's start), or a body not complete ``body_timeout_s`` after its headers: 408;
  an idle keep-alive connection closes after ``keepalive_timeout_s``;
- over ``max_connections`` open connections, or over ``max_connections_per_client`` from one
  client address: 503 with ``Retry-After``, then close;
- ``max_pipelined`` requests in flight, or a client that does not read its answers (the
  transport's write buffer full): the server stops reading that connection until they drain.

Refusals are counted through ``on_refused(reason)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable
from http import HTTPStatus

import httptools

from contracts.errors import (
    ExpectationFailed,
    HeadersTooLarge,
    MalformedRequest,
    MlgateError,
    PayloadTooLarge,
    RequestTimeout,
    TooManyClientConnections,
    TooManyConnections,
    UriTooLong,
)
from serving.config import HttpLimitsConfig
from serving.http.errors import error_response

log = logging.getLogger("mlgate.http")

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LINGER_S = 2.0  # how long a refused connection drains what its client still sends


class _Refused(Exception):
    """Raised from a parser callback after the refusal was written: stops the parser."""


class Connections:
    """One server's open connections, and how many each client address holds."""

    def __init__(self, limits: HttpLimitsConfig) -> None:
        self.limits = limits
        self._open: set[HttpProtocol] = set()
        self._per_client: Counter[str] = Counter()

    def admit(self, conn: HttpProtocol, client: str | None) -> MlgateError | None:
        """Count ``conn`` in, or say which cap it is over (it is then not counted)."""
        if len(self._open) >= self.limits.max_connections:
            return TooManyConnections("too many connections to this replica; retry later")
        per_client = self.limits.max_connections_per_client
        if per_client and client is not None:
            if self._per_client[client] >= per_client:
                return TooManyClientConnections(f"too many connections from {client}; retry later")
            self._per_client[client] += 1
        self._open.add(conn)
        return None

    def release(self, conn: HttpProtocol, client: str | None) -> None:
        if conn not in self._open:
            return
        self._open.discard(conn)
        if self.limits.max_connections_per_client and client is not None:
            self._per_client[client] -= 1
            if not self._per_client[client]:
                del self._per_client[client]

    def __iter__(self):
        return iter(list(self._open))

    def __len__(self) -> int:
        return len(self._open)


class HttpProtocol(asyncio.Protocol):
    def __init__(self, app, max_body_bytes: int, connections: Connections, limits: HttpLimitsConfig | None = None,
                 on_refused: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.connections = connections
        self.limits = limits or HttpLimitsConfig()
        self.on_refused = on_refused
        self.loop = asyncio.get_event_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: str | None = None  # the peer's address
        self._max_pipelined = self.limits.max_pipelined
        self._url: list[bytes] = []
        self._url_bytes = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_count = 0
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._too_large = False
        self._pending: deque[tuple[asyncio.Task, bool, bool]] = deque()  # (task, keep-alive, HEAD), in order
        self._timer: asyncio.TimerHandle | None = None  # only the linger of a refused connection
        # the phase whose time limit runs, and since when (loop time): checked by sweep(), so a
        # request costs two float writes instead of arming and cancelling timers
        self._phase: str | None = None
        self._phase_since = 0.0
        self._reading = True
        self._writable = True
        self._refused = False  # answered with a refusal: the rest of the stream is discarded
        self.closing = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if isinstance(peer, tuple) else None
        refused = self.connections.admit(self, self.client)
        if refused is not None:
            self._refuse(refused)
            return
        self._enter("header")

    def connection_lost(self, exc) -> None:
        self.connections.release(self, self.client)
        self._phase = None
        self._disarm()
        for task, _, _ in self._pending:
            task.cancel()
        self._pending.clear()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(MalformedRequest("protocol upgrade not supported"))
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refused):  # a limit already answered; the parser stops here
                return
            self._refuse(MalformedRequest(f"malformed HTTP request: {str(exc)[:200]}"))

    def pause_writing(self) -> None:  # the client does not read its answers: stop taking requests
        self._writable = False
        self._update_reading()

    def resume_writing(self) -> None:
        self._writable = True
        self._update_reading()

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url, self._url_bytes = [], 0
        self._headers, self._header_count, self._header_bytes = {}, 0, 0
        self._body = []
        self._body_bytes = 0
        self._too_large = False
        self._phase, self._phase_since = "header", self.loop.time()  # _enter, inlined: once per request

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.max_url_bytes:
            self._refuse(UriTooLong(f"request target: longer than {self.limits.max_url_bytes} bytes"))
            raise _Refused
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value)
        if self._header_count > self.limits.max_header_count:
            self._refuse(HeadersTooLarge(f"headers: more than {self.limits.max_header_count}"))
            raise _Refused
        if self._header_bytes > self.limits.max_header_bytes:
            self._refuse(HeadersTooLarge(f"headers: more than {self.limits.max_header_bytes} bytes"))
            raise _Refused
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        declared = self._headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            self._refuse(PayloadTooLarge(f"body: {declared[:20].decode()} bytes is over the limit of "
                                         f"{self.max_body_bytes}"))
            raise _Refused
        expect = self._headers.get(b"expect")
        if expect is not None:
            if expect.lower() != b"100-continue":
                self._refuse(ExpectationFailed("Expect: only 100-continue is supported"))
                raise _Refused
            self.transport.write(_CONTINUE)
        self._phase, self._phase_since = "body", self.loop.time()

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self.max_body_bytes:
            self._too_large = True
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._phase = None  # no time limit while the app computes the answer
        method = self.parser.get_method().decode()
        url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        path = httptools.parse_url(url).path.decode("utf-8", "replace")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        error = PayloadTooLarge(f"body: over the limit of {self.max_body_bytes} bytes") if self._too_large else None
        keep_alive = self.parser.should_keep_alive() and not self._too_large
        task = self.loop.create_task(self.app.handle(method, path, self._headers, body, error))
        self._pending.append((task, keep_alive, method == "HEAD"))
        task.add_done_callback(self._flush)
        if len(self._pending) >= self._max_pipelined:  # reading can only need pausing now
            self._update_reading()

    # -- time limits and flow control ----------------------------------------------------
    def _enter(self, phase: str) -> None:
        self._phase, self._phase_since = phase, self.loop.time()

    def sweep(self, now: float) -> None:
        """Enforce the time limit of the current phase (called by the server's sweeper)."""
        phase = self._phase
        if phase is None:
            return
        limit_s = self.limits.header_timeout_s if phase == "header" else \
            self.limits.body_timeout_s if phase == "body" else self.limits.keepalive_timeout_s
        if now - self._phase_since >= limit_s:
            self._phase = None
            self._timed_out(phase)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, phase: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if phase == "idle":
            self.transport.close()
            return
        if self._pending:  # answers still owed: close once they are written
            self.closing = True
            return
        self._refuse(RequestTimeout(phase))

    def _update_reading(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        want = self._writable and len(self._pending) < self._max_pipelined
        if want != self._reading:
            self._reading = want
            (self.transport.resume_reading if want else self.transport.pause_reading)()

    # -- responses ---------------------------------------------------------------------------
    def _flush(self, _task=None) -> None:
        while self._pending and self._pending[0][0].done():
            task, keep_alive, head = self._pending.popleft()
            if task.cancelled() or self.transport is None or self.transport.is_closing():
                continue
            exc = task.exception()
            if exc is not None:  # the app maps its errors itself: this one escaped it
                status, headers, body = error_response(exc)
            else:
                status, headers, body = task.result()
            self._write(status, headers, b"" if head else body, keep_alive and not self.closing)
            if not keep_alive or (self.closing and not self._pending):
                self.transport.close()
                return
        if not self._reading:  # answers drained: reading may resume
            self._update_reading()
        if not self._pending and self._phase is None:
            self._phase, self._phase_since = "idle", self.loop.time()

    def _write(self, status: int, headers, body: bytes, keep_alive: bool) -> None:
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
        for name, value in headers:
            lines.append(b"%s: %s\r\n" % (name, value))
        lines.append(b"content-length: %d\r\n" % len(body))
        if not keep_alive:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        lines.append(body)
        self.transport.write(b"".join(lines))

    def _refuse(self, error: MlgateError) -> None:
        """Answer ``status`` and close (answers owed before it are dropped with the connection).
        The close lingers: our side is shut for writing and what the client still sends is
        read and discarded for up to :data:`LINGER_S`, so its unread request bytes do not
        turn the close into a reset that destroys the answer before the client reads it."""
        self._phase = None
        if self.on_refused is not None:
            self.on_refused(error.reason)
        if self.transport is None or self.transport.is_closing() or self._refused:
            return
        self._refused = True
        self._write(*error_response(error), keep_alive=False)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self.loop.call_later(LINGER_S, self.transport.close)

    def shutdown(self, close_idle: bool = True) -> None:
        """Finish what is in flight, then close; an idle connection closes at once, or with
        ``close_idle=False`` after answering its next request (``Connection: close``) or at
        :meth:`close_if_idle`."""
        self.closing = True
        if close_idle:
            self.close_if_idle()

    def close_if_idle(self) -> None:
        if not self._pending and self.transport is not None:
            self.transport.close()

    @property
    def busy(self) -> bool:
        return bool(self._pending)
