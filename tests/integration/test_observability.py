"""Prediction logs and metrics across two real replicas on a local Ray (issue 5), with access
control on: a client's key (``infer:demo``) predicts, a monitoring key (``metrics:read``) scrapes."""

from __future__ import annotations

import concurrent.futures as cf
import http.client
import json
import os
import signal
import threading
from dataclasses import dataclass

import pyarrow.parquet as pq
import pytest

from access.keys import key_id_of
from contracts import predlog
from tests.conftest import free_port
from tests.polling import until, wait_ready

pytestmark = pytest.mark.integration

ROW = {"age": 42, "income": 52000, "tenure_months": 18, "balance": 1200.5, "credit_score": 640,
       "num_products": 2, "region": "north", "plan": "basic", "channel": "web"}
SALT = "test-salt"


def _deploy(registry_root: str, log_root: str, port: int, auth: dict):
    from serving.config import ServingConfig
    from serving.deployment import deploy

    cfg = ServingConfig(port=port, num_replicas=2, replica_num_cpus=0.5,
                        prediction_log={"flush_interval_s": 0.5, "pii_salt": SALT},
                        metrics={"push_interval_s": 0.2}, auth=auth)
    deploy(registry_root, cfg, log_root=log_root)


def _undeploy():
    from ray import serve

    from serving.deployment import APP_NAME, shutdown_hub

    serve.delete(APP_NAME)
    shutdown_hub()


def _send(port: int, key: str, n: int, start: int, route: str = "v2") -> list[str]:
    """n requests over one keep-alive connection with ``key``, each answered 200; returns the
    request ids the server gave."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}"}
    ids = []
    for i in range(start, start + n):
        row = {**ROW, "age": 20 + i % 60}
        if route == "v2":
            body = {"id": f"req-{i}", "inputs": [
                {"name": k, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1], "data": [v]}
                for k, v in row.items()]}
            conn.request("POST", "/v2/models/demo/infer", json.dumps(body), headers)
        else:
            conn.request("POST", "/v1/models/demo:predict", json.dumps({"instances": [row]}), headers)
        resp = conn.getresponse()
        answer = resp.read()
        assert resp.status == 200, (resp.status, answer[:300])
        ids.append(resp.getheader("x-request-id"))
    conn.close()
    return ids


def _scrape(port: int, key: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {key}"})
    resp = conn.getresponse()
    assert resp.status == 200
    return resp.read().decode()


def _requests_total(text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "mlgate_requests_total" and s.labels.get("model") == "demo")


@dataclass(frozen=True)
class Gateway:
    port: int
    log_root: str
    client_key: str  # infer:demo
    metrics_key: str  # metrics:read


@pytest.fixture()
def gateway(ray_session, demo_registry, tmp_path, keys):
    client_key, metrics_key = keys.create("obs-client", "infer:demo"), keys.create("obs-metrics", "metrics:read")
    port = free_port()
    log_root = str(tmp_path / "logs")
    _deploy(demo_registry, log_root, port, keys.auth)
    wait_ready(port, 60)
    yield Gateway(port, log_root, client_key, metrics_key)
    _undeploy()


def test_n_requests_over_two_replicas_give_n_records_and_counter_n(gateway):
    port = gateway.port
    connections, per_conn = 16, 25
    with cf.ThreadPoolExecutor(connections) as pool:
        futures = [pool.submit(_send, port, gateway.client_key, per_conn, c * per_conn, "v2" if c % 2 else "plain")
                   for c in range(connections)]
        ids = [i for f in futures for i in f.result()]
    n = connections * per_conn
    assert len(set(ids)) == n

    until(lambda: _requests_total(_scrape(port, gateway.metrics_key)) >= n, 30, "every request counted in /metrics",
          interval_s=0.2)
    assert _requests_total(_scrape(port, gateway.metrics_key)) == n

    _undeploy_graceful_then_check(gateway.log_root, ids, f"key:{key_id_of(gateway.client_key)}")


def _undeploy_graceful_then_check(log_root: str, ids: list[str], identity: str) -> None:
    from ray import serve

    from serving.deployment import APP_NAME

    serve.delete(APP_NAME)  # graceful: replicas flush what they buffered
    table = predlog.read_logs(log_root, "demo", columns=["request_id", "row_index", "status", "in_age",
                                                         predlog.IDENTITY])
    assert table.num_rows == len(ids)
    assert sorted(table["request_id"].to_pylist()) == sorted(ids)
    assert set(table[predlog.IDENTITY].to_pylist()) == {identity}  # every record names the client's key
    writers = {os.path.basename(s.path).rsplit("-", 1)[0] for s in predlog.list_segments(log_root, "demo")}
    assert len(writers) == 2, f"expected records from both replicas, got {writers}"
    ages = {str(float(20 + i % 60)) for i in range(1000)} | {str(20 + i % 60) for i in range(1000)}
    for value in table["in_age"].to_pylist():
        assert value not in ages and len(value) == 32  # personal data hashed, never in clear


def test_sigkill_during_load_leaves_only_readable_segments(gateway):
    from ray import serve

    from serving.deployment import APP_NAME

    handle = serve.get_deployment_handle("gateway", app_name=APP_NAME)
    pids: set[int] = set()
    for _ in range(200):
        pids.add(handle.pid.remote().result(timeout_s=30))
        if len(pids) == 2:
            break
    assert len(pids) == 2
    under_load = threading.Event()
    with cf.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(_send_tolerant, gateway.port, gateway.client_key, 60, c * 60, under_load)
                   for c in range(8)]
        assert under_load.wait(60)
        os.kill(min(pids), signal.SIGKILL)
        answered = sum(f.result() for f in futures)
    assert answered > 0
    # the surviving replica publishes within its flush interval
    segments = until(lambda: predlog.list_segments(gateway.log_root, "demo"), 30, "a published segment")
    for seg in segments:
        pq.read_table(seg.path)  # every published segment is complete
    table = predlog.read_logs(gateway.log_root, "demo", columns=["request_id"])
    assert 0 < table.num_rows <= answered


def _send_tolerant(port: int, key: str, n: int, start: int, under_load: threading.Event) -> int:
    """Requests answered 200 (a lost connection is tolerated, any other answer fails)."""
    ok = 0
    for i in range(n):
        try:
            ok += len(_send(port, key, 1, start + i))
        except (OSError, http.client.HTTPException):
            continue
        if ok == 10:
            under_load.set()
    return ok
