"""The live model table on a real registry and data plane, without Ray or HTTP: new
versions, promotions and rollbacks switch the table; replaced versions drain and are
unloaded; a version that cannot load or warm up never takes traffic."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import numpy as np
import pytest
from scipy.stats import binomtest

from contracts.prometheus import MODEL_LOADS_METRIC, MODEL_STATE_METRIC, SHADOW_DROPPED_METRIC, MetricsRecorder
from registry import Registry
from registry.torch_io import register_torch_model
from registry.traffic import TrafficBook, TrafficPolicy
from serving.config import ServingConfig
from serving.dataplane import DataPlane
from serving.live import LiveModels
from serving.types import InferenceRequest, Tensor
from tests.models import MLP_SCHEMA, Raises, mlp, promote_by_hand

SAFETY_S = 60.0


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def request(version: str | None = None, rows: int = 1, sticky: str | None = None, rid: str = "") -> InferenceRequest:
    x = np.full((rows, 32), 0.5, dtype=np.float32)
    return InferenceRequest("mlp", version, [Tensor("x", "FP32", x.shape, x)], sticky=sticky, request_id=rid)


class Seen:
    """An observer: every request the plane answered or refused, by route."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, str | None, int | None, bool]] = []  # route, version, answered by, ok

    def observe(self, outcome) -> None:
        model = outcome.model
        self.outcomes.append((outcome.request.route, outcome.request.request_id,
                              None if model is None else model.version, outcome.error is None))

    def observe_batch(self, outcome) -> None:
        for request in outcome.requests:
            self.outcomes.append((request.route, request.request_id, outcome.model.version, True))


@pytest.fixture
def table(tmp_path):
    reg = Registry(str(tmp_path / "registry"))
    register_torch_model(reg, "mlp", mlp(1), MLP_SCHEMA)
    cfg = ServingConfig(torch_num_threads=1, load_retry_s=30.0, models={"mlp": {"max_queue_size": 4}})
    loop = asyncio.new_event_loop()
    seen = Seen()
    plane = DataPlane.load(reg, cfg, lambda plane: [seen])
    recorder = MetricsRecorder()
    plane.recorder = recorder
    ticks = Ticks()
    changes: list[dict] = []
    live = loop.run_until_complete(_make(plane, reg, cfg, recorder, ticks, changes))

    def run(coro):
        return loop.run_until_complete(asyncio.wait_for(coro, SAFETY_S))

    yield type("Table", (), {"reg": reg, "plane": plane, "live": live, "run": run, "ticks": ticks,
                             "recorder": recorder, "changes": changes, "loop": loop, "seen": seen})
    run(live.close())
    run(plane.close())
    loop.close()


async def _make(plane, reg, cfg, recorder, ticks, changes) -> LiveModels:
    return LiveModels(plane, reg, cfg, recorder=recorder, monotonic=ticks,
                      on_state=lambda status: changes.append(status))


async def drained(t) -> None:
    await asyncio.gather(*t.live.draining.values())


def served(t) -> list[int]:
    return sorted(t.plane.models.get("mlp", {}))


def test_a_new_version_replaces_the_old_and_the_old_is_unloaded(table):
    t = table
    old = weakref.ref(t.plane.models["mlp"][1].pipeline)
    assert t.run(t.live.sync()) is False  # nothing changed: nothing loaded, nothing switched
    register_torch_model(t.reg, "mlp", mlp(2), MLP_SCHEMA)
    assert t.run(t.live.sync()) is True
    assert served(t) == [2]
    assert t.run(t.plane.infer(request(), 0.0, 0.0)).model_version == 2
    t.run(drained(t))
    gc.collect()
    assert old() is None, "the replaced version's pipeline (its weights) is still referenced"
    assert t.changes[-1]["mlp"] == {"serving": [2], "draining": [], "failed": {}}


def test_promotion_and_rollback_follow_the_stages(table):
    t = table
    register_torch_model(t.reg, "mlp", mlp(2), MLP_SCHEMA)
    t.run(t.live.sync())
    promote_by_hand(t.reg, 1)  # production exists: the policy prefers it over the newest
    t.run(t.live.sync())
    assert served(t) == [1]
    promote_by_hand(t.reg, 2)
    t.run(t.live.sync())
    assert served(t) == [2]
    t.reg.rollback("mlp", actor="test")
    t.run(t.live.sync())
    assert served(t) == [1]
    assert t.run(t.plane.infer(request(), 0.0, 0.0)).model_version == 1


