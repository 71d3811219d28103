"""The gateway process without Ray: registry -> data plane -> app -> its own HTTP/1.1 server,
on an ephemeral loopback port. Keep-alive, pipelining, chunked bodies, 100-continue,
size limits and malformed requests, spoken byte by byte."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from serving.config import ServingConfig
from tests.reference import ROW

MAX_BODY = 16 * 1024
PREDICT = json.dumps({"instances": [ROW]}).encode()


@pytest.fixture(scope="module")
def gateway(demo_registry):
    from serving.gateway import Gateway

    cfg = ServingConfig(host="127.0.0.1", port=0, max_body_bytes=MAX_BODY, unnice=False,
                        metrics={"enabled": False}, prediction_log={"enabled": False})
    gw = Gateway(demo_registry, cfg)
    yield gw
    gw.stop()


def exchange(port: int, raw: bytes, responses: int = 1, timeout_s: float = 30.0) -> list[tuple[int, dict, bytes]]:
    """Send raw bytes; read ``responses`` HTTP responses (or until the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(raw)
        reader = sock.makefile("rb")
        out = []
        for _ in range(responses):
            status_line = reader.readline()
            if not status_line:
                break
            status = int(status_line.split()[1])
            headers = {}
            while (line := reader.readline().rstrip(b"\r\n")):
                name, _, value = line.partition(b":")
                headers[name.decode().lower()] = value.strip().decode()
            if status == 100:
                continue
            body = reader.read(int(headers.get("content-length", 0)))
            out.append((status, headers, body))
        return out


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def test_keep_alive_serves_many_requests_on_one_connection(gateway):
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        for _ in range(3):
            conn.request("POST", "/v1/models/demo:predict", PREDICT, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["predictions"][0]["label"] in ("stay", "churn")
        conn.request("GET", "/v2/health/ready")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(gateway):
    raw = (post("/v1/models/demo:predict", PREDICT) + b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
           + post("/v1/models/nope:predict", PREDICT))
    (a, b, c) = exchange(gateway.port, raw, responses=3)
    assert a[0] == 200 and "predictions" in json.loads(a[2])
    assert b[0] == 200 and json.loads(b[2]) == {"live": True}
    assert c[0] == 404 and "nope" in json.loads(c[2])["error"]


def test_chunked_request_body(gateway):
    chunks = [PREDICT[:10], PREDICT[10:50], PREDICT[50:]]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    raw = b"POST /v1/models/demo:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    ((status, _, payload),) = exchange(gateway.port, raw)
    assert status == 200, payload


def test_expect_100_continue(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        head = post("/v1/models/demo:predict", b"", "Expect: 100-continue\r\n").replace(
            b"Content-Length: 0", b"Content-Length: %d" % len(PREDICT))
        sock.sendall(head)
        assert sock.recv(64).startswith(b"HTTP/1.1 100")
        sock.sendall(PREDICT)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_declared_body_over_the_limit_is_413_and_closes(gateway):
    raw = f"POST /v1/models/demo:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode()
    responses = exchange(gateway.port, raw + b"x" * (MAX_BODY + 1), responses=2)
    assert len(responses) == 1
    status, headers, body = responses[0]
    assert status == 413 and "error" in json.loads(body)
    assert headers.get("connection") == "close"


def test_streamed_body_over_the_limit_is_413(gateway):
    chunk = b"x" * 4096
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // 4096 + 2)) + b"0\r\n\r\n"
    raw = b"POST /v2/models/demo/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    ((status, _, payload),) = exchange(gateway.port, raw)
    assert status == 413, payload


@pytest.mark.parametrize("raw", [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"POST /v1/models/demo:predict HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
    b"POST /v1/models/demo:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_malformed_http_is_400_never_a_crash(gateway, raw):
    responses = exchange(gateway.port, raw)
    assert responses and responses[0][0] == 400, responses
    assert gateway.healthy()
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    conn.request("GET", "/v2/health/ready")
    assert conn.getresponse().status == 200
    conn.close()


def test_head_has_headers_and_no_body(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(b"HEAD /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 200")
        while reader.readline().rstrip(b"\r\n"):
            pass
        assert reader.readline().startswith(b"HTTP/1.1 200")  # the next response follows at once: no body
