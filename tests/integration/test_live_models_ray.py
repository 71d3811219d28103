"""Two gateway replicas on a real local Ray follow the registry under steady load: a new
version, promotions, a rollback and a broken version reach both replicas without a
restart, and no client sees a single non-2xx answer (counts, never timings)."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pyarrow.compute as pc
import pytest

from contracts import predlog
from contracts.replicas import live_statuses
from control.rollout.controller import Roots
from monitoring.config import AlertConfig
from registry import Registry
from registry.rollouts import RolloutBook, RolloutChecks, plan
from registry.store import VersionPolicy
from registry.torch_io import register_torch_model
from registry.traffic import TrafficBook, TrafficPolicy
from registry.version_policies import PolicyBook
from serving.config import ModelServingConfig
from tests.conftest import free_port
from tests.models import MLP_SCHEMA, Raises, Slow, mlp, promote_by_hand, publish_copy
from tests.polling import until, wait_ready
from tests.steady_load import SteadyLoad
from tests.webhook import Webhook

pytestmark = pytest.mark.integration
REPLICAS = 2
RELOAD_S = 0.5
SWITCH_BOUND_S = 60.0  # a bound so a broken follower fails the test; the switch takes ~RELOAD_S + a load
BODY = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 32],
                               "data": np.full(32, 0.25).tolist()}]}).encode()


@pytest.fixture(scope="module")
def gateway(ray_session, tmp_path_factory, keys):
    """(registry, port, log root, client headers, redeploy(cfg change)) of a 2-replica gateway."""
    from ray import serve

    from serving.config import ServingConfig
    from serving.deployment import APP_NAME, deploy, shutdown_hub

    root = tmp_path_factory.mktemp("live-registry")
    logs = tmp_path_factory.mktemp("live-logs")
    shutil.rmtree(root)
    reg = Registry(str(root))
    register_torch_model(reg, "mlp", mlp(1), MLP_SCHEMA)
    key = keys.create("live-client", "infer:mlp")
    port = free_port()
    cfg = ServingConfig(port=port, num_replicas=REPLICAS, replica_num_cpus=1, reload_interval_s=RELOAD_S,
                        serve_models=("mlp",), auth=keys.auth)
    deploy(str(root), cfg, log_root=str(logs))
    try:
        wait_ready(port)
        until(lambda: len(fresh(str(logs))) == REPLICAS, SWITCH_BOUND_S, "both replicas report their status")
        yield reg, port, str(logs), keys.headers(key), lambda **change: deploy(
            str(root), cfg.model_copy(update=change), log_root=str(logs))
    finally:
        serve.delete(APP_NAME)
        shutdown_hub()


def fresh(logs: str) -> list[dict]:
    return live_statuses(logs, time.time())


def replicas_serve(logs: str, versions: list[int], failed: str | None = None):
    """True once every live replica serves exactly ``versions`` and drains nothing (and,
    with ``failed``, reports that version as failed)."""
    records = fresh(logs)
    return len(records) == REPLICAS and all(
        r["models"].get("mlp", {}).get("serving") == versions and r["models"]["mlp"]["draining"] == []
        and (failed is None or failed in r["models"]["mlp"]["failed"]) for r in records)


def test_changes_in_the_registry_reach_both_replicas_with_no_failed_request(gateway):
    reg, port, logs, headers, _ = gateway
    steps = []
    with SteadyLoad(port, "/v2/models/mlp/infer", BODY, headers) as load:
        until(lambda: load.answered >= 50, SWITCH_BOUND_S, "steady load under way")

        def step(what: str, change, versions: list[int], failed: str | None = None) -> None:
            change()
            until(lambda: replicas_serve(logs, versions, failed), SWITCH_BOUND_S, f"{what}: replicas serve {versions}",
                  detail=lambda: json.dumps(fresh(logs), indent=1))
            before = load.answered
            until(lambda: load.answered >= before + 20, SWITCH_BOUND_S, f"{what}: answers after the switch")
            steps.append(what)

        step("a new version the policy admits", lambda: register_torch_model(reg, "mlp", mlp(2), MLP_SCHEMA), [2])
        step("promote 1", lambda: promote_by_hand(reg, 1), [1])
        step("promote 2", lambda: promote_by_hand(reg, 2), [2])
        step("rollback", lambda: reg.rollback("mlp", actor="test"), [1])
        policies = PolicyBook(reg)
        step("a version-policy change at run time", lambda: policies.set(
            "mlp", VersionPolicy(policy="specific", versions=(2,)), actor="test"), [2])
        step("the configured version policy again", lambda: policies.set("mlp", None, actor="test"), [1])
        book = TrafficBook(reg)
        step("canary 2 at 50%", lambda: book.set("mlp", TrafficPolicy(canaries={2: 0.5}), actor="test"), [1, 2])
        raises = register_torch_model(reg, "mlp", Raises(), MLP_SCHEMA).version  # 3: fails on every real input
        step("a shadow that fails every copy", lambda: book.set("mlp", TrafficPolicy(shadows={raises: 1.0}),
                                                                 actor="test"), [1, raises])
        step("traffic policy cleared", lambda: book.set("mlp", TrafficPolicy(), actor="test"), [1])
        broken = {"model.pt": b"not a torchscript archive", "schema.json": MLP_SCHEMA.model_dump_json().encode()}
        step("promote a version that cannot load",
             lambda: promote_by_hand(reg, reg.publish("mlp", broken).version), [1], failed="4")
    assert load.failures == [], load.failures[:5]
    assert set(load.statuses) == {200}
    assert set(load.versions) == {"1", "2"}, load.versions  # never the shadow's
    assert len(steps) == 10


def test_a_rolling_restart_with_a_config_change_fails_no_request(gateway):
    """Serve replaces both replicas (a new deployment version: another batch size); with
    two of them one always listens on the shared port."""
    reg, port, logs, headers, redeploy = gateway
    sources = {r["source"] for r in fresh(logs)}
    with SteadyLoad(port, "/v2/models/mlp/infer", BODY, headers) as load:
        until(lambda: load.answered >= 50, SWITCH_BOUND_S, "steady load under way")
        redeploy(default_model=ModelServingConfig(max_batch_size=32))
        until(lambda: len(fresh(logs)) == REPLICAS and not sources & {r["source"] for r in fresh(logs)},
              SWITCH_BOUND_S, "two new replicas report")
        before = load.answered
        until(lambda: load.answered >= before + 50, SWITCH_BOUND_S, "answers from the new replicas")
    assert load.failures == [], load.failures[:5]
    assert set(load.statuses) == {200}


# -- the rollout controller, as its detached actor, driving the same two replicas ----------
ROLLOUT_BOUND_S = 180.0  # a bound so a stuck controller fails the test; each rollout takes a few steps of STEP_S
STEP_S = 3.0
CHECKS = RolloutChecks(min_requests=30, min_shadow_rows=30, latency_slack_ms=40.0)  # few requests: a noisy p99


@pytest.fixture(scope="module")
def controller(gateway, tmp_path_factory):
    """The controller actor over the gateway's registry and log, evaluating every 0.5 s."""
    from control.config import RolloutConfig
    from control.rollout.service import ensure_actor, stop_actor

    reg, _, logs, _, _ = gateway
    d = tmp_path_factory.mktemp("rollouts")
    hook = Webhook()
    roots = Roots(reg.path, logs, str(d / "state"), str(d / "audit"))
    handle = ensure_actor(RolloutConfig(interval_s=0.5, actor_num_cpus=0), roots,
                          AlertConfig(webhook_url=hook.url, retries=0))
    try:
        yield handle, hook, roots
    finally:
        stop_actor()
        hook.close()