def test_requests_queued_on_the_old_version_finish_there_while_new_ones_go_to_the_new(table):
    t = table
    old = t.plane.models["mlp"][1]
    hold = threading.Event()
    old.compute_thread.submit(hold.wait)  # the old version's one compute thread is busy until released

    async def scenario():
        queued = [asyncio.ensure_future(t.plane.infer(request(), 0.0, 0.0)) for _ in range(4)]  # a full queue
        await asyncio.sleep(0)  # they reach the old version's queue
        register_torch_model(t.reg, "mlp", mlp(2), MLP_SCHEMA)
        await t.live.sync()
        assert served(t) == [2] and ("mlp", 1) in t.live.draining
        assert (await t.plane.infer(request(), 0.0, 0.0)).model_version == 2
        assert not any(q.done() for q in queued)
        hold.set()
        answers = await asyncio.gather(*queued)
        await drained(t)
        return answers

    try:
        answers = t.run(scenario())
    finally:
        hold.set()
    assert [a.model_version for a in answers] == [1] * 4
    assert t.live.draining == {}


def test_a_version_that_fails_to_load_never_takes_traffic_and_is_retried_later(table):
    t = table
    files = {"model.pt": b"not a torchscript archive", "schema.json": MLP_SCHEMA.model_dump_json().encode()}
    t.reg.publish("mlp", files)  # version 2: its weights cannot be loaded
    assert t.run(t.live.sync()) is False
    assert served(t) == [1]
    assert t.run(t.plane.infer(request(), 0.0, 0.0)).model_version == 1
    status = t.live.status()["mlp"]
    assert status["serving"] == [1] and list(status["failed"]) == ["2"]
    assert status["failed"]["2"]["attempts"] == 1
    snap = t.recorder.drain()
    counters = dict((tuple([n, *lab]), v) for (n, lab), v in snap["counters"])
    assert counters[(MODEL_LOADS_METRIC, "mlp", "failed")] == 1
    gauges = {tuple([n, *lab]) for (n, lab), v in snap["gauges"] if v}
    assert (MODEL_STATE_METRIC, "mlp", "2", "failed") in gauges
    assert (MODEL_STATE_METRIC, "mlp", "1", "serving") in gauges

    t.run(t.live.sync())  # within the retry interval: not tried again
    assert t.live.status()["mlp"]["failed"]["2"]["attempts"] == 1
    t.ticks.now_s += 30.0
    t.run(t.live.sync())
    assert t.live.status()["mlp"]["failed"]["2"]["attempts"] == 2
    t.ticks.now_s += 30.0  # the second failure doubled the wait
    t.run(t.live.sync())
    assert t.live.status()["mlp"]["failed"]["2"]["attempts"] == 2


def test_a_version_that_fails_its_warm_up_never_takes_traffic(table):
    t = table
    register_torch_model(t.reg, "mlp", mlp(3, width=31), MLP_SCHEMA)  # takes 31 inputs; the schema says 32
    t.run(t.live.sync())
    assert served(t) == [1]
    assert "2" in t.live.status()["mlp"]["failed"]
    register_torch_model(t.reg, "mlp", mlp(4), MLP_SCHEMA)  # a good version 3 replaces 1, past the broken 2
    t.run(t.live.sync())
    assert served(t) == [3]


def test_a_model_published_later_is_served_and_one_removed_is_not(table, tmp_path):
    t = table
    register_torch_model(t.reg, "other", mlp(5), MLP_SCHEMA)
    t.run(t.live.sync())
    assert sorted(t.plane.models) == ["mlp", "other"]
    t.reg.fs.delete_dir(f"{t.reg.path}/other")
    t.run(t.live.sync())
    assert sorted(t.plane.models) == ["mlp"]


def with_canary(t, policy: dict) -> None:
    """Version 1 production, version 2 registered, ``policy`` set, the table synced."""
    promote_by_hand(t.reg, 1)
    register_torch_model(t.reg, "mlp", mlp(2), MLP_SCHEMA)
    TrafficBook(t.reg).set("mlp", TrafficPolicy(**policy), actor="test")
    assert t.run(t.live.sync()) is True
    assert served(t) == [1, 2] and t.plane.primary["mlp"] == 1


