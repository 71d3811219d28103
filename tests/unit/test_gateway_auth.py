"""Access control on a real gateway (its own HTTP server on loopback, no Ray): every route
with no, bad, expired, revoked, out-of-scope and good credentials; labels forged by another
identity; random request ids; the official tritonclient.http passing its key in ``headers=``."""

from __future__ import annotations

import http.client
import json
import re

import numpy as np
import pytest
import tritonclient.http as httpclient

from serving.config import ServingConfig
from tests.clock import ManualClock
from tests.keys import make_keys
from tests.polling import until
from tests.reference import ROW

T0 = 1_800_000_000.0
PREDICT = json.dumps({"instances": [ROW]}).encode()
V2 = json.dumps({"inputs": [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64",
                             "data": [v]} for k, v in ROW.items()]}).encode()


@pytest.fixture(scope="module")
def served(demo_registry, tmp_path_factory):
    """A gateway whose wall clock the test moves (key expiry), with keys made before it starts."""
    from serving.gateway import Gateway

    keys = make_keys(tmp_path_factory.mktemp("gw-auth"))
    clock = ManualClock(T0)
    keys.store.clock = clock  # expiry counted from the same clock as the gateway's
    made = {"infer": keys.create("app", "infer:demo"), "any": keys.create("any", "infer:*"),
            "other": keys.create("other", "infer:other"), "feedback": keys.create("labeller", "feedback:demo"),
            "metrics": keys.create("prometheus", "metrics:read"), "both": keys.create("both", "infer:demo",
                                                                                      "feedback:demo"),
            "expiring": keys.create("short", "infer:demo", ttl_s=600.0), "revoked": keys.create("gone", "admin")}
    cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth=keys.auth,
                        prediction_log={"flush_interval_s": 3600})
    audit = tmp_path_factory.mktemp("gw-auth-audit")
    gw = Gateway(demo_registry, cfg, log_root=str(tmp_path_factory.mktemp("gw-auth-logs")), clock=clock,
                 audit_root=str(audit))
    gw.audit_root_path = audit
    yield gw, keys, made, clock
    gw.stop()


def call(port: int, method: str, path: str, key: str | None = None, body: bytes | None = None,
         raw_auth: str | None = None) -> tuple[int, dict, dict]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if raw_auth is not None:
        headers["Authorization"] = raw_auth
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        payload = response.read()
        doc = json.loads(payload) if response.getheader("content-type", "").startswith("application/json") else {}
        return response.status, {k.lower(): v for k, v in response.getheaders()}, doc
    finally:
        conn.close()