def gated_copy(reg, source: int) -> int:
    publish_copy(reg, reg.get("mlp", source), "mlp")
    version = max(reg.list_versions("mlp"))
    reg.record_gate("mlp", version, {"passed": True, "reasons": []}, dataset={"name": "t", "version": 1}, actor="t")
    return version


def rollout(reg, version: int, **kw) -> str:
    spec = plan(reg, "mlp", version, **{"step_s": STEP_S, "checks": CHECKS, **kw})
    RolloutBook(reg).start(spec, actor="test")
    return spec.rollout_id


def ended(reg) -> str | None:
    state = RolloutBook(reg).get("mlp")
    return None if state.active else state.status


def production_serves_alone(gateway):
    reg, _, logs, _, _ = gateway
    if reg.stages.state("mlp").production != 1:
        promote_by_hand(reg, 1)
    TrafficBook(reg).set("mlp", TrafficPolicy(), actor="test")
    until(lambda: replicas_serve(logs, [1]), SWITCH_BOUND_S, "production 1 alone")


def test_the_controller_takes_a_healthy_version_through_shadow_and_canary_to_production(gateway, controller):
    reg, port, logs, headers, _ = gateway
    production_serves_alone(gateway)
    candidate = gated_copy(reg, 1)
    with SteadyLoad(port, "/v2/models/mlp/infer", BODY, headers) as load:
        until(lambda: load.answered >= 50, SWITCH_BOUND_S, "steady load under way")
        rollout_id = rollout(reg, candidate, steps_pct=(10, 50, 100), shadow_first_s=STEP_S)
        until(lambda: ended(reg), ROLLOUT_BOUND_S, "the rollout ends",
              detail=lambda: json.dumps(RolloutBook(reg).get("mlp").to_dict()))
        until(lambda: replicas_serve(logs, [candidate]), SWITCH_BOUND_S, "the candidate serves alone")
        before = load.versions[str(candidate)]
        until(lambda: load.versions[str(candidate)] >= before + 20, SWITCH_BOUND_S, "answers from production")
    state = RolloutBook(reg).get("mlp")
    assert state.status == "completed", state.reason
    assert [e.phase or e.kind for e in state.events] == ["started", "shadow", "canary:10", "canary:50", "completed"]
    assert reg.stages.state("mlp").production == candidate
    assert reg.stage_history("mlp")[-1].actor == f"rollout:{rollout_id}"
    assert load.failures == [], load.failures[:5]
    assert {"1", str(candidate)} <= set(load.versions)