def test_a_canary_takes_its_share_and_a_pinned_version_stays_pinned(table):
    t = table
    with_canary(t, {"canaries": {2: 0.3}})
    draws = 600

    async def many():
        return [(await t.plane.infer(request(), 0.0, 0.0)).model_version for _ in range(draws)]

    versions = t.run(many())
    k = versions.count(2)
    assert binomtest(k, draws, 0.3).pvalue > 1e-4, k
    assert {(t.run(t.plane.infer(request("1"), 0.0, 0.0))).model_version for _ in range(20)} == {1}
    TrafficBook(t.reg).set("mlp", TrafficPolicy(), actor="test")  # cleared: version 2 is no longer wanted
    t.run(t.live.sync())
    assert served(t) == [1] and "mlp" not in t.plane.routers


def test_a_sticky_key_keeps_one_caller_on_one_version(table):
    t = table
    with_canary(t, {"canaries": {2: 0.5}, "sticky_key": "x-user"})

    async def versions_of(user: str) -> set[int]:
        return {(await t.plane.infer(request(sticky=user), 0.0, 0.0)).model_version for _ in range(10)}

    per_user = [t.run(versions_of(f"user-{i}")) for i in range(40)]
    assert all(len(v) == 1 for v in per_user)
    assert {v for vs in per_user for v in vs} == {1, 2}


def test_a_shadow_gets_copies_with_the_primary_id_and_its_errors_never_reach_the_caller(table):
    t = table
    promote_by_hand(t.reg, 1)
    register_torch_model(t.reg, "mlp", Raises(), MLP_SCHEMA)  # version 2 fails on every real input
    TrafficBook(t.reg).set("mlp", TrafficPolicy(shadows={2: 1.0}), actor="test")
    t.run(t.live.sync())
    assert served(t) == [1, 2]

    async def calls():
        answers = []
        for i in range(8):  # one at a time, its copy finished before the next (no copy dropped)
            answers.append(await t.plane.infer(request(rid=f"r{i}"), 0.0, 0.0))
            await asyncio.gather(*t.plane._shadows)  # noqa: SLF001 - the copies under way
        return answers

    answers = t.run(calls())
    assert [a.model_version for a in answers] == [1] * 8
    shadow = [(rid, version, ok) for route, rid, version, ok in t.seen.outcomes if route == "shadow"]
    assert sorted(shadow) == sorted((f"r{i}", 2, False) for i in range(8))


def test_a_stalled_shadow_drops_its_copies_and_the_primary_answers_as_always(table):
    t = table
    promote_by_hand(t.reg, 1)
    register_torch_model(t.reg, "mlp", mlp(2), MLP_SCHEMA)
    TrafficBook(t.reg).set("mlp", TrafficPolicy(shadows={2: 1.0}), actor="test")
    t.run(t.live.sync())
    hold = threading.Event()
    t.plane.models["mlp"][2].compute_thread.submit(hold.wait)  # the shadow computes nothing until released

    async def calls():
        return [await t.plane.infer(request(), 0.0, 0.0) for _ in range(20)]

    try:
        answers = t.run(calls())
    finally:
        hold.set()
    assert [a.model_version for a in answers] == [1] * 20
    counters = {tuple([n, *lab]): v for (n, lab), v in t.recorder.drain()["counters"]}
    # the shadow's queue holds 4 (one more computes): the other copies were dropped and counted
    assert counters[(SHADOW_DROPPED_METRIC, "mlp", "2")] >= 20 - 4 - 1


def test_a_replica_that_starts_after_a_broken_promotion_serves_the_previous_production(table):
    t = table
    promote_by_hand(t.reg, 1)
    files = {"model.pt": b"not a torchscript archive", "schema.json": MLP_SCHEMA.model_dump_json().encode()}
    promote_by_hand(t.reg, t.reg.publish("mlp", files).version)  # version 2, production, cannot load
    cfg = ServingConfig(torch_num_threads=1, load_retry_s=30.0)
    plane = DataPlane.load(t.reg, cfg)  # a replica starting now

    async def check():
        live = LiveModels(plane, t.reg, cfg, monotonic=t.ticks)
        answer = await plane.infer(request(), 0.0, 0.0)
        changed = await live.sync()  # version 2 waits for its retry: nothing changes
        await live.close()
        await plane.close()
        return answer, changed, live.status()["mlp"]

    answer, changed, status = t.run(check())
    assert answer.model_version == 1 and changed is False
    assert status["serving"] == [1] and list(status["failed"]) == ["2"]
