"""The admin API (control/) over real HTTP on loopback: uvicorn serving the FastAPI app in a
thread, keys made as ``mlgate tokens create`` makes them, a copy of the demo registry with
versions 2 and 3, and a manual clock for every time it records."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from access.audit import AuditLog
from access.keys import key_id_of
from contracts.replicas import write_status
from control.api import create_app
from control.context import AdminSettings
from registry import Registry
from registry.traffic import TrafficBook
from tests.clock import ManualClock
from tests.polling import until

START = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
POLICY = {"canaries": {"2": 0.25}, "shadows": {"3": 0.5}, "sticky_key": "X-User"}
ROUTES = [  # every admin route with a body it accepts
    ("GET", "/v1/models", None), ("GET", "/v1/models/demo", None), ("GET", "/v1/models/demo/stages", None),
    ("POST", "/v1/models/demo/promote", {"version": 2, "force": True, "reason": "test"}),
    ("POST", "/v1/models/demo/rollback", {"reason": "test"}),
    ("GET", "/v1/models/demo/traffic", None), ("PUT", "/v1/models/demo/traffic", {"policy": POLICY}),
    ("DELETE", "/v1/models/demo/traffic", None), ("GET", "/v1/audit", None), ("GET", "/v1/audit/verify", None),
    ("GET", "/v1/models/demo/rollouts", None), ("GET", "/v1/models/demo/version-policy", None),
    ("PUT", "/v1/models/demo/version-policy", {"policy": {"policy": "all"}}),
    ("DELETE", "/v1/models/demo/version-policy", None),
    ("POST", "/v1/models/demo/rollout", {"version": 2, "force": True, "reason": "test"}),
    ("GET", "/v1/models/demo/rollout", None),
    ("POST", "/v1/models/demo/rollout/pause", {}), ("POST", "/v1/models/demo/rollout/resume", {}),
    ("POST", "/v1/models/demo/rollout/abort", {}),
]
WRITES = {"promote": "models.promote", "rollback": "models.rollback", "PUT": "traffic.set", "DELETE": "traffic.clear",
          "rollout": "rollout.start", "pause": "rollout.paused", "resume": "rollout.resumed",
          "abort": "rollout.aborted"}


class Served:
    """uvicorn serving ``app`` on a free loopback port until :meth:`stop`."""

    def __init__(self, app) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        until(lambda: self.server.started, 10, "admin API started")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@dataclass
class Env:
    root: Path
    registry: Registry
    audit: AuditLog
    clock: ManualClock
    http: httpx.Client
    admin_id: str
    reader: str  # a valid key without the admin scope
    reader_id: str

    def call(self, method: str, path: str, body=None, key: str | None = None, **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.http.request(method, path, json=body, headers=headers, **kw)

    def last_record(self) -> dict:
        return self.audit.records()[-1]


@pytest.fixture(scope="module")
def reader(keys) -> str:
    return keys.create("reader", "infer:demo", "metrics:read")


@pytest.fixture
def env(tmp_path, demo_registry, keys, reader):
    shutil.copytree(demo_registry, tmp_path / "registry")
    clock = ManualClock(START)
    reg = Registry(str(tmp_path / "registry"), clock)
    v1 = reg.get("demo", 1)
    for _ in range(2):  # versions 2 and 3, copies of 1
        reg.publish("demo", {name: v1.read(name) for name in v1.manifest["files"]})
    settings = AdminSettings(registry_root=str(tmp_path / "registry"), audit_root=str(tmp_path / "audit"),
                             log_root=str(tmp_path / "logs"), auth=keys.auth, state_root=str(tmp_path / "state"))
    served = Served(create_app(settings, clock))
    with httpx.Client(base_url=f"http://127.0.0.1:{served.port}", timeout=10) as client:
        yield Env(tmp_path, reg, AuditLog(str(tmp_path / "audit")), clock, client,
                  f"key:{key_id_of(keys.admin)}", reader, f"key:{key_id_of(reader)}")
    served.stop()


def _promote(env: Env, keys, version: int, **extra) -> httpx.Response:
    return env.call("POST", "/v1/models/demo/promote", {"version": version, "force": True, "reason": "test", **extra},
                    keys.admin)


def test_health_is_open(env):
    r = env.call("GET", "/v1/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_needs_an_admin_credential(env, keys, method, path, body):
    missing = env.call(method, path, body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == 'Bearer realm="mlgate"'
    assert "credentials required" in missing.json()["error"]
    bad = env.call(method, path, body, key="mlg_notakey")
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
    scheme = env.http.request(method, path, json=body, headers={"Authorization": "Basic abc"})
    assert scheme.status_code == 401 and "Bearer scheme" in scheme.json()["error"]
    narrow = env.call(method, path, body, key=env.reader)
    assert narrow.status_code == 403 and narrow.json() == {"error": "forbidden: this credential lacks the scope admin"}
    if method == "GET":  # the model has no rollout yet: that one is 404, once the credential passed
        assert env.call(method, path, body, key=keys.admin).status_code == (404 if path.endswith("/rollout") else 200)


@pytest.mark.parametrize("route", sorted(WRITES))
def test_a_refused_write_is_audited(env, route):
    method, path, body = next(r for r in ROUTES if route in (r[0], r[1].rsplit("/", 1)[-1]))
    assert env.call(method, path, body, key=env.reader).status_code == 403
    record = env.last_record()
    assert (record["action"], record["target"], record["outcome"]) == (WRITES[route], "demo", "refused")
    assert record["identity"]["id"] == env.reader_id and "lacks the scope admin" in record["detail"]["error"]
    assert env.call(method, path, body).status_code == 401
    record = env.last_record()
    assert record["identity"] is None and record["outcome"] == "refused"
    assert record["detail"]["presented"] == "none" and record["detail"]["path"] == path
    env.call(method, path, body, key="mlg_notakey")
    assert env.last_record()["detail"]["presented"] == "a malformed api key"


def test_promote_and_rollback_write_the_registry_and_the_trail(env, keys):
    r = _promote(env, keys, 1)
    assert r.status_code == 200
    assert (r.json()["version"], r.json()["actor_id"], r.json()["at"]) == (1, env.admin_id, START.timestamp())
    assert _promote(env, keys, 2).json()["previous_production"] == 1
    assert env.registry.stages.state("demo").production == 2
    record = env.last_record()
    assert (record["action"], record["target"], record["outcome"]) == ("models.promote", "demo/2", "ok")
    assert record["identity"]["id"] == env.admin_id and record["detail"]["previous_production"] == 1
    back = env.call("POST", "/v1/models/demo/rollback", {"reason": "v2 misbehaves"}, keys.admin)
    assert back.status_code == 200 and back.json()["version"] == 1
    assert env.registry.stages.state("demo").production == 1
    record = env.last_record()
    assert (record["action"], record["target"], record["outcome"]) == ("models.rollback", "demo", "ok")
    assert record["detail"] == {"reason": "v2 misbehaves", "stage_seq": 3, "version": 1, "previous_production": 2}
    stages = env.call("GET", "/v1/models/demo/stages", key=keys.admin).json()
    assert [e["action"] for e in stages["history"]] == ["promote", "promote", "rollback"]
    assert stages["stages"] == {"1": "production", "2": "archived"}


def test_a_conflict_is_409_and_recorded_as_failed(env, keys):
    assert _promote(env, keys, 1).status_code == 200
    again = _promote(env, keys, 1)
    assert again.status_code == 409 and "already in production" in again.json()["error"]
    assert env.last_record()["outcome"] == "failed" and "already in production" in env.last_record()["detail"]["error"]
    nothing = env.call("POST", "/v1/models/demo/rollback", {"reason": "x"}, keys.admin)
    assert nothing.status_code == 409 and "no previous production" in nothing.json()["error"]


def test_traffic_set_show_and_clear(env, keys):
    put = env.call("PUT", "/v1/models/demo/traffic", {"policy": POLICY, "reason": "canary 2"}, keys.admin)
    assert put.status_code == 200 and put.json()["seq"] == 1
    policy = TrafficBook(env.registry).current("demo")
    assert (policy.canaries, policy.shadows, policy.sticky_key) == ({2: 0.25}, {3: 0.5}, "x-user")
    record = env.last_record()
    assert (record["action"], record["outcome"], record["identity"]["id"]) == ("traffic.set", "ok", env.admin_id)
    assert record["detail"]["traffic_seq"] == 1 and record["detail"]["reason"] == "canary 2"
    shown = env.call("GET", "/v1/models/demo/traffic", key=keys.admin).json()
    assert (shown["seq"], shown["set_by"], shown["actor_id"], shown["at"]) == (1, "test-admin", env.admin_id,
                                                                               "2026-03-01T09:00:00+00:00")
    cleared = env.call("DELETE", "/v1/models/demo/traffic", key=keys.admin, params={"reason": "done"})
    assert cleared.status_code == 200 and cleared.json()["policy"]["canaries"] == {}
    assert not TrafficBook(env.registry).current("demo").versions()
    assert (env.last_record()["action"], env.last_record()["detail"]["reason"]) == ("traffic.clear", "done")


@pytest.mark.parametrize(("path", "body", "named"), [
    ("promote", {"version": "two"}, "body.version"),
    ("promote", {"version": 0}, "body.version: Input should be greater than or equal to 1"),
    ("promote", {"version": 1, "by": "me"}, "body.by: Extra inputs are not permitted"),
    ("rollback", {}, "body.reason: Field required"),
    ("traffic", {"policy": {"canaries": {"2": 1.5}}}, "body.policy.canaries.2"),
    ("traffic", {"policy": {"canaries": {"2": 0.6, "3": 0.6}}}, "body.policy.canaries: canary shares sum to 1.2"),
    ("traffic", {"policy": {"canaries": {"2": 0.1}, "shadows": {"2": 0.1}}}, "cannot be both a canary and a shadow"),
])
def test_a_bad_body_is_422_naming_the_field(env, keys, path, body, named):
    method = "PUT" if path == "traffic" else "POST"
    r = env.call(method, f"/v1/models/demo/{path}", body, keys.admin)
    assert r.status_code == 422 and named in r.json()["error"]
    assert env.call(method, f"/v1/models/demo/{path}", body).status_code == 401  # credentials come first


def test_an_empty_policy_or_an_unknown_version_is_refused(env, keys):
    empty = env.call("PUT", "/v1/models/demo/traffic", {"policy": {}}, keys.admin)
    assert empty.status_code == 400 and "DELETE clears" in empty.json()["error"]
    unknown = env.call("PUT", "/v1/models/demo/traffic", {"policy": {"canaries": {"9": 0.1}}}, keys.admin)
    assert unknown.status_code == 404 and unknown.json() == {"error": "model 'demo' has no version 9"}
    assert env.last_record()["outcome"] == "failed"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/v1/models/nope", None), ("GET", "/v1/models/nope/stages", None), ("GET", "/v1/models/nope/traffic", None),
    ("POST", "/v1/models/nope/promote", {"version": 1}), ("DELETE", "/v1/models/nope/traffic", None),
])
def test_an_unknown_model_is_404(env, keys, method, path, body):
    r = env.call(method, path, body, keys.admin)
    assert r.status_code == 404 and "nope" in r.json()["error"]


def test_models_list_and_detail_with_what_replicas_report(env, keys):
    _promote(env, keys, 1)
    write_status(str(env.root / "logs"), "gateway-a", {
        "source": "gateway-a", "host": "127.0.0.1", "pid": 7, "updated_at": env.clock() - 1, "heartbeat_s": 5,
        "models": {"demo": {"serving": [1], "draining": [], "failed": {"3": {"error": "boom", "at": 0, "attempts": 2}}},
                   "other": {"serving": [4]}}})
    assert env.call("GET", "/v1/models", key=keys.admin).json() == [
        {"name": "demo", "versions": [1, 2, 3], "stages": {"1": "production"}, "production": 1}]
    detail = env.call("GET", "/v1/models/demo", key=keys.admin).json()
    assert [(v["version"], v["stage"]) for v in detail["versions"]] == [(1, "production"), (2, None), (3, None)]
    assert detail["traffic"]["seq"] == 0 and detail["traffic"]["production"] == 1
    [replica] = detail["replicas"]
    assert (replica["source"], replica["stale"], replica["serving"], replica["failed"]["3"]["error"]) == (
        "gateway-a", False, [1], "boom")
    env.clock.advance(60)  # twelve heartbeats without a word
    assert env.call("GET", "/v1/models/demo", key=keys.admin).json()["replicas"][0]["stale"] is True


def test_audit_list_since_and_verify(env, keys):
    _promote(env, keys, 1)
    env.clock.advance(3600)
    _promote(env, keys, 2)
    since = (START + dt.timedelta(minutes=30)).isoformat()
    records = env.call("GET", "/v1/audit", key=keys.admin, params={"since": since}).json()["records"]
    assert [r["target"] for r in records] == ["demo/2"]
    naive = env.call("GET", "/v1/audit", key=keys.admin, params={"since": "2026-03-01T09:30:00"}).json()
    assert len(naive["records"]) == 1
    assert env.call("GET", "/v1/audit", key=keys.admin, params={"since": "yesterday"}).status_code == 422
    verified = env.call("GET", "/v1/audit/verify", key=keys.admin).json()
    assert (verified["ok"], verified["count"]) == (True, 2)
    trail = env.root / "audit" / "audit.jsonl"
    trail.write_bytes(trail.read_bytes().replace(b'"demo/1"', b'"demo/3"'))
    broken = env.call("GET", "/v1/audit/verify", key=keys.admin).json()
    assert (broken["ok"], broken["line"]) == (False, 1) and "edited" in broken["problem"]


def test_the_openapi_document_lists_every_route_and_docs_are_served(env):
    doc = env.call("GET", "/openapi.json").json()
    listed = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert {(m, p.replace("demo", "{model}")) for m, p, _ in ROUTES} | {("GET", "/v1/health")} == listed
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    assert doc["paths"]["/v1/models/{model}/promote"]["post"]["responses"]["409"]["content"]
    docs = env.call("GET", "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_an_unknown_route_answers_in_the_same_shape(env):
    r = env.call("GET", "/v1/nothing")
    assert (r.status_code, r.json()) == (404, {"error": "Not Found"})
    r = env.call("PATCH", "/v1/models/demo/traffic")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}


def test_rollouts_start_pause_resume_abort_and_tell_their_story(env, keys):
    from control.rollout.controller import RolloutController, Roots

    ungated = env.call("POST", "/v1/models/demo/rollout", {"version": 2}, keys.admin)
    assert ungated.status_code == 409 and "no production version" in ungated.json()["error"]
    assert _promote(env, keys, 1).status_code == 200
    ungated = env.call("POST", "/v1/models/demo/rollout", {"version": 2}, keys.admin)
    assert ungated.status_code == 409 and "ungated" in ungated.json()["error"]
    assert env.last_record()["outcome"] == "failed"
    body = {"version": 2, "force": True, "reason": "hotfix", "steps_pct": [20, 100], "step_s": 30}
    started = env.call("POST", "/v1/models/demo/rollout", body, keys.admin)
    assert started.status_code == 201, started.text
    doc = started.json()
    assert (doc["status"], doc["candidate"], doc["baseline"], doc["spec"]["steps_pct"]) == ("pending", 2, 1, [20, 100])
    record = env.last_record()
    assert (record["action"], record["target"], record["detail"]["rollout_id"]) == (
        "rollout.start", "demo/2", doc["rollout_id"])
    again = env.call("POST", "/v1/models/demo/rollout", body, keys.admin)
    assert again.status_code == 409 and "in progress" in again.json()["error"]
    roots = Roots(str(env.root / "registry"), str(env.root / "logs"), str(env.root / "state"), str(env.root / "audit"))
    RolloutController(roots, clock=env.clock).tick()  # enters canary:20
    env.clock.advance(5)
    RolloutController(roots, clock=env.clock).tick()  # holds: no traffic
    assert env.call("POST", "/v1/models/demo/rollout/pause", {"reason": "lunch"}, keys.admin).json()["status"] == \
        "paused"
    twice = env.call("POST", "/v1/models/demo/rollout/pause", {}, keys.admin)
    assert twice.status_code == 409 and "is paused" in twice.json()["error"]
    assert env.call("POST", "/v1/models/demo/rollout/resume", {}, keys.admin).json()["status"] == "running"
    aborted = env.call("POST", "/v1/models/demo/rollout/abort", {"reason": "no"}, keys.admin)
    assert aborted.json()["status"] == "aborted" and not TrafficBook(env.registry).current("demo").versions()
    assert env.last_record()["detail"]["traffic_seq"] == 2  # the controller's canary, then the abort's clear
    shown = env.call("GET", "/v1/models/demo/rollout", key=keys.admin, params={"last": 5}).json()
    assert [e["kind"] for e in shown["events"]] == ["started", "phase", "paused", "resumed", "aborted"]
    assert [r["event"] for r in shown["evaluations"]] == ["phase", "evaluation"]
    assert shown["evaluations"][-1]["action"] == "hold"
    listed = env.call("GET", "/v1/models/demo/rollouts", key=keys.admin).json()
    assert [(r["rollout_id"], r["status"]) for r in listed] == [(doc["rollout_id"], "aborted")]
    assert env.call("GET", "/v1/models/nope/rollouts", key=keys.admin).status_code == 404
    bad = env.call("POST", "/v1/models/demo/rollout", {**body, "steps_pct": [20, 50]}, keys.admin)
    assert (bad.status_code, bad.json()) == (400, {"error": "steps_pct: the last step must be 100 (the promotion)"})


def test_the_version_policy_is_set_and_cleared_at_run_time(env, keys):
    from registry.version_policies import PolicyBook

    put = env.call("PUT", "/v1/models/demo/version-policy",
                   {"policy": {"policy": "specific", "versions": [2, 3]}, "reason": "both"}, keys.admin)
    assert put.status_code == 200 and put.json()["seq"] == 1
    assert PolicyBook(env.registry).current("demo").versions == (2, 3)
    shown = env.call("GET", "/v1/models/demo/version-policy", key=keys.admin).json()
    assert shown["serves_now"] == [2, 3] and shown["last"]["actor_id"] == env.admin_id
    assert (env.last_record()["action"], env.last_record()["outcome"]) == ("models.policy", "ok")
    bad = env.call("PUT", "/v1/models/demo/version-policy", {"policy": {"policy": "newest"}}, keys.admin)
    assert bad.status_code == 422 and "body.policy.policy" in bad.json()["error"]
    cleared = env.call("DELETE", "/v1/models/demo/version-policy", key=keys.admin, params={"reason": "done"})
    assert cleared.status_code == 200 and cleared.json()["policy"] is None
    assert PolicyBook(env.registry).current("demo") is None
