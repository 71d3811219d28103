"""Many models per replica (``serving.max_loaded_models``): three models, room for two. A
model not held is loaded on its first request (concurrent callers wait on one load,
within their deadline), the least recently used one is unloaded; an admin's unload and
load (Triton's repository API) hold. Real registry, data plane and app; no Ray."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest

from contracts.errors import DeadlineExceeded, NotFound
from contracts.prometheus import MODEL_LOADS_METRIC, MetricsRecorder
from registry import Registry
from registry.torch_io import register_torch_model
from serving.config import ServingConfig
from serving.dataplane import DataPlane
from serving.http.app import GatewayApp
from serving.http.repository import RepositoryHandlers
from serving.live import LiveModels
from serving.types import InferenceRequest, Tensor
from tests.models import MLP_SCHEMA, mlp
from tests.unit.test_app import asgi

SAFETY_S = 60.0


def request(model: str, timeout_s: float | None = None) -> InferenceRequest:
    x = np.full((1, 32), 0.5, dtype=np.float32)
    return InferenceRequest(model, None, [Tensor("x", "FP32", x.shape, x)], timeout_s=timeout_s)


@pytest.fixture
def mux(tmp_path):
    reg = Registry(str(tmp_path / "registry"))
    for seed, name in enumerate(("a", "b", "c")):
        register_torch_model(reg, name, mlp(seed), MLP_SCHEMA)
    cfg = ServingConfig(torch_num_threads=1, max_loaded_models=2)
    loop = asyncio.new_event_loop()
    plane = DataPlane.load(reg, cfg)
    recorder = MetricsRecorder()

    async def make():
        return LiveModels(plane, reg, cfg, recorder=recorder)

    live = loop.run_until_complete(make())
    app = GatewayApp(plane, cfg.max_body_bytes, extra_post=RepositoryHandlers(live.repository).handlers())

    def run(coro):
        return loop.run_until_complete(asyncio.wait_for(coro, SAFETY_S))

    yield type("Mux", (), {"reg": reg, "plane": plane, "live": live, "run": run, "recorder": recorder, "app": app})
    run(live.close())
    run(plane.close())
    loop.close()


def held(m) -> list[str]:
    return sorted(m.plane.models)


def loads(m, model: str) -> float:
    counters = {tuple([n, *lab]): v for (n, lab), v in m.recorder.drain()["counters"]}
    return counters.get((MODEL_LOADS_METRIC, model, "loaded"), 0.0)


async def drained(m) -> None:
    await asyncio.gather(*m.live.draining.values())


def test_a_third_model_is_loaded_on_first_request_and_the_least_recently_used_goes(mux):
    m = mux
    assert held(m) == ["a", "b"]

    async def scenario():
        await m.plane.infer(request("a"), 0.0, 0.0)
        await m.plane.infer(request("b"), 0.0, 0.0)
        await m.plane.infer(request("a"), 0.0, 0.0)  # b is now the least recently used
        answers = await asyncio.gather(*(m.plane.infer(request("c"), 0.0, 0.0) for _ in range(5)))
        await drained(m)
        return answers

    answers = m.run(scenario())
    assert [a.model_name for a in answers] == ["c"] * 5
    assert held(m) == ["a", "c"]
    assert loads(m, "c") == 1  # five concurrent first requests, one load
    assert m.run(m.plane.infer(request("b"), 0.0, 0.0)).model_name == "b"  # back, in place of a (used before c)
    assert held(m) == ["b", "c"]


def test_a_caller_whose_deadline_passes_during_the_load_gets_504_and_the_load_goes_on(mux):
    m = mux

    async def scenario():
        with pytest.raises(DeadlineExceeded):
            await m.plane.infer(request("c", timeout_s=1e-6), 0.0, 0.0)
        await asyncio.gather(*m.live._loading.values())  # noqa: SLF001 - the load it left running
        return await m.plane.infer(request("c"), 0.0, 0.0)

    assert m.run(scenario()).model_name == "c"
    assert loads(m, "c") == 1


def test_an_unknown_model_is_404_and_leaves_no_trace(mux):
    m = mux
    with pytest.raises(NotFound):
        m.run(m.plane.infer(request("nope"), 0.0, 0.0))
    assert held(m) == ["a", "b"] and "nope" not in m.plane.used


def test_the_repository_api_lists_states_and_holds_an_admins_unload_and_load(mux):
    m = mux

    def call(path: str, body: bytes = b""):
        reply = m.run(asgi(m.app, "POST", path, body))
        return reply.status, orjson.loads(reply.body)

    status, index = call("/v2/repository/index")
    assert status == 200
    assert [(e["name"], e["state"]) for e in index] == [("a", "READY"), ("b", "READY")]  # before the first pass
    m.run(m.live.sync())
    status, index = call("/v2/repository/index", b'{"ready": false}')
    assert [(e["name"], e["state"]) for e in index] == [("a", "READY"), ("b", "READY"), ("c", "UNAVAILABLE")]
    assert call("/v2/repository/models/a/unload") == (200, {})
    m.run(drained(m))
    assert held(m) == ["b"]
    with pytest.raises(NotFound):  # unloaded by an admin: not loaded by a request
        m.run(m.plane.infer(request("a"), 0.0, 0.0))
    m.run(m.live.sync())
    assert held(m) == ["b"]  # nor by a reload
    assert call("/v2/repository/models/c/load") == (200, {})
    assert held(m) == ["b", "c"]
    assert call("/v2/repository/models/a/load") == (200, {})
    m.run(drained(m))
    assert held(m) == ["a", "c"]  # b, never used, made room; c was loaded after it
    status, body = call("/v2/repository/models/nope/load")
    assert status == 404 and "nope" in body["error"]
    status, body = call("/v2/repository/index", b"[1]")
    assert status == 400 and "body" in body["error"]


def test_two_loads_begun_together_never_leave_more_than_the_cap_held(mux):
    """Each load makes room before it starts, then checks again once it is in: two loads that
    both found room (one model held, room for two) leave two, not three."""
    m = mux
    register_torch_model(m.reg, "d", mlp(4), MLP_SCHEMA)

    async def scenario():
        m.live.repository.unload("b")  # an admin's unload: held out, one model left
        await drained(m)
        await m.plane.infer(request("a"), 0.0, 0.0)
        answers = await asyncio.gather(m.plane.infer(request("c"), 0.0, 0.0), m.plane.infer(request("d"), 0.0, 0.0))
        await drained(m)
        return answers

    assert [a.model_name for a in m.run(scenario())] == ["c", "d"]
    assert held(m) == ["c", "d"]  # a, the least recently used, made the room the second load needed