ROUTES = {  # route -> (method, path, body, the key kinds that may use it)
    "v2 infer": ("POST", "/v2/models/demo/infer", V2, {"infer", "any", "both"}),
    "plain predict": ("POST", "/v1/models/demo:predict", PREDICT, {"infer", "any", "both"}),
    "versioned infer": ("POST", "/v2/models/demo/versions/1/infer", V2, {"infer", "any", "both"}),
    "model metadata": ("GET", "/v2/models/demo", None, {"infer", "any", "both"}),
    "metrics": ("GET", "/metrics", None, {"metrics"}),
    "repository index": ("POST", "/v2/repository/index", b"{}", set()),  # admin only
    "repository load": ("POST", "/v2/repository/models/demo/load", b"", set()),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_each_route_takes_exactly_the_keys_with_its_scope(served, route):
    gw, keys, made, _ = served
    method, path, body, allowed = ROUTES[route]
    for kind, key in {**made, "admin": keys.admin}.items():
        if kind in ("revoked", "expiring"):
            continue
        status, headers, doc = call(gw.port, method, path, key, body)
        if kind in allowed or kind == "admin":
            assert status == 200, (kind, status, doc)
        else:
            assert status == 403, (kind, status, doc)
            assert "lacks the scope" in doc["error"] and "www-authenticate" not in headers


@pytest.mark.parametrize("route", sorted(ROUTES) + ["feedback"])
def test_missing_or_bad_credentials_are_401_with_a_challenge(served, route):
    gw, _, made, _ = served
    method, path, body, _ = ROUTES.get(route, ("POST", "/v2/models/demo/feedback", b'{"request_id": "x", '
                                               b'"label": "stay"}', None))
    attempts = {"none": {}, "not bearer": {"raw_auth": "Basic YTpi"},
                "unknown key": {"key": "mlg_0123456789abcdef_" + "A" * 43},
                "garbage": {"key": "not-a-key"}, "tampered": {"key": made["infer"][:-2] + "zz"}}
    for what, kwargs in attempts.items():
        status, headers, doc = call(gw.port, method, path, body=body, **kwargs)
        assert status == 401, (what, status, doc)
        assert headers["www-authenticate"].startswith('Bearer realm="mlgate"')
        assert doc["error"].startswith("authorization:")
        assert "mlg_" not in doc["error"]  # never which keys exist, never the key sent


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready", "/v2/models/demo/ready", "/v2"])
def test_health_readiness_and_server_metadata_stay_open(served, path):
    gw, *_ = served
    assert call(gw.port, "GET", path)[0] == 200


def test_an_expired_key_is_refused_from_its_expiry_on(served):
    gw, _, made, clock = served
    assert call(gw.port, "POST", "/v1/models/demo:predict", made["expiring"], PREDICT)[0] == 200
    clock.advance(600.0)
    status, _, doc = call(gw.port, "POST", "/v1/models/demo:predict", made["expiring"], PREDICT)
    assert status == 401 and "expired" in doc["error"]


def test_a_revoked_key_is_refused_within_the_reload_interval(served):
    gw, keys, made, _ = served
    assert call(gw.port, "GET", "/metrics", made["revoked"])[0] == 200
    keys.store.revoke("gone")
    until(lambda: call(gw.port, "GET", "/metrics", made["revoked"])[0] == 401, 10.0, "the revocation")


def test_server_request_ids_are_128_random_bits(served):
    gw, _, made, _ = served
    ids = [call(gw.port, "POST", "/v2/models/demo/infer", made["infer"], V2)[1]["x-request-id"] for _ in range(3)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == 3


def test_labels_are_accepted_only_from_the_identity_that_made_the_prediction(served):
    gw, keys, made, _ = served
    status, headers, _ = call(gw.port, "POST", "/v2/models/demo/infer", made["both"], V2)
    assert status == 200
    rid = headers["x-request-id"]
    label = json.dumps({"request_id": rid, "label": "churn"}).encode()
    status, _, doc = call(gw.port, "POST", "/v2/models/demo/feedback", made["feedback"], label)
    assert status == 404 and rid in doc["error"] and "for this identity" in doc["error"]  # forged: refused
    assert call(gw.port, "POST", "/v2/models/demo/feedback", made["infer"], label)[0] == 403  # no feedback scope
    assert call(gw.port, "POST", "/v2/models/demo/feedback", made["both"], label)[2] == {"model": "demo",
                                                                                        "accepted": 1}
    assert call(gw.port, "POST", "/v2/models/demo/feedback", keys.admin, label)[0] == 200


def test_a_client_chosen_id_takes_labels_from_its_identity_only(served):
    gw, _, made, _ = served
    body = json.dumps({"id": "order-4711", **json.loads(V2)}).encode()
    assert call(gw.port, "POST", "/v2/models/demo/infer", made["both"], body)[2]["id"] == "order-4711"
    label = json.dumps({"request_id": "order-4711", "label": "stay"}).encode()
    assert call(gw.port, "POST", "/v2/models/demo/feedback", made["feedback"], label)[0] == 404
    assert call(gw.port, "POST", "/v2/models/demo/feedback", made["both"], label)[0] == 200


def test_refusals_are_counted_by_reason(served):
    gw, _, made, _ = served
    call(gw.port, "GET", "/metrics")
    call(gw.port, "GET", "/metrics", made["infer"])

    def counted() -> str | None:
        text = http_metrics(gw.port, made["metrics"])
        ok = 'mlgate_auth_refused_total{reason="unauthenticated"}' in text and \
            'mlgate_auth_refused_total{reason="forbidden"}' in text
        return text if ok else None
    until(counted, 10.0, "the refusal counters")


def http_metrics(port: int, key: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {key}"})
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def test_tritonclient_passes_its_key_in_headers(served):
    gw, _, made, _ = served
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{gw.port}")
    auth = {"Authorization": f"Bearer {made['infer']}"}
    try:
        assert client.is_server_live() and client.is_model_ready("demo")
        assert client.get_model_metadata("demo", headers=auth)["name"] == "demo"
        inputs = []
        for name, value in ROW.items():
            text = isinstance(value, str)
            tensor = httpclient.InferInput(name, [1], "BYTES" if text else "FP64")
            tensor.set_data_from_numpy(np.array([value], dtype=object if text else np.float64))
            inputs.append(tensor)
        result = client.infer("demo", inputs, headers=auth)
        assert result.as_numpy("probabilities").shape == (1, 2)
        with pytest.raises(httpclient.InferenceServerException, match="credentials required"):
            client.infer("demo", inputs)
    finally:
        client.close()


def test_repository_loads_and_unloads_are_audited_with_the_identity_and_refusals_too(served):
    from access.audit import AuditLog

    gw, keys, made, _ = served
    trail = AuditLog(str(gw.audit_root_path))
    before = len(trail.records())  # the route table's calls are in it too
    assert call(gw.port, "POST", "/v2/repository/models/demo/unload", made["infer"])[0] == 403
    assert call(gw.port, "POST", "/v2/repository/models/demo/unload", keys.admin)[0] == 200
    assert call(gw.port, "POST", "/v2/repository/models/demo/load", keys.admin)[0] == 200
    assert call(gw.port, "POST", "/v2/repository/models/nope/load", keys.admin)[0] == 404
    records = trail.records()[before:]
    assert [(r["action"], r["target"], r["outcome"]) for r in records] == [
        ("repository.unload", "demo", "refused"), ("repository.unload", "demo", "ok"),
        ("repository.load", "demo", "ok"), ("repository.load", "nope", "failed")]
    assert records[0]["identity"] is None and "lacks the scope" in records[0]["detail"]["error"]
    assert {r["identity"]["name"] for r in records[1:]} == {"test-admin"}
    assert all(r["detail"]["replica"] == gw.source for r in records)
    assert trail.verify().ok
