"""The gateway process without Ray: registry -> data plane -> app -> its own HTTP/1.1 server,
on an ephemeral loopback port. Keep-alive, pipelining, chunked bodies, 100-continue,
size limits and malformed requests, spoken byte by byte."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from serving.config import HttpLimitsConfig, ServingConfig
from serving.http.connection import Connections
from tests.polling import until
from tests.reference import ROW

MAX_BODY = 16 * 1024
NO_AUTH = {"enabled": False}  # these tests are about the HTTP server; access control has its own
PREDICT = json.dumps({"instances": [ROW]}).encode()


@pytest.fixture(scope="module")
def gateway(demo_registry):
    from serving.gateway import Gateway

    cfg = ServingConfig(host="127.0.0.1", port=0, max_body_bytes=MAX_BODY, unnice=False, auth=NO_AUTH,
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


# -- limits (serving.http): every refusal is an answer, then the connection closes ---------

LIMITS = {"max_url_bytes": 256, "max_header_count": 8, "max_header_bytes": 512, "header_timeout_s": 0.5,
          "body_timeout_s": 0.5, "keepalive_timeout_s": 0.5, "max_connections": 6, "max_pipelined": 2}


@pytest.fixture(scope="module")
def limited(demo_registry):
    from serving.gateway import Gateway

    cfg = ServingConfig(host="127.0.0.1", port=0, max_body_bytes=MAX_BODY, unnice=False, auth=NO_AUTH, http=LIMITS,
                        prediction_log={"enabled": False})
    gw = Gateway(demo_registry, cfg)
    yield gw
    gw.stop()


def closed_after(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded by the socket's timeout)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def test_a_long_request_target_is_414(limited):
    assert exchange(limited.port, b"GET /" + b"a" * 250 + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0][0] == 404  # within
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(closed_after(sock)) == 414


@pytest.mark.parametrize("headers", [
    "".join(f"X-H{i}: v\r\n" for i in range(8)),  # Host + 8 = 9 headers
    "X-Big: " + "v" * 600 + "\r\n",
])
def test_too_many_or_too_big_headers_are_431(limited, headers):
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(f"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        assert status_of(closed_after(sock)) == 431
    fits = "".join(f"X-H{i}: v\r\n" for i in range(7))
    assert exchange(limited.port, f"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n{fits}\r\n".encode())[0][0] == 200


@pytest.mark.parametrize("expect", ["", "Expect: 100-continue\r\n"])
def test_a_declared_body_over_the_limit_is_413_before_any_of_it_is_sent(limited, expect):
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(f"POST /v1/models/demo:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n"
                     f"{expect}\r\n".encode())  # headers only: the answer must not wait for the body
        raw = closed_after(sock)
    assert status_of(raw) == 413 and b"100 Continue" not in raw


def test_an_unknown_expectation_is_417(limited):
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/models/demo:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"Expect: 200-ok\r\n\r\n")
        assert status_of(closed_after(sock)) == 417


@pytest.mark.parametrize("partial", [
    b"", b"GET /v2/health/live HTTP/1.1\r\nHost:",
    b"POST /v1/models/demo:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n{",
])
def test_slow_headers_and_bodies_get_408_and_the_connection_closes(limited, partial):
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(partial)  # ... and never the rest
        assert status_of(closed_after(sock)) == 408


def test_an_idle_keep_alive_connection_is_closed(limited):
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = closed_after(sock)  # the answer, then the close once idle
    assert status_of(raw) == 200 and raw.count(b"HTTP/1.1") == 1


def test_pipelined_requests_past_the_in_flight_cap_are_all_answered_in_order(limited):
    n = 20  # ten times max_pipelined, sent at once: the server reads them as answers drain
    raw = b"".join(post("/v1/models/demo:predict", json.dumps({"instances": [ROW], "id": f"p{i}"}).encode())
                   for i in range(n))
    replies = exchange(limited.port, raw, responses=n)
    assert [r[0] for r in replies] == [200] * n
    assert [json.loads(r[2])["id"] for r in replies] == [f"p{i}" for i in range(n)]


def test_connections_over_the_cap_get_503_and_are_counted(limited):
    held = []
    try:
        while True:  # fill the replica up to its cap with live keep-alive connections
            sock = socket.create_connection(("127.0.0.1", limited.port), timeout=30)
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = sock.recv(65536)
            if status_of(reply) == 503:
                assert b"retry-after: 1" in reply.lower() and closed_after(sock) == b""
                sock.close()
                break
            held.append(sock)
            assert len(held) <= LIMITS["max_connections"]
        assert len(held) == LIMITS["max_connections"]
    finally:
        for sock in held:
            sock.close()
    conn = http.client.HTTPConnection("127.0.0.1", limited.port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    for reason in ("connections", "url", "headers", "too_large", "header_timeout", "body_timeout"):
        assert f'mlgate_http_refused_total{{reason="{reason}"}}' in text, reason


@pytest.fixture(scope="module")
def per_client(demo_registry):
    from serving.gateway import Gateway

    cfg = ServingConfig(host="127.0.0.1", port=0, max_body_bytes=MAX_BODY, unnice=False, auth=NO_AUTH,
                        http={"max_connections": 6, "max_connections_per_client": 2},
                        prediction_log={"enabled": False})
    gw = Gateway(demo_registry, cfg)
    yield gw
    gw.stop()


def live_connection(port: int, source: str) -> socket.socket:
    """A keep-alive connection from ``source`` (any 127/8 address is this host's loopback)."""
    return socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))


