"""Hostile input against a real ``mlgate up`` (issue 15), while a normal client keeps asking
every 20 ms: every attack gets a 4xx or a closed connection within a few seconds, never a
5xx; the normal client sees no error and no request over 1 s; the replica that served
before the attacks (its PID) is the one serving after them.

The HTTP time limits are set short here (header 2 s, body 3 s, keep-alive 5 s) so the test
is quick; the defaults (10 s, 30 s, 15 s) work the same way, only slower.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from benchmarks.serving.attacks import (
    ANSWER_WITHIN_S,
    ATTACKS,
    SLOW_BODY,
    SLOW_BODY_FROM,
    authorized,
    first_answer,
    one_input,
    pipelining_flood_never_read,
    post,
    slowloris,
    v2_body,
)
from tests.mlgate_up import mlgate_up
from tests.reference import ROW

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
HEADER_TIMEOUT_S, BODY_TIMEOUT_S = 2.0, 3.0
PREDICT = json.dumps({"instances": [ROW]}).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_registry):
    with mlgate_up(demo_registry, tmp_path_factory.mktemp("attacks"), 300.0,
                   MLGATE_SERVING__HTTP__HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
                   MLGATE_SERVING__HTTP__BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
                   MLGATE_SERVING__HTTP__KEEPALIVE_TIMEOUT_S="5") as served:
        yield served


def listener_pids(port: int) -> set[int]:
    return {c.pid for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port
            and c.pid is not None}


class NormalClient:
    """One keep-alive client asking for a prediction every 20 ms, recording every outcome."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.headers = {"Content-Type": "application/json", **headers}
        self.latencies_s: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> NormalClient:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.wait(0.02):  # the client's pace, not a synchronisation
            started = time.perf_counter()
            try:
                conn.request("POST", "/v1/models/demo:predict", PREDICT, self.headers)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    self.errors.append(f"{response.status} {body[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.latencies_s.append(time.perf_counter() - started)
        conn.close()


def test_attacks_get_a_4xx_or_a_close_while_a_normal_client_keeps_its_latency(server):
    port, key = server.port, server.admin_key
    pids_before = listener_pids(port)
    assert pids_before, "no process listens on the port"
    made_up = [f"v{i:03d}x" for i in range(100)]
    slow = authorized(SLOW_BODY, key)  # with a key: the attacks reach the decoder, not only access control
    with NormalClient(port, server.headers) as normal, ThreadPoolExecutor(8) as pool:
        held = pool.submit(slowloris, port, 300, 30.0)
        slow_body = pool.submit(first_answer, port, slow, trickle_after=SLOW_BODY_FROM + len(slow) - len(SLOW_BODY))
        flood = pool.submit(pipelining_flood_never_read, port)
        answers = {name: first_answer(port, authorized(data, key)) for name, (data, _) in ATTACKS.items()}
        versions = [first_answer(port, authorized(post(f"/v2/models/demo/versions/{v}/infer",
                                                       v2_body(one_input())), key))[0] for v in made_up]
        closed_s = held.result()
        body_status, body_s, _ = slow_body.result()
        flood_ok = flood.result()
    failures = [f"{name}: {status} after {elapsed_s:.1f}s" for name, (status, elapsed_s, _) in answers.items()
                if status not in ATTACKS[name][1] or elapsed_s > ANSWER_WITHIN_S]
    assert failures == []
    assert b"x-injected" not in answers["CR/LF in the id"][2].lower()
    assert len(answers["a 100 kB id"][2]) < 2000  # the id is not echoed
    assert set(versions) == {404}
    assert len(closed_s) == 300 and max(closed_s) <= HEADER_TIMEOUT_S + 3.0
    assert body_status in (408, None) and body_s <= BODY_TIMEOUT_S + 3.0
    assert flood_ok
    assert normal.errors == [] and len(normal.latencies_s) > 50
    assert max(normal.latencies_s) < 1.0, sorted(normal.latencies_s)[-5:]
    assert listener_pids(port) == pids_before  # the same replica, never restarted

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics", headers=server.headers)
    metrics = conn.getresponse().read().decode()
    assert not any(v in metrics for v in made_up)  # made-up versions minted no label values
    assert 'mlgate_http_refused_total{reason="header_timeout"}' in metrics

