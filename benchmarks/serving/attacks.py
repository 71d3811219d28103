"""Issue 15's attacks on an HTTP port, as raw sockets send them: the catalog of one-request
attacks (:data:`ATTACKS`, each with the answers a trusted server gives), and the attacks
that hold connections (slowloris, a slow body, a pipelining flood that never reads, more
connections than the cap). Every wait is bounded, so a server without a limit is reported
as such instead of hanging the caller.

Used by ``tests/e2e/test_attacks.py`` (against ``mlgate up``) and by
``python -m benchmarks.serving.limits`` (mlgate's own server against uvicorn and granian).
"""

from __future__ import annotations

import json
import select
import socket
import time

ANSWER_WITHIN_S = 8.0  # "a few seconds": the test's longest limit plus the sweeper's tick and slack


def first_answer(port: int, data: bytes, *, trickle_after: int | None = None, trickle_s: float = 0.5,
                 within_s: float = ANSWER_WITHIN_S) -> tuple[int | None, float, bytes]:
    """Send ``data`` (from byte ``trickle_after`` on, one byte every ``trickle_s`` until the
    server answers or closes) and read until the first response's headers, the end, or
    ``within_s`` more seconds: (status, or None when there was none; seconds until then;
    the raw head)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=within_s + 5) as sock:
        try:
            if trickle_after is None:
                sock.sendall(data)
            else:
                sock.sendall(data[:trickle_after])
                for i in range(trickle_after, len(data)):
                    if select.select([sock], [], [], trickle_s)[0] or time.monotonic() - started > within_s:
                        break  # an answer, the end, or we give up
                    sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading and closed: what it answered first is still readable
        head = b""
        sock.settimeout(max(0.1, within_s - (time.monotonic() - started)))
        try:
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                head += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    elapsed_s = time.monotonic() - started
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None
    return status, elapsed_s, head.split(b"\r\n\r\n", 1)[0]


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def authorized(request: bytes, key: str | None) -> bytes:
    """``request`` with ``Authorization: Bearer key`` after its Host header (unchanged without
    a key, or without a Host header): the attacks reach the decoder, not only access control."""
    if not key:
        return request
    return request.replace(b"\r\nHost: x\r\n", b"\r\nHost: x\r\nAuthorization: Bearer %s\r\n" % key.encode(), 1)


def v2_body(inputs: list[dict], **doc) -> bytes:
    return json.dumps({"inputs": inputs, **doc}).encode()


def one_input(**tensor) -> list[dict]:
    return [{"name": "age", "datatype": "FP64", "shape": [1], "data": [1.0], **tensor}]


ATTACKS = {  # name -> (request bytes, the statuses that are a right answer; None: closed without one)
    "20000 headers (2 MB)": (b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n"
                             + b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 90) for i in range(20000)) + b"\r\n",
                             {431, None}),
    "Content-Length 10^12, headers only": (b"POST /v2/models/demo/infer HTTP/1.1\r\nHost: x\r\n"
                                           b"Content-Length: 1000000000000\r\n\r\n", {413}),
    "Content-Length 10^12 with Expect: 100-continue": (b"POST /v2/models/demo/infer HTTP/1.1\r\nHost: x\r\n"
                                                       b"Content-Length: 1000000000000\r\n"
                                                       b"Expect: 100-continue\r\n\r\n", {413, 417}),
    "shape [2**62] * 20000": (post("/v2/models/demo/infer", v2_body(one_input(shape=[2**62] * 20000))), {400}),
    "shape [0, 2**62]": (post("/v2/models/demo/infer", v2_body(one_input(shape=[0, 2**62], data=[]))), {400}),
    "CR/LF in the id": (post("/v2/models/demo/infer", v2_body(one_input(), id="a\r\nX-Injected: 1\r\n")), {400}),
    "a 100 kB id": (post("/v2/models/demo/infer", v2_body(one_input(), id="x" * 100_000)), {400}),
    "300,000 empty rows": (post("/v1/models/demo:predict", json.dumps({"instances": [{}] * 300_000}).encode()),
                           {413}),
    "a 20 kB URL": (b"GET /v2/models/" + b"m" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", {414}),
    "a malformed request line": (b"GARBAGE\x00\x01 / HTTP/9.9\r\n\r\n", {400, None}),
}
SLOW_BODY = post("/v2/models/demo/infer", b"{" * 200)
SLOW_BODY_FROM = SLOW_BODY.index(b"\r\n\r\n") + 4  # the headers go at once, the body a byte at a time


def slowloris(port: int, count: int, within_s: float = 60.0) -> list[float]:
    """``count`` connections that start a request and never finish its headers: the seconds
    until the server closed each one, for those it closed within ``within_s``."""
    started = time.monotonic()
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(sock)
    closed = []
    for sock in socks:
        sock.settimeout(max(0.01, within_s - (time.monotonic() - started)))
        try:
            while sock.recv(65536):  # a 408, then the end
                pass
            closed.append(time.monotonic() - started)
        except ConnectionResetError:
            closed.append(time.monotonic() - started)
        except TimeoutError:
            pass  # still open
        sock.close()
    return closed


def pipelining_flood_never_read(port: int, requests: int = 5000) -> bool:
    """``requests`` pipelined requests on one connection whose client never reads: whether the
    server still answers (a 200 first) when the client finally reads, having stopped
    reading (backpressure) instead of buffering answers without end."""
    request = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        sent = 0
        give_up = time.monotonic() + 5
        data = request * requests
        while sent < len(data) and time.monotonic() < give_up:
            try:
                sent += sock.send(data[sent:sent + 65536])
            except BlockingIOError:
                select.select([], [sock], [], 0.2)
        sock.setblocking(True)
        try:
            return sock.recv(65536).startswith(b"HTTP/1.1 200")
        except (OSError, TimeoutError):
            return False


def over_the_cap(port: int, cap: int, within_s: float = 10.0) -> tuple[int | None, int]:
    """Open ``cap`` keep-alive connections (each answered once), then one more and ask on it:
    (the extra one's status, None when closed without one or unanswered; how many of the
    ``cap`` were answered)."""
    health = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    held, answered = [], 0
    try:
        for _ in range(cap):
            sock = socket.create_connection(("127.0.0.1", port), timeout=within_s)
            sock.sendall(health)
            held.append(sock)
        for sock in held:
            try:
                answered += sock.recv(65536).startswith(b"HTTP/1.1 200")
            except (OSError, TimeoutError):
                pass
        status, _, _ = first_answer(port, health, within_s=within_s)
        return status, answered
    finally:
        for sock in held:
            sock.close()
