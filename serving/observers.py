"""Observers of answered requests, on the request path: metrics tallies, error-log lines,
prediction-log rows.

Each only appends under a lock; a drain turns what piled up into the real thing in bulk,
off the request path: the metrics recorder's drain folds the tallies into counters and
histograms (:meth:`MetricsObserver.collect`), the prediction log's writer thread turns
buffered rows into Parquet segments (``serving.predlog``).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np
import orjson

from contracts.prometheus import MetricsRecorder
from registry.schema import ModelSchema
from serving.config import PredictionLogConfig
from serving.outcomes import UNKNOWN_MODEL, BatchOutcome, Outcome
from serving.types import InferenceRequest

errors_log = logging.getLogger("mlgate.errors")


class MetricsObserver:
    """Request and batch metrics. The request path only appends to per-label lists under
    one lock (a batch's answers at once); :meth:`collect` (run by every drain of the
    recorder) turns them into counters and histograms in bulk. ``inflight``: the data
    plane's count of requests in flight (read at each drain)."""

    def __init__(self, recorder: MetricsRecorder, known_models: Collection[str],
                 inflight: dict[tuple[str, str], int] | None = None,
                 served_versions: Callable[[str], Collection[str]] | None = None) -> None:
        """Only served names become label values: a model not in ``known_models`` is
        ``_unknown``, and so is a version a client named that ``served_versions(model)`` does
        not hold (clients must not mint series)."""
        self.m = recorder
        self.known = known_models
        self.served_versions = served_versions
        self.inflight = inflight if inflight is not None else {}
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str, int], tuple[list[float], list[int]]] = {}
        self._rejections: dict[tuple[str, str, str, str], int] = {}
        self._batches: dict[tuple[str, str], tuple[list[int], list[float], list[float]]] = {}
        recorder.add_collector(self.collect)

    def _tally(self, key: tuple[str, str, str, int]) -> tuple[list[float], list[int]]:
        tally = self._requests.get(key)
        if tally is None:
            tally = self._requests[key] = ([], [])
        return tally

    def observe_batch(self, b: BatchOutcome) -> None:
        model, stats, requests = b.model, b.stats, b.requests
        with self._lock:
            version = str(model.version)
            batch = self._batches.get((model.name, version))
            if batch is None:
                batch = self._batches[(model.name, version)] = ([], [], [])
            batch[0].append(stats.rows)
            batch[1].append(stats.compute_s)
            batch[2].extend(stats.queue_wait_s)
            if not requests:
                return
            route = requests[0].route
            if all(r.route == route for r in requests):
                tally = self._tally((model.name, version, route, 200))
                tally[0].extend(b.latency_s)
                tally[1].extend(b.rows)
                return
            for request, latency_s, rows in zip(requests, b.latency_s, b.rows):
                tally = self._tally((model.name, version, request.route, 200))
                tally[0].append(latency_s)
                tally[1].append(rows)

    def observe(self, o: Outcome) -> None:
        request = o.request
        name = request.model if request.model in self.known else UNKNOWN_MODEL
        version = o.version or ""
        if o.model is None and version and (name == UNKNOWN_MODEL or (
                self.served_versions is not None and version not in self.served_versions(name))):
            version = UNKNOWN_MODEL
        key = (name, version, request.route, o.status)
        rows = o.prepared.rows if o.prepared is not None else 0
        with self._lock:
            tally = self._tally(key)
            tally[0].append(o.latency_s)
            tally[1].append(rows)
            if o.kind is not None:
                reason_key = (name, version, request.route, o.kind.reason)
                self._rejections[reason_key] = self._rejections.get(reason_key, 0) + 1

    def collect(self) -> None:
        """Fold the tallies since the last call into the recorder."""
        with self._lock:
            requests, self._requests = self._requests, {}
            rejections, self._rejections = self._rejections, {}
            batches, self._batches = self._batches, {}
        inflight = dict(self.inflight)  # one C-level copy: consistent without a lock
        m = self.m
        for (name, version, route, status), (latencies_s, rows) in requests.items():
            labels = (name, version, route, str(status))
            m.inc("mlgate_requests_total", labels, len(latencies_s))
            m.inc("mlgate_rows_total", labels, sum(rows))
            m.observe_many("mlgate_request_duration_seconds", labels, latencies_s)
        for labels, count in rejections.items():
            m.inc("mlgate_rejections_total", labels, count)
        for labels, (rows, compute_s, waits_s) in batches.items():
            m.observe_many("mlgate_batch_size_rows", labels, rows)
            m.observe_many("mlgate_model_compute_seconds", labels, compute_s)
            m.observe_many("mlgate_queue_wait_seconds", labels, waits_s)
        for labels, count in inflight.items():
            m.set_gauge("mlgate_inflight_requests", labels, count)