def test_a_broken_candidate_is_rolled_back_by_the_controller_and_production_answers_stay_whole(gateway, controller):
    reg, port, logs, headers, _ = gateway
    _, hook, _ = controller
    production_serves_alone(gateway)
    raises = register_torch_model(reg, "mlp", Raises(), MLP_SCHEMA).version
    reg.record_gate("mlp", raises, {"passed": True, "reasons": []}, dataset={"name": "t", "version": 1}, actor="t")
    with SteadyLoad(port, "/v2/models/mlp/infer", BODY, headers) as load:
        until(lambda: load.answered >= 50, SWITCH_BOUND_S, "steady load under way")
        rollout(reg, raises, steps_pct=(10, 100), step_s=600)
        until(lambda: ended(reg), ROLLOUT_BOUND_S, "the controller rolls it back")
        until(lambda: replicas_serve(logs, [1]), SWITCH_BOUND_S, "production alone again")
        failed_at_rollback = len(load.failures)
        before = load.answered
        until(lambda: load.answered >= before + 100, SWITCH_BOUND_S, "answers after the rollback")
    state = RolloutBook(reg).get("mlp")
    assert state.status == "failed" and "error_rate" in state.reason
    assert reg.stage_of("mlp", raises) == "archived" and reg.stages.state("mlp").production == 1
    assert 0 < failed_at_rollback == len(load.failures)  # its canary share failed, then nothing did
    assert set(load.versions) == {"1"}  # every answer that came back came from production
    answered_failed = (pc.field(predlog.STATUS) >= 500) & (pc.field(predlog.ROUTE) != "shadow")  # not test 1's shadow
    failed_versions = set(predlog.read_logs(logs, "mlp").filter(answered_failed)[predlog.VERSION].to_pylist())
    assert failed_versions == {str(raises)}
    until(lambda: hook.bodies, 30, "the alert")
    assert hook.bodies[-1]["alerts"][0]["labels"]["alertname"] == "MlgateRolloutFailed"


def test_a_slow_candidate_is_rolled_back_with_no_failed_request(gateway, controller):
    reg, port, logs, headers, _ = gateway
    production_serves_alone(gateway)
    slow = register_torch_model(reg, "mlp", Slow(1), MLP_SCHEMA).version
    reg.record_gate("mlp", slow, {"passed": True, "reasons": []}, dataset={"name": "t", "version": 1}, actor="t")
    checks = CHECKS.model_copy(update={"latency_slack_ms": 2.0})
    with SteadyLoad(port, "/v2/models/mlp/infer", BODY, headers) as load:
        until(lambda: load.answered >= 50, SWITCH_BOUND_S, "steady load under way")
        RolloutBook(reg).start(plan(reg, "mlp", slow, steps_pct=(25, 100), step_s=600, checks=checks), actor="t")
        until(lambda: ended(reg), ROLLOUT_BOUND_S, "the controller rolls it back")
        until(lambda: replicas_serve(logs, [1]), SWITCH_BOUND_S, "production alone again")
    state = RolloutBook(reg).get("mlp")
    assert state.status == "failed" and "p50_ratio" in state.reason, state.reason
    assert load.failures == [], load.failures[:5]
    assert set(load.statuses) == {200}


def test_one_replica_restarts_without_an_outage(gateway):
    """serving.max_surge_percent (100 by default): Serve starts the replacement before it stops
    the only replica, which drains its connections; no request fails."""
    reg, port, logs, headers, redeploy = gateway
    production_serves_alone(gateway)
    redeploy(num_replicas=1)  # a lightweight change: one of the two replicas stops
    until(lambda: len(fresh(logs)) == 1, SWITCH_BOUND_S, "one replica left")
    (old,) = {r["source"] for r in fresh(logs)}
    with SteadyLoad(port, "/v2/models/mlp/infer", BODY, headers) as load:
        until(lambda: load.answered >= 50, SWITCH_BOUND_S, "steady load under way")
        redeploy(num_replicas=1, default_model=ModelServingConfig(max_batch_size=16))
        until(lambda: [r["source"] for r in fresh(logs)] not in ([], [old]) and old not in
              {r["source"] for r in fresh(logs)}, SWITCH_BOUND_S, "its replacement alone reports")
        before = load.answered
        until(lambda: load.answered >= before + 50, SWITCH_BOUND_S, "answers from the replacement")
    assert load.failures == [], load.failures[:5]
    assert set(load.statuses) == {200}
