"""The Batcher contract, driven with events (never sleeps): results per caller, order,
batch limits, admission, deadlines, cancellation, failure isolation, idle dispatch, close."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from contracts.errors import DeadlineExceeded, Overloaded
from serving.batching import Batcher, BatchReport, BatchStats

SAFETY_S = 10.0  # a bound so a broken contract fails instead of hanging; never a timing assertion


@pytest.fixture
def executor():
    pool = ThreadPoolExecutor(1, thread_name_prefix="test-batcher")
    yield pool
    pool.shutdown(wait=True)


class Recorder:
    """A batch function: each payload is ``(caller_id, rows)``; every row comes back as
    ``row * 10 + caller_id`` computed on the concatenated batch, then split by caller
    (as the model pipeline does). Records the caller ids of every call."""

    def __init__(self, gate_first: int = 0, fail_on: set | None = None) -> None:
        self.calls: list[list[int]] = []
        self.gate_first = gate_first  # how many calls block on `release`
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on or set()

    def __call__(self, payloads):
        ids = [cid for cid, _ in payloads]
        self.calls.append(ids)
        if len(self.calls) <= self.gate_first:
            self.entered.set()
            assert self.release.wait(SAFETY_S), "test never released the gate"
        if self.fail_on & set(ids):
            raise ValueError(f"bad item among {ids}")
        rows = np.concatenate([r for _, r in payloads])
        tags = np.concatenate([np.full(len(r), cid) for cid, r in payloads])
        out = rows * 10 + tags
        bounds = np.cumsum([0] + [len(r) for _, r in payloads])
        return [out[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    @property
    def seen(self) -> list[int]:
        return [cid for call in self.calls for cid in call]


def expected(cid: int, rows: np.ndarray) -> np.ndarray:
    return rows * 10 + cid


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, SAFETY_S))


async def until(predicate, max_yields: int = 10_000) -> None:
    """Yield to the loop until ``predicate()`` holds (bounded by yields, not time)."""
    for _ in range(max_yields):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def entered(fn: Recorder) -> None:
    """Wait (off the loop) until the batch function is inside its gated call."""
    ok = await asyncio.get_running_loop().run_in_executor(None, fn.entered.wait, SAFETY_S)
    assert ok, "the batch function was never called"


def payload(cid: int, n: int) -> tuple[int, np.ndarray]:
    return cid, np.arange(n, dtype=np.float64) + 1000 * cid


def test_each_caller_gets_exactly_its_own_rows(executor):
    fn = Recorder()
    batcher = Batcher(fn, executor, max_batch_size=16, max_queue_size=1000)
    rng = random.Random(7)
    sizes = [rng.randint(1, 7) for _ in range(120)]

    async def main():
        results = await asyncio.gather(*(batcher.submit(payload(i, n), n) for i, n in enumerate(sizes)))
        await batcher.close()
        return results

    results = run(main())
    for i, (n, got) in enumerate(zip(sizes, results)):
        np.testing.assert_array_equal(got, expected(i, payload(i, n)[1]))
    assert sorted(fn.seen) == list(range(len(sizes)))  # every item computed exactly once
    assert any(len(call) > 1 for call in fn.calls)  # callers really shared batches
    for call in fn.calls:
        assert sum(sizes[i] for i in call) <= 16


def test_items_are_dispatched_in_arrival_order(executor):
    fn = Recorder()
    batcher = Batcher(fn, executor, max_batch_size=5)

    async def main():
        await asyncio.gather(*(batcher.submit(payload(i, 1 + i % 3), 1 + i % 3) for i in range(40)))
        await batcher.close()

    run(main())
    assert fn.seen == list(range(40))


def test_max_batch_size_is_respected_and_a_bigger_request_runs_alone(executor):
    fn = Recorder()
    batcher = Batcher(fn, executor, max_batch_size=4)
    sizes = [2, 10, 2, 2, 1, 3]

    async def main():
        results = await asyncio.gather(*(batcher.submit(payload(i, n), n) for i, n in enumerate(sizes)))
        await batcher.close()
        return results

    results = run(main())
    assert [len(r) for r in results] == sizes  # the big request's rows were never split
    assert [1] in fn.calls
    for call in fn.calls:
        if 1 in call:
            assert call == [1]
        else:
            assert sum(sizes[i] for i in call) <= 4


def test_requests_arriving_while_a_batch_computes_form_the_next_batch(executor):
    fn = Recorder(gate_first=1)
    batcher = Batcher(fn, executor, max_batch_size=64, batch_wait_timeout_s=0.0)

    async def main():
        first = asyncio.ensure_future(batcher.submit(payload(0, 1), 1))
        await entered(fn)
        rest = [asyncio.ensure_future(batcher.submit(payload(i, 2), 2)) for i in (1, 2, 3)]
        await until(lambda: batcher.queued == 3)
        fn.release.set()
        await asyncio.gather(first, *rest)
        await batcher.close()

    run(main())
    assert fn.calls == [[0], [1, 2, 3]]


def test_under_load_a_batch_waits_to_fill_up(executor):
    """After a batch of several requests, the next one waits (up to batch_wait_timeout_s)
    until max_batch_size rows are queued: here it fills, so nothing waits out the timeout."""
    fn = Recorder(gate_first=1)
    batcher = Batcher(fn, executor, max_batch_size=3, batch_wait_timeout_s=30.0)

    async def main():
        a = asyncio.ensure_future(batcher.submit(payload(0, 1), 1))
        b = asyncio.ensure_future(batcher.submit(payload(1, 1), 1))
        await entered(fn)  # [a, b] computing
        c = asyncio.ensure_future(batcher.submit(payload(2, 1), 1))
        await until(lambda: batcher.queued == 1)
        fn.release.set()
        await asyncio.gather(a, b)
        d = asyncio.ensure_future(batcher.submit(payload(3, 1), 1))
        e = asyncio.ensure_future(batcher.submit(payload(4, 1), 1))
        await asyncio.gather(c, d, e)
        await batcher.close()

    run(main())
    assert fn.calls == [[0, 1], [2, 3, 4]]


def test_queue_full_raises_overloaded_at_once(executor):
    fn = Recorder(gate_first=1)
    batcher = Batcher(fn, executor, max_queue_size=2, retry_after_s=2.5)

    async def main():
        running = asyncio.ensure_future(batcher.submit(payload(0, 1), 1))
        await entered(fn)
        queued = [asyncio.ensure_future(batcher.submit(payload(i, 1), 1)) for i in (1, 2)]
        await until(lambda: batcher.queued == 2)
        refused = asyncio.ensure_future(batcher.submit(payload(3, 1), 1))
        await until(refused.done)  # answered while the model is still busy
        assert not running.done()
        with pytest.raises(Overloaded) as info:
            refused.result()
        assert info.value.retry_after_s == 2.5
        assert int(info.value.status) == 503
        fn.release.set()
        results = await asyncio.gather(running, *queued)
        await batcher.close()
        return results

    results = run(main())
    assert len(results) == 3
    assert 3 not in fn.seen


def test_deadline_passed_while_queued_is_never_computed(executor):
    fn = Recorder(gate_first=1)
    batcher = Batcher(fn, executor, max_queue_size=1)

    async def main():
        running = asyncio.ensure_future(batcher.submit(payload(0, 1), 1))
        await entered(fn)
        with pytest.raises(DeadlineExceeded):
            await batcher.submit(payload(1, 1), 1, deadline=time.monotonic() + 0.05)
        # the expired item no longer takes a queue slot
        assert batcher.queued == 0
        later = asyncio.ensure_future(batcher.submit(payload(2, 1), 1))
        await until(lambda: batcher.queued == 1)
        fn.release.set()
        await asyncio.gather(running, later)
        await batcher.close()

    run(main())
    assert fn.seen == [0, 2]  # the expired item cost no compute


def test_deadline_already_passed_is_refused_before_queueing(executor):
    fn = Recorder()
    batcher = Batcher(fn, executor)

    async def main():
        with pytest.raises(DeadlineExceeded) as info:
            await batcher.submit(payload(0, 1), 1, deadline=time.monotonic() - 1.0)
        assert int(info.value.status) == 504
        await batcher.close()

    run(main())
    assert fn.calls == []


def test_cancelled_caller_is_dropped(executor):
    fn = Recorder(gate_first=1)
    batcher = Batcher(fn, executor)

    async def main():
        running = asyncio.ensure_future(batcher.submit(payload(0, 1), 1))
        await entered(fn)
        gone = asyncio.ensure_future(batcher.submit(payload(1, 1), 1))
        kept = asyncio.ensure_future(batcher.submit(payload(2, 1), 1))
        await until(lambda: batcher.queued == 2)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert batcher.queued == 1
        fn.release.set()
        first, last = await asyncio.gather(running, kept)
        await batcher.close()
        return first, last

    first, last = run(main())
    assert fn.seen == [0, 2]
    np.testing.assert_array_equal(last, expected(2, payload(2, 1)[1]))


def test_a_failing_item_fails_alone(executor):
    fn = Recorder(gate_first=1, fail_on={3})
    batcher = Batcher(fn, executor, max_batch_size=64)

    async def main():
        first = asyncio.ensure_future(batcher.submit(payload(0, 1), 1))
        await entered(fn)
        rest = [asyncio.ensure_future(batcher.submit(payload(i, 2), 2)) for i in range(1, 6)]
        await until(lambda: batcher.queued == 5)
        fn.release.set()
        out = await asyncio.gather(first, *rest, return_exceptions=True)
        await batcher.close()
        return out

    out = run(main())
    assert fn.calls[1] == [1, 2, 3, 4, 5]  # they were batched together first
    assert isinstance(out[3], ValueError)
    for i in (0, 1, 2, 4, 5):
        np.testing.assert_array_equal(out[i], expected(i, payload(i, 1 if i == 0 else 2)[1]))


def test_wrong_result_count_is_isolated_per_item(executor):
    def fn(payloads):
        if len(payloads) > 1:
            return [0]  # breaks the contract: one result for several inputs
        return [payloads[0] * 2]

    batcher = Batcher(fn, executor)

    async def main():
        out = await asyncio.gather(*(batcher.submit(i, 1) for i in range(6)))
        await batcher.close()
        return out

    assert run(main()) == [0, 2, 4, 6, 8, 10]


def test_idle_model_dispatches_immediately(executor):
    """A 30 s fill timeout never delays a request that finds the model idle, even right
    after a batch of several requests (the last batch's size must not count once idle)."""
    fn = Recorder()
    batcher = Batcher(fn, executor, max_batch_size=64, batch_wait_timeout_s=30.0)

    async def main():
        await asyncio.wait_for(batcher.submit(payload(0, 1), 1), SAFETY_S)
        await asyncio.wait_for(asyncio.gather(*(batcher.submit(payload(i, 1), 1) for i in (1, 2, 3))), SAFETY_S)
        await asyncio.wait_for(batcher.submit(payload(4, 1), 1), SAFETY_S)
        await batcher.close()

    run(main())
    assert fn.calls == [[0], [1, 2, 3], [4]]


def test_close_fails_queued_and_running_items_with_overloaded(executor):
    fn = Recorder(gate_first=1)
    batcher = Batcher(fn, executor)

    async def main():
        running = asyncio.ensure_future(batcher.submit(payload(0, 1), 1))
        await entered(fn)
        queued = [asyncio.ensure_future(batcher.submit(payload(i, 1), 1)) for i in (1, 2)]
        await until(lambda: batcher.queued == 2)
        await batcher.close()
        out = await asyncio.gather(running, *queued, return_exceptions=True)
        with pytest.raises(Overloaded):
            await batcher.submit(payload(3, 1), 1)
        fn.release.set()
        return out

    out = run(main())
    assert all(isinstance(o, Overloaded) for o in out), out
    assert fn.seen == [0]


def test_on_batch_reports_each_batch_and_its_failure_never_fails_requests(executor):
    stats: list[BatchStats] = []

    def on_batch(report: BatchReport) -> None:
        stats.append(report.stats)
        raise RuntimeError("metrics broke")

    fn = Recorder()
    batcher = Batcher(fn, executor, on_batch=on_batch)

    async def main():
        a = await batcher.submit(payload(0, 3), 3)
        b = await batcher.submit(payload(1, 2), 2)
        await batcher.close()
        return a, b

    a, b = run(main())
    assert len(a) == 3 and len(b) == 2
    assert [(s.rows, s.items, len(s.queue_wait_s)) for s in stats] == [(3, 1, 1), (2, 1, 1)]
    assert all(w >= 0 for s in stats for w in s.queue_wait_s) and all(s.compute_s >= 0 for s in stats)


def test_service_time_estimate():
    from serving.batching import ServiceTime

    est = ServiceTime(weight=0.5)
    assert est.wait_s(100, 64) == 0.0  # nothing measured yet: admit
    est.observe(0.010)
    assert est.batch_s == 0.010
    est.observe(0.030)
    assert est.batch_s == pytest.approx(0.020)
    # 65 rows ahead at 64 per batch: two batches, plus the one running now
    assert est.wait_s(65, 64) == pytest.approx(0.060)


def test_a_deadline_that_cannot_be_met_gets_its_504_at_admission(executor):
    from serving.batching import ServiceTime

    fn = Recorder(gate_first=1)
    batcher = Batcher(fn, executor, max_batch_size=4, retry_after_s=1.5, service_time=ServiceTime(batch_s=10.0))

    async def main():
        running = asyncio.ensure_future(batcher.submit(payload(0, 1), 1))
        await entered(fn)
        with pytest.raises(DeadlineExceeded) as info:  # ~20 s of work ahead, 1 s allowed
            await batcher.submit(payload(1, 1), 1, deadline=time.monotonic() + 1.0)
        assert int(info.value.status) == 504 and "cannot be met" in info.value.message
        assert batcher.queued == 0
        patient = asyncio.ensure_future(batcher.submit(payload(2, 1), 1))  # no deadline: admitted
        await until(lambda: batcher.queued == 1)
        fn.release.set()
        await asyncio.gather(running, patient)
        await batcher.close()

    run(main())
    assert 1 not in fn.seen


def test_a_queued_request_that_would_finish_past_its_deadline_is_not_computed(executor):
    from serving.batching import ServiceTime

    fn = Recorder(gate_first=1)
    batcher = Batcher(fn, executor, max_batch_size=1, service_time=ServiceTime(batch_s=0.5))

    async def main():
        running = asyncio.ensure_future(batcher.submit(payload(0, 1), 1))
        await entered(fn)
        late = asyncio.ensure_future(batcher.submit(payload(1, 1), 1, deadline=time.monotonic() + 60.0))
        await until(lambda: batcher.queued == 1)  # admitted: 1 s of work expected, 60 s allowed
        batcher.service_time.batch_s = 600.0  # batches have become slow: it can no longer finish in time
        fn.release.set()
        await running
        with pytest.raises(DeadlineExceeded) as info:
            await late
        assert "cannot be met" in info.value.message
        await batcher.close()

    run(main())
    assert fn.seen == [0]  # no compute spent on an answer that would come too late


def test_the_report_hears_each_answered_item_once_with_its_tag_and_the_whole_batch(executor):
    """Batches that ran whole pass the batch function's return; a split batch (a bad item)
    passes None and only the items that got a result; a listener's failure fails no one."""
    fn = Recorder(gate_first=1, fail_on={3})
    done: list[tuple] = []
    items: list[int] = []

    def on_batch(report: BatchReport) -> None:
        done.append((report.tags, [p[0] for p in report.payloads], report.results, report.whole))
        items.append(report.stats.items)
        if len(done) == 2:
            raise RuntimeError("an observer broke")

    batcher = Batcher(fn, executor, max_batch_size=64, on_batch=on_batch)

    async def main():
        first = asyncio.ensure_future(batcher.submit(payload(0, 1), 1, tag="t0"))
        await entered(fn)
        rest = [asyncio.ensure_future(batcher.submit(payload(i, 2), 2, tag=f"t{i}")) for i in range(1, 6)]
        await until(lambda: batcher.queued == 5)
        fn.release.set()
        out = await asyncio.gather(first, *rest, return_exceptions=True)
        last = await batcher.submit(payload(6, 1), 1, tag="t6")
        await batcher.close()
        return out, last

    out, last = run(main())
    assert isinstance(out[3], ValueError)
    assert [d[0] for d in done] == [["t0"], ["t1", "t2", "t4", "t5"], ["t6"]]
    assert items == [1, 5, 1]  # the split batch computed five items; four got a result
    assert [d[1] for d in done] == [[0], [1, 2, 4, 5], [6]]
    whole0 = done[0][3]
    assert whole0 is not None and len(whole0) == 1 and whole0[0] is done[0][2][0]
    assert done[1][3] is None  # split: no single batch return covers the answered items
    for _tags, ids, results, _ in done:
        for cid, result in zip(ids, results):
            np.testing.assert_array_equal(result, expected(cid, payload(cid, 1 if cid in (0, 6) else 2)[1]))
    np.testing.assert_array_equal(last, expected(6, payload(6, 1)[1]))


def test_drain_returns_once_the_queued_and_computing_items_are_answered(executor):
    fn = Recorder(gate_first=1)
    b = Batcher(fn, executor, max_batch_size=1)

    async def main():
        assert await b.drain(SAFETY_S)  # never used: drained at once
        first = asyncio.ensure_future(b.submit((1, np.array([1.0])), 1))
        await entered(fn)  # computing, blocked on the gate
        queued = [asyncio.ensure_future(b.submit((c, np.array([1.0])), 1)) for c in (2, 3)]
        await until(lambda: b.queued == 2)
        drain = asyncio.ensure_future(b.drain(SAFETY_S))
        await asyncio.sleep(0)
        assert not drain.done()
        fn.release.set()
        assert await drain
        assert all(q.done() for q in [first, *queued]) and b.queued == 0
        assert await b.drain(SAFETY_S)  # idle now: at once
        await b.close()

    run(main())
    assert fn.seen == [1, 2, 3]


def test_drain_gives_up_after_its_timeout_and_the_items_still_get_answers(executor):
    fn = Recorder(gate_first=1)
    b = Batcher(fn, executor, max_batch_size=1)

    async def main():
        first = asyncio.ensure_future(b.submit((1, np.array([1.0])), 1))
        await entered(fn)
        assert await b.drain(0.0) is False
        fn.release.set()
        assert (await first).tolist() == [11.0]
        await b.close()

    run(main())