@dataclass(slots=True)
class RequestRecord:
    """One request as the log keeps it: ``rows`` records with the contract's fixed columns
    (``contracts.predlog.FIXED_FIELDS``), and its input and output arrays by name, or None
    when the request never got that far (they are logged as nulls)."""

    request_id: str
    ts_us: int
    model: str
    version: str | None
    route: str
    status: int
    latency_ms: float
    error: str | None = None
    rows: int = 1
    inputs: dict[str, np.ndarray] | None = None
    outputs: dict[str, np.ndarray] | None = None
    schema: ModelSchema | None = None
    identity: str | None = None


class PendingRows:
    """Buffered records of one model version, column by column: a request adds plain
    values to per-column lists, a batch extends them, and inputs and outputs are kept as
    the arrays they came in (one entry per request or per batch, ``part_rows`` rows each).
    Nothing left behind is a container the garbage collector has to walk again and again
    (a dict per request would be, and full collections of a replica's heap then stall
    requests). The writer's flush builds Arrow columns from them (``serving.predlog``)."""

    def __init__(self, model: str, version: str | None, schema: ModelSchema | None) -> None:
        self.model, self.version, self.schema = model, version, schema
        self.request_id: list[str] = []
        self.ts_us: list[int] = []
        self.route: list[str] = []
        self.status: list[int] = []
        self.latency_ms: list[float] = []
        self.error: list[str | None] = []
        self.identity: list[str | None] = []
        self.rows: list[int] = []  # per request
        self.row_count = 0
        self.part_rows: list[int] = []  # rows of each entry of the input and output lists
        self.inputs: dict[str, list[np.ndarray | None]] = \
            {spec.name: [] for spec in schema.inputs} if schema is not None else {}
        self.outputs: dict[str, list[np.ndarray | None]] = \
            {spec.name: [] for spec in schema.outputs} if schema is not None else {}
        self._input_items = tuple(self.inputs.items())
        self._output_items = tuple(self.outputs.items())

    def add(self, r: RequestRecord) -> None:
        self.request_id.append(r.request_id)
        self.ts_us.append(r.ts_us)
        self.route.append(r.route)
        self.status.append(r.status)
        self.latency_ms.append(r.latency_ms)
        self.error.append(r.error)
        self.identity.append(r.identity)
        self.rows.append(r.rows)
        self._add_arrays(r.rows, r.inputs, r.outputs)

    def add_answered(self, request_ids: list[str], ts_us: list[int], routes: list[str], latency_ms: list[float],
                     rows: list[int], total: int, inputs: dict[str, np.ndarray],
                     outputs: dict[str, np.ndarray], identities: list[str | None]) -> None:
        """Several answered requests (status 200) whose ``total`` rows are in ``inputs``/``outputs``."""
        self.request_id.extend(request_ids)
        self.ts_us.extend(ts_us)
        self.route.extend(routes)
        self.status.extend(repeat(200, len(request_ids)))
        self.latency_ms.extend(latency_ms)
        self.error.extend(repeat(None, len(request_ids)))
        self.identity.extend(identities)
        self.rows.extend(rows)
        self._add_arrays(total, inputs, outputs)

    def _add_arrays(self, rows: int, inputs: dict[str, np.ndarray] | None,
                    outputs: dict[str, np.ndarray] | None) -> None:
        self.row_count += rows
        self.part_rows.append(rows)
        for arrays, items in ((inputs, self._input_items), (outputs, self._output_items)):
            if arrays is None:
                for _, column in items:
                    column.append(None)
            else:
                for name, column in items:
                    column.append(arrays.get(name))


