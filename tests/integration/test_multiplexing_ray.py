"""Many models per replica on a real local Ray: three models, room for two
(``serving.max_loaded_models``), one gateway replica. Traffic moves from two models to the
third and back; each move loads one model on demand and unloads the least recently used,
and no client sees a non-2xx answer (counts, never timings)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from registry import Registry
from registry.torch_io import register_torch_model
from tests.conftest import free_port
from tests.models import MLP_SCHEMA, mlp
from tests.polling import until, wait_ready
from tests.steady_load import SteadyLoad

pytestmark = pytest.mark.integration
BOUND_S = 60.0  # a bound so a stuck load fails the test
BODY = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 32],
                               "data": np.full(32, 0.25).tolist()}]}).encode()


@pytest.fixture(scope="module")
def gateway(ray_session, tmp_path_factory, keys):
    from ray import serve

    from serving.config import ServingConfig
    from serving.deployment import APP_NAME, deploy, shutdown_hub

    root = tmp_path_factory.mktemp("mux-registry")
    shutil.rmtree(root)
    reg = Registry(str(root))
    for seed, name in enumerate(("a", "b", "c")):
        register_torch_model(reg, name, mlp(seed), MLP_SCHEMA)
    key = keys.create("mux-client", "infer:*", "metrics:read")
    port = free_port()
    deploy(str(root), ServingConfig(port=port, num_replicas=1, replica_num_cpus=1, max_loaded_models=2,
                                    metrics={"push_interval_s": 0.2}, auth=keys.auth))
    try:
        wait_ready(port)
        yield port, keys.headers(key)
    finally:
        serve.delete(APP_NAME)
        shutdown_hub()


def counters(port: int, headers: dict, name: str) -> dict[tuple, float]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics", headers=headers)
    text = conn.getresponse().read().decode()
    conn.close()
    out: dict[tuple, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def loads_of(port: int, headers: dict, model: str, metric: str = "mlgate_model_loads_total") -> float:
    return sum(v for labels, v in counters(port, headers, metric).items() if ("model", model) in labels)


def test_traffic_moving_between_three_models_with_room_for_two_fails_no_request(gateway):
    port, headers = gateway
    loads: list[SteadyLoad] = []

    def traffic(model: str) -> SteadyLoad:
        load = SteadyLoad(port, f"/v2/models/{model}/infer", BODY, headers, clients=2).__enter__()
        loads.append(load)
        until(lambda: load.answered >= 30, BOUND_S, f"answers from {model}")
        return load

    try:
        a, b = traffic("a"), traffic("b")
        c = traffic("c")  # a third model: loaded on demand; the least recently used one goes
        until(lambda: loads_of(port, headers, "c") >= 1, BOUND_S, "c loaded")
        b.stop()  # c and a take the traffic; the table settles to them
        until(lambda: loads_of(port, headers, "b", "mlgate_model_unloads_total") >= 1, BOUND_S, "b unloaded")
        for load in (a, c):
            before = load.answered
            until(lambda load=load, before=before: load.answered >= before + 30, BOUND_S, "answers after the move")
    finally:
        for load in loads:
            load.stop()
    for load in loads:
        assert load.failures == [], load.failures[:5]
        assert set(load.statuses) == {200}
    assert loads_of(port, headers, "b", "mlgate_model_unloads_total") >= 1
    held = {dict(labels)["model"] for labels, v in counters(port, headers, "mlgate_model_version_state").items()
            if dict(labels)["state"] == "serving" and v > 0}
    assert held == {"a", "c"}, counters(port, headers, "mlgate_model_version_state")  # room for two: those in use
