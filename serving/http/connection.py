"""HTTP/1.1 on httptools, straight into :meth:`GatewayApp.handle` (no ASGI layer).

Keep-alive, pipelining (answers in request order), chunked request bodies (decoded by
httptools), ``Expect: 100-continue``, a body-size limit enforced while reading (413,
then the connection closes), and 400 for unparseable requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from http import HTTPStatus

import httptools

from contracts.errors import PayloadTooLarge
from serving.http.errors import error_response

log = logging.getLogger("mlgate.http")

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HttpProtocol(asyncio.Protocol):
    def __init__(self, app, max_body_bytes: int, connections: set) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.connections = connections
        self.loop = asyncio.get_event_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._too_large = False
        self._pending: deque[tuple[asyncio.Task, bool, bool]] = deque()  # (task, keep-alive, HEAD), in order
        self.closing = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.connections.discard(self)
        for task, _, _ in self._pending:
            task.cancel()
        self._pending.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, b'{"error":"protocol upgrade not supported"}')
        except httptools.HttpParserError as exc:
            self._reject(400, b'{"error":"malformed HTTP request: %s"}' % str(exc).encode()[:200].replace(b'"', b"'"))

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_bytes = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        declared = self._headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            self._too_large = True
        elif self._headers.get(b"expect", b"").lower() == b"100-continue":
            self.transport.write(_CONTINUE)

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
        method = self.parser.get_method().decode()
        path = httptools.parse_url(self._url).path.decode("utf-8", "replace")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        error = PayloadTooLarge(f"body: over the limit of {self.max_body_bytes} bytes") if self._too_large else None
        keep_alive = self.parser.should_keep_alive() and not self._too_large
        task = self.loop.create_task(self.app.handle(method, path, self._headers, body, error))
        self._pending.append((task, keep_alive, method == "HEAD"))
        task.add_done_callback(self._flush)

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

    def _reject(self, status: int, body: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._write(status, [(b"content-type", b"application/json")], body, keep_alive=False)
            self.transport.close()

    def shutdown(self) -> None:
        """Finish what is in flight, then close; idle connections close at once."""
        self.closing = True
        if not self._pending and self.transport is not None:
            self.transport.close()

    @property
    def busy(self) -> bool:
        return bool(self._pending)