class PredictionBuffer:
    """The prediction log's request side: answered requests kept as rows, column by column,
    per model version, until the writer (``serving.predlog.PredictionLogWriter``) takes them.
    Bounded: beyond ``max_buffer_rows`` new records are dropped and counted; at ``max_rows``
    the writer is woken. Thread-safe (one lock)."""

    def __init__(self, cfg: PredictionLogConfig, metrics: MetricsRecorder | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.full = threading.Event()  # max_rows reached, or closing: the writer flushes now
        self._buf: dict[tuple[str, str | None, int], PendingRows] = {}
        self._rows = 0
        self._lock = threading.Lock()
        self._closed = False

    def record(self, r: RequestRecord) -> None:
        """One answered request (``r.rows`` records)."""
        with self._lock:
            pending = self._reserve(r.model, r.version, r.schema, r.rows)
            if pending is not None:
                pending.add(r)

    def record_batch(self, model: str, version: str, schema: ModelSchema, requests: list[InferenceRequest],
                     latency_s: list[float], wall_start_s: list[float], rows: list[int],
                     inputs: dict[str, np.ndarray],
                     outputs: dict[str, np.ndarray]) -> None:
        """Requests one batch answered (status 200), with their latencies, arrival times (wall
        clock, epoch seconds) and rows: ``inputs``/``outputs`` hold their rows, concatenated in
        request order."""
        total = sum(rows)
        ids = [r.request_id for r in requests]
        ts_us = [int(s * 1e6) for s in wall_start_s]
        routes = [r.route for r in requests]
        identities = [r.identity for r in requests]
        latency_ms = [x * 1e3 for x in latency_s]
        with self._lock:
            pending = self._reserve(model, version, schema, total)
            if pending is not None:
                pending.add_answered(ids, ts_us, routes, latency_ms, rows, total, inputs, outputs, identities)

    def _reserve(self, model: str, version: str | None, schema: ModelSchema | None, rows: int) -> PendingRows | None:
        """Under the lock: room for ``rows`` records and the buffer they go to, or None when
        the policy drops them (counted)."""
        if self._closed or self._rows + rows > self.cfg.max_buffer_rows:
            reason = "closed" if self._closed else "buffer_full"
            self._count("mlgate_predlog_records_dropped_total", (model, reason), rows)
            return None
        key = (model, version, id(schema))
        pending = self._buf.get(key)
        if pending is None:
            pending = self._buf[key] = PendingRows(model, version, schema)
        self._rows += rows
        if self._rows >= self.cfg.max_rows:
            self.full.set()
        return pending

    def take(self) -> list[PendingRows]:
        """Everything buffered now, emptying the buffer (the writer's flush)."""
        with self._lock:
            pending, self._buf, self._rows = self._buf, {}, 0
        return list(pending.values())

    def close(self) -> None:
        """Later records are dropped (counted as ``closed``); what is buffered stays for the writer."""
        with self._lock:
            self._closed = True
        self.full.set()

    def _count(self, name: str, labels: tuple[str, ...], value: float) -> None:
        if self.metrics is not None:
            self.metrics.inc(name, labels, value)


class PredictionLogObserver:
    """Every answered request of a served model goes to the prediction log's buffer as it is."""

    def __init__(self, buffer: PredictionBuffer, known_models: Collection[str]) -> None:
        self.buffer = buffer
        self.known = known_models

    def observe_batch(self, b: BatchOutcome) -> None:
        if b.requests:
            model = b.model
            self.buffer.record_batch(model.name, str(model.version), model.schema, b.requests, b.latency_s,
                                      b.wall_start_s, b.rows, b.inputs, b.outputs)

    def observe(self, o: Outcome) -> None:
        request = o.request
        if request.model not in self.known:
            return  # no log partition for names a client made up
        prepared, model = o.prepared, o.model
        if prepared is None:
            inputs, rows = None, 1
        else:
            inputs = prepared.columns if prepared.columns is not None else \
                {model.schema.inputs[0].name: prepared.tensor}
            rows = prepared.rows
        detail = o.kind.detail if o.kind is not None else None
        self.buffer.record(RequestRecord(
            request.request_id, int(o.wall_start_s * 1e6), request.model, o.version, request.route, o.status,
            o.latency_s * 1e3, detail, rows, inputs, o.outputs, model.schema if model is not None else None,
            request.identity))


class ErrorLogObserver:
    """JSON lines for every error answer: request id, model, version, status, message."""

    def __init__(self, include_inputs: bool = False) -> None:
        self.include_inputs = include_inputs

    def observe_batch(self, b: BatchOutcome) -> None:
        return None  # answered: no errors

    def observe(self, o: Outcome) -> None:
        if o.error is None:
            return
        record = {"event": "request_error", "request_id": o.request.request_id, "model": o.request.model,
                  "version": o.version,
                  "route": o.request.route, "status": o.status, "error": o.kind.detail}
        if self.include_inputs and o.prepared is not None and o.prepared.columns is not None:
            record["inputs"] = {k: v.tolist() for k, v in o.prepared.columns.items()}
        line = orjson.dumps(record, default=str).decode()
        if not o.kind.expected:
            errors_log.error(line)
        else:
            errors_log.warning(line)


# -- Triton's model statistics (the gRPC ModelStatistics) ----------------------------------------
# Counts are this replica's since it started (a call reaches one replica; the cluster-wide numbers
# are the Prometheus metrics); requests that never reached a version are no version's.


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.count += count
        self.ns += int(seconds * 1e9)


@dataclass
class VersionStats:
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute: Duration = field(default_factory=Duration)
    inference_count: int = 0  # rows
    execution_count: int = 0  # batches
    last_inference_ms: int = 0  # epoch milliseconds
    batches: dict[int, Duration] = field(default_factory=lambda: defaultdict(Duration))


class StatisticsObserver:
    """An observer of the data plane (appends under a lock, as the others do)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, int], VersionStats] = defaultdict(VersionStats)

    def observe_batch(self, b: BatchOutcome) -> None:
        stats = b.stats
        with self._lock:
            s = self._stats[(b.model.name, b.model.version)]
            s.execution_count += 1
            s.compute.add(stats.compute_s)
            s.batches[stats.rows].add(stats.compute_s)
            for wait_s in stats.queue_wait_s:
                s.queue.add(wait_s)
            for latency_s in b.latency_s:
                s.success.add(latency_s)
            s.inference_count += sum(b.rows)
            if b.wall_start_s:
                s.last_inference_ms = max(s.last_inference_ms, int(max(b.wall_start_s) * 1000))

    def observe(self, o: Outcome) -> None:
        if o.model is None:
            return
        with self._lock:
            s = self._stats[(o.model.name, o.model.version)]
            (s.fail if o.error is not None else s.success).add(o.latency_s)
            if o.error is None and o.prepared is not None:
                s.inference_count += o.prepared.rows
            s.last_inference_ms = max(s.last_inference_ms, int(o.wall_start_s * 1000))

    def snapshot(self) -> dict[tuple[str, int], VersionStats]:
        """A copy of the tallies by (model, version)."""
        with self._lock:
            return {key: VersionStats(Duration(s.success.count, s.success.ns), Duration(s.fail.count, s.fail.ns),
                                      Duration(s.queue.count, s.queue.ns), Duration(s.compute.count, s.compute.ns),
                                      s.inference_count, s.execution_count, s.last_inference_ms,
                                      {k: Duration(d.count, d.ns) for k, d in s.batches.items()})
                    for key, s in self._stats.items()}
