"""Dynamic batching across concurrent callers, on one asyncio loop. No Ray.

Contract:

* ``submit`` returns exactly the result computed for that item; an item's rows are
  never split across batches nor mixed with another item's result.
* Admission is bounded: with ``max_queue_size`` items waiting, ``submit`` raises
  :class:`Overloaded` at once (the transport answers 503 with ``Retry-After``).
* An item whose deadline passes while queued is never computed: its caller gets
  :class:`DeadlineExceeded`. A caller that goes away (task cancelled) is dropped too.
* An idle runner takes what is queued at once: no request waits out a timeout when
  nothing else is running. ``batch_wait_timeout_s`` only applies under load (the last
  batch held several requests and more arrived while it ran): then a batch waits at
  most that long to fill up.
* If a batch fails, its items are retried one by one so a bad item fails alone.
* ``on_batch``, the batcher's one listener, hears once per computed batch, before any
  of its callers resumes: the batch's shape and timing, and the items that got a result
  (their opaque ``tag``, payload and result, plus the batch function's whole return when
  the batch ran as one and every item in it got its result). The data plane observes
  successes per batch, not per request.
* Admission (:meth:`check_admission`) is the caller's to ask once: :meth:`submit` asks
  it and queues; :meth:`enqueue` queues what the caller admitted already.
* ``close()`` fails queued and in-flight items with :class:`Overloaded` (retryable);
  later submits are refused the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from contracts.errors import DeadlineExceeded, Overloaded

log = logging.getLogger("mlgate.serving")

P = TypeVar("P")
R = TypeVar("R")
BatchFn = Callable[[Sequence[P]], Sequence[R]]


@dataclass(eq=False)
class _Item(Generic[P]):
    payload: P
    rows: int
    deadline: float | None  # time.monotonic() seconds
    future: asyncio.Future
    tag: Any = None  # the caller's, passed back in the batch report
    enqueued_at: float = field(default_factory=time.monotonic)
    queued: bool = True


@dataclass(frozen=True)
class BatchStats:
    """What one dispatched batch looked like (for metrics)."""

    rows: int
    items: int
    queue_wait_s: tuple[float, ...]
    compute_s: float


@dataclass(frozen=True)
class BatchReport(Generic[P, R]):
    """One computed batch, as ``on_batch`` hears it."""

    stats: BatchStats
    tags: list[Any]  # of the items that got a result, in batch order
    payloads: list[P]  # theirs
    results: list[R]  # theirs
    whole: Sequence[R] | None  # the batch function's return when it ran as one call for all of them



class Batcher(Generic[P, R]):
    def __init__(
        self,
        fn: BatchFn,
        executor: Executor,
        *,
        max_batch_size: int = 64,
        batch_wait_timeout_s: float = 0.0,
        max_queue_size: int = 1024,
        retry_after_s: float = 1.0,
        on_batch: Callable[[BatchReport[P, R]], None] | None = None,
        service_time: ServiceTime | None = None,
    ) -> None:
        self._fn = fn
        self.service_time = service_time or ServiceTime()
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.batch_wait_timeout_s = batch_wait_timeout_s
        self.max_queue_size = max_queue_size
        self.retry_after_s = retry_after_s
        self._on_batch = on_batch
        self._queue: deque[_Item[P]] = deque()
        self._queued_rows = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._last_batch_items = 0
        self._closed = False
        self._idle = True  # the dispatcher waits for work (no batch computing)
        self._drained: asyncio.Event | None = None  # set when the dispatcher next finds nothing to do

    @property
    def queued(self) -> int:
        return len(self._queue)

    def check_admission(self, rows: int, deadline: float | None) -> None:
        """Raise what :meth:`submit` would refuse with now (503 queue full or closing, 504
        deadline that cannot be met), without queueing: transports call it before decoding."""
        if self._closed:
            raise Overloaded("model is shutting down", self.retry_after_s)
        if len(self._queue) >= self.max_queue_size:
            raise Overloaded(f"queue full ({self.max_queue_size} requests waiting)", self.retry_after_s)
        if deadline is not None:
            now = time.monotonic()
            if now >= deadline:
                raise DeadlineExceeded("deadline passed before the request was queued")
            wait_s = self.service_time.wait_s(self._queued_rows + rows, self.max_batch_size)
            if now + wait_s > deadline:  # answer the 504 now, without queueing or computing
                raise DeadlineExceeded(f"deadline cannot be met: about {wait_s * 1e3:.0f} ms of work queued ahead")

    async def submit(self, payload: P, rows: int, deadline: float | None = None, tag: Any = None) -> R:
        """Admit (:meth:`check_admission`), queue and wait for this item's result."""
        self.check_admission(rows, deadline)
        return await self.enqueue(payload, rows, deadline, tag)

    async def enqueue(self, payload: P, rows: int, deadline: float | None = None, tag: Any = None) -> R:
        """Queue an item its caller admitted and wait for its result (``tag`` comes back
        in the batch's report)."""
        if self._closed:
            raise Overloaded("model is shutting down", self.retry_after_s)
        self._ensure_running()
        item = _Item(payload, rows, deadline, asyncio.get_running_loop().create_future(), tag)
        self._queue.append(item)
        self._queued_rows += rows
        self._wakeup.set()
        try:
            if deadline is None:
                return await item.future
            return await asyncio.wait_for(asyncio.shield(item.future), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            if item.future.done() and not item.future.cancelled() and item.future.exception() is None:
                return item.future.result()  # it was answered as the timer fired: the answer stands
            raise DeadlineExceeded("deadline exceeded while waiting for the model") from None
        finally:
            if not item.future.done():
                item.future.cancel()  # the dispatcher skips it; no compute is spent
            if item.queued:  # abandoned while queued: it no longer counts against the queue
                self._queue.remove(item)
                self._unqueue(item)

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every item queued or computing now has its answer (its caller stops
        sending new ones first); True when that happened within ``timeout_s``."""
        if self._task is None or self._task.done() or (self._idle and not self._queue):
            return True
        self._drained = drained = asyncio.Event()
        try:
            await asyncio.wait_for(drained.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._drained = None

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._queue:
            item = self._pop()
            if not item.future.done():
                item.future.set_exception(Overloaded("model is shutting down", self.retry_after_s))

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._last_batch_items = 0  # idle: the next request runs at once
                self._idle = True
                if self._drained is not None:
                    self._drained.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            self._idle = False
            await asyncio.sleep(0)  # let requests already received reach the queue
            await self._maybe_wait_to_fill()
            batch = self._take()
            if batch:
                await self._dispatch(batch)

    async def _maybe_wait_to_fill(self) -> None:
        if self.batch_wait_timeout_s <= 0 or self._last_batch_items <= 1:
            return
        give_up = time.monotonic() + self.batch_wait_timeout_s
        while self._queued_rows < self.max_batch_size and (left := give_up - time.monotonic()) > 0:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except TimeoutError:
                return

    def _take(self) -> list[_Item[P]]:
        batch: list[_Item[P]] = []
        rows = 0
        now = time.monotonic()
        while self._queue:
            item = self._queue[0]
            if item.future.done():  # cancelled or timed out while queued
                self._pop()
                continue
            if item.deadline is not None and now + self.service_time.batch_s >= item.deadline:
                # it would finish too late: answer its 504 now and spend the compute on others
                left_ms = max(0.0, item.deadline - now) * 1e3
                self._pop().future.set_exception(DeadlineExceeded(
                    f"deadline cannot be met: {left_ms:.0f} ms left in the queue, a batch takes about "
                    f"{self.service_time.batch_s * 1e3:.0f} ms"))
                continue
            if batch and rows + item.rows > self.max_batch_size:
                break
            batch.append(self._pop())
            rows += item.rows
        return batch

    def _pop(self) -> _Item[P]:
        item = self._queue.popleft()
        self._unqueue(item)
        return item

    def _unqueue(self, item: _Item[P]) -> None:
        item.queued = False
        self._queued_rows -= item.rows

    async def _dispatch(self, batch: list[_Item[P]]) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            results, whole = await loop.run_in_executor(self._executor, _run_isolated, self._fn,
                                                        [i.payload for i in batch])
        except asyncio.CancelledError:  # close() while computing: nobody may wait forever
            _fail(batch, Overloaded("model is shutting down", self.retry_after_s))
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. the executor is shut down
            _fail(batch, exc)
            return
        compute_s = time.monotonic() - started
        self._last_batch_items = len(batch)
        self.service_time.observe(compute_s)
        done: list[_Item[P]] = []
        values: list[R] = []
        for item, (ok, value) in zip(batch, results):
            if item.future.done():
                continue
            if ok:
                item.future.set_result(value)
                done.append(item)
                values.append(value)
            else:
                item.future.set_exception(value)
        if self._on_batch is not None:
            stats = BatchStats(sum(i.rows for i in batch), len(batch), tuple(started - i.enqueued_at for i in batch),
                               compute_s)
            report = BatchReport(stats, [i.tag for i in done], [i.payload for i in done], values,
                                 whole if len(done) == len(batch) else None)
            try:  # before any caller resumes: they run on this loop after this call
                self._on_batch(report)
            except Exception:  # noqa: BLE001 - observers must never fail requests or stop the runner
                log.exception("on_batch callback failed")


def _fail(batch: list[_Item[Any]], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)


class ServiceTime:
    """Moving average of the time one batch takes, to estimate a new request's wait.

    A request whose deadline cannot be met given the rows queued ahead of it gets its
    504 at admission, instead of holding a queue slot only to time out.
    """

    def __init__(self, batch_s: float = 0.0, weight: float = 0.2) -> None:
        self.batch_s = batch_s
        self.weight = weight

    def observe(self, batch_s: float) -> None:
        self.batch_s = batch_s if self.batch_s == 0.0 else (1 - self.weight) * self.batch_s + self.weight * batch_s

    def wait_s(self, rows_ahead: int, max_batch_size: int) -> float:
        """Batches before and including the new request's, plus the one running now."""
        return (-(-rows_ahead // max_batch_size) + 1) * self.batch_s


def _run_isolated(fn: BatchFn, payloads: list[Any]) -> tuple[list[tuple[bool, Any]], Any]:
    """Run a batch; if it fails, run each payload alone so only the bad one fails.
    Returns ``(ok, result or exception)`` per payload, and ``fn``'s return when the batch
    ran as one call (None when it was split)."""
    try:
        out = fn(payloads)
        if len(out) != len(payloads):
            raise RuntimeError(f"batch function returned {len(out)} results for {len(payloads)} inputs")
        return [(True, r) for r in out], out
    except Exception as exc:  # noqa: BLE001 - isolate below
        if len(payloads) == 1:
            return [(False, exc)], None
    results = []
    for payload in payloads:
        try:
            results.append((True, fn([payload])[0]))
        except Exception as exc:  # noqa: BLE001 - delivered to that item's caller
            results.append((False, exc))
    return results, None