def health_status(sock: socket.socket) -> int:
    sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    return status_of(sock.recv(65536))


def test_one_client_address_holds_at_most_its_share_and_others_still_get_in(per_client):
    port = per_client.port
    first = [live_connection(port, "127.0.0.2") for _ in range(2)]
    try:
        assert [health_status(s) for s in first] == [200, 200]
        with live_connection(port, "127.0.0.2") as third:
            reply = third.recv(65536)  # refused at connect: the 503 comes unasked, then the close
            assert status_of(reply) == 503 and b"127.0.0.2" in reply and closed_after(third) == b""
        with live_connection(port, "127.0.0.3") as other:
            assert health_status(other) == 200  # another address is not locked out
        first.pop().close()
        # the closed connection's slot is free again once the server saw the close
        until(lambda: _health_or_none(port, "127.0.0.2") == 200, 10, "a slot for 127.0.0.2 after one of its closes")
    finally:
        for sock in first:
            sock.close()


def _health_or_none(port: int, source: str) -> int | None:
    with live_connection(port, source) as sock:
        try:
            return health_status(sock)
        except (OSError, IndexError, ValueError):
            return None


def test_the_connection_table_counts_per_address_and_releases_once():
    table = Connections(HttpLimitsConfig(max_connections=3, max_connections_per_client=2))
    a, b, c, d = object(), object(), object(), object()
    assert table.admit(a, "10.0.0.1") is None and table.admit(b, "10.0.0.1") is None
    assert table.admit(c, "10.0.0.1").reason == "client_connections"
    assert table.admit(c, "10.0.0.2") is None
    assert table.admit(d, "10.0.0.3").reason == "connections"  # the replica's cap comes first
    table.release(a, "10.0.0.1")
    table.release(a, "10.0.0.1")  # twice: counted once
    table.release(d, "10.0.0.3")  # never admitted: nothing to release
    assert len(table) == 2 and table.admit(a, "10.0.0.1") is None
    unlimited = Connections(HttpLimitsConfig(max_connections=3))
    assert all(unlimited.admit(x, "10.0.0.1") is None for x in (a, b, c))


def test_a_keep_alive_connection_idle_when_the_server_stops_gets_its_next_request_answered(demo_registry):
    """At stop the listening socket closes first; a connection idle at that moment still
    has its next request answered, with Connection: close, instead of being cut while its
    client sends (a broken POST the client would not retry)."""
    import threading

    from serving.gateway import Gateway

    cfg = ServingConfig(host="127.0.0.1", port=0, max_body_bytes=MAX_BODY, unnice=False, auth=NO_AUTH,
                        metrics={"enabled": False}, prediction_log={"enabled": False})
    gw = Gateway(demo_registry, cfg)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    conn.request("POST", "/v1/models/demo:predict", PREDICT, {"Content-Type": "application/json"})
    first = conn.getresponse()
    first.read()
    assert first.status == 200 and first.getheader("connection", "keep-alive") != "close"
    stopping = threading.Thread(target=gw.stop)
    stopping.start()
    try:
        until(lambda: _refused(gw.port), 30.0, "the listening socket closed")  # the stop is under way
        conn.request("POST", "/v1/models/demo:predict", PREDICT, {"Content-Type": "application/json"})
        second = conn.getresponse()
        assert second.status == 200 and second.getheader("connection") == "close"
        assert json.loads(second.read())["predictions"]
    finally:
        conn.close()
        stopping.join(60)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except (ConnectionRefusedError, ConnectionResetError):  # refused, or reset in the closing socket's queue
        return True
