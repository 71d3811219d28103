"""The data plane tells its observers about every answered request exactly once: a
batch's answers together (inputs and outputs as the batch computed them), every other
answer alone; and it counts the requests in flight. Real demo model, real batcher."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from contracts.errors import InvalidInput
from registry import Registry
from serving.batching import BatchReport, BatchStats
from serving.config import ServingConfig
from serving.dataplane import DataPlane
from serving.outcomes import BatchOutcome, Outcome
from serving.protocol import decode_infer_request
from tests.reference import demo_rows, reference_probabilities, v2_inputs

SAFETY_S = 60.0


class Seen:
    """An observer that keeps what it hears; ``on_batch`` runs inside observe_batch."""

    def __init__(self) -> None:
        self.batches: list[BatchOutcome] = []
        self.singles: list[Outcome] = []
        self.on_batch = None

    def observe(self, outcome: Outcome) -> None:
        self.singles.append(outcome)

    def observe_batch(self, outcome: BatchOutcome) -> None:
        self.batches.append(outcome)
        if self.on_batch is not None:
            self.on_batch(outcome)


@pytest.fixture
def plane(demo_registry):
    seen = Seen()
    cfg = ServingConfig(torch_num_threads=1, default_model={"max_batch_size": 16, "batch_wait_timeout_s": 0.0})
    loop = asyncio.new_event_loop()
    dp = DataPlane.load(Registry(demo_registry), cfg, lambda plane: [seen])
    yield dp, seen, loop
    loop.run_until_complete(dp.close())
    loop.close()


def _request(schema, rows: list[dict], request_id: str, route: str = "v2"):
    body = json.dumps({"inputs": v2_inputs(schema, rows)}).encode()
    request = decode_infer_request(body, model="demo", version=None, header_length=None)
    request.request_id, request.route = request_id, route
    return request


def test_every_answer_is_observed_once_with_the_rows_its_batch_computed(plane, demo_registry):
    dp, seen, loop = plane
    version = Registry(demo_registry).get("demo")
    schema = version.schema
    rows = demo_rows(60, seed=3)
    chunks, start = [], 0
    for i in range(30):
        n = 1 + i % 3
        chunks.append(rows[start:start + n])
        start += n
    requests = [_request(schema, c, f"ok-{i}", route="v2" if i % 4 else "plain") for i, c in enumerate(chunks)]
    bad = _request(schema, chunks[0], "bad-0")
    bad.inputs = bad.inputs[1:]  # a missing input: 400, observed alone
    inflight_at_batches: list[int] = []
    seen.on_batch = lambda b: inflight_at_batches.append(sum(dp.inflight.values()))

    async def main():
        return await asyncio.gather(*(dp.infer(r, time.perf_counter(), time.time()) for r in requests + [bad]),
                                    return_exceptions=True)

    replies = loop.run_until_complete(asyncio.wait_for(main(), SAFETY_S))
    assert isinstance(replies[-1], InvalidInput)
    assert [o.request.request_id for o in seen.singles] == ["bad-0"] and seen.singles[0].status == 400
    batched = [r.request_id for b in seen.batches for r in b.requests]
    assert sorted(batched) == sorted(r.request_id for r in requests)  # each exactly once
    assert max(len(b.requests) for b in seen.batches) > 1  # batches of several requests were observed
    assert all(n >= len(b.requests) for n, b in zip(inflight_at_batches, seen.batches))
    assert set(dp.inflight.values()) == {0}
    reply_of = {r.request_id: reply for r, reply in zip(requests, replies)}
    chunk_of = {r.request_id: c for r, c in zip(requests, chunks)}
    for b in seen.batches:
        assert len(b.latency_s) == len(b.rows) == len(b.requests) and all(x > 0 for x in b.latency_s)
        bounds = np.cumsum([0] + b.rows)
        assert len(b.outputs["probabilities"]) == len(b.inputs["age"]) == bounds[-1]
        for request, lo, hi in zip(b.requests, bounds[:-1], bounds[1:]):
            rows_in = chunk_of[request.request_id]
            np.testing.assert_allclose(b.inputs["age"][lo:hi], [r["age"] for r in rows_in])
            got = b.outputs["probabilities"][lo:hi]
            np.testing.assert_allclose(got, reference_probabilities(version, rows_in), rtol=1e-5, atol=1e-6)
            answered = next(t for t in reply_of[request.request_id].outputs if t.name == "probabilities")
            np.testing.assert_array_equal(answered.data, got)


def test_a_client_gone_after_its_batch_answered_is_not_observed_twice(plane, demo_registry):
    dp, seen, loop = plane
    schema = Registry(demo_registry).get("demo").schema
    tasks: dict[str, asyncio.Task] = {}
    # the client of "gone" hangs up right after its batch answered, before it resumes
    seen.on_batch = lambda b: [tasks[r.request_id].cancel() for r in b.requests if r.request_id == "gone"]

    async def main():
        for rid in ("gone", "stays"):
            tasks[rid] = asyncio.ensure_future(dp.infer(_request(schema, demo_rows(1), rid), time.perf_counter(),
                                                        time.time()))
        return await asyncio.gather(*tasks.values(), return_exceptions=True)

    gone, stays = loop.run_until_complete(asyncio.wait_for(main(), SAFETY_S))
    assert isinstance(gone, asyncio.CancelledError) and not isinstance(stays, BaseException)
    assert sorted(r.request_id for b in seen.batches for r in b.requests) == ["gone", "stays"]
    assert seen.singles == []  # no second (499) record for the answered one
    assert set(dp.inflight.values()) == {0}


def test_a_batch_without_its_whole_return_is_gathered_from_the_answered_items(plane, demo_registry):
    """A split batch (a bad item retried alone) or one with callers gone passes no whole
    return: the answered items' payloads and results are concatenated instead."""
    dp, seen, _ = plane
    model = dp.model("demo")
    schema = model.schema
    chunks = [demo_rows(2, seed=1), demo_rows(1, seed=2), demo_rows(3, seed=3)]
    requests = [_request(schema, c, f"r{i}") for i, c in enumerate(chunks)]
    payloads = [model.pipeline.prepare(r.inputs) for r in requests]
    whole = model.pipeline.predict_split(payloads)
    calls = [dp.arrive(time.time()) for _ in requests]
    for call, request in zip(calls, requests):
        call.request = request
    stats = BatchStats(rows=6, items=3, queue_wait_s=(0.0,) * 3, compute_s=0.001)
    dp.batch_done(model, BatchReport(stats, calls, payloads, list(whole), whole))
    dp.batch_done(model, BatchReport(stats, calls, payloads, list(whole), None))
    a, b = seen.batches
    assert a.rows == b.rows == [2, 1, 3] and all(c.observed for c in calls)
    assert [r.request_id for r in a.requests] == ["r0", "r1", "r2"] and a.stats is stats
    for name in schema.feature_names:
        np.testing.assert_array_equal(a.inputs[name], b.inputs[name])
    for name in a.outputs:
        np.testing.assert_array_equal(a.outputs[name], b.outputs[name])
