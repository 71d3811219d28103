"""Two gateway replicas on a real local Ray follow the registry under steady load: a new
version, promotions, a rollback and a broken version reach both replicas without a
restart, and no client sees a single non-2xx answer (counts, never timings)."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from contracts.replicas import live_statuses
from registry import Registry
from registry.torch_io import register_torch_model
from registry.traffic import TrafficBook, TrafficPolicy
from serving.config import ModelServingConfig
from tests.conftest import free_port
from tests.models import MLP_SCHEMA, Raises, mlp, promote_by_hand
from tests.polling import until, wait_ready
from tests.steady_load import SteadyLoad

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
    assert len(steps) == 8


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
