"""Observers of answered requests: metrics, the prediction log, the error log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection

import orjson

from contracts.prometheus import MetricsRecorder
from serving.batching import BatchStats
from serving.dataplane import UNKNOWN_MODEL, BatchOutcome, Outcome
from serving.predlog import PredictionLogWriter, RequestRecord

errors_log = logging.getLogger("mlgate.errors")


class MetricsObserver:
    """Request and batch metrics. The request path only appends to per-label lists under
    one lock (a batch's answers at once); :meth:`collect` (run by every drain of the
    recorder) turns them into counters and histograms in bulk. ``inflight``: the data
    plane's count of requests in flight (read at each drain)."""

    def __init__(self, recorder: MetricsRecorder, known_models: set[str],
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
        requests = b.requests
        route = requests[0].route
        with self._lock:
            if all(r.route == route for r in requests):
                tally = self._tally((b.model.name, b.model.version, route, 200))
                tally[0].extend(b.latency_s)
                tally[1].extend(b.rows)
                return
            for request, latency_s, rows in zip(requests, b.latency_s, b.rows):
                tally = self._tally((b.model.name, b.model.version, request.route, 200))
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

    def batch(self, model: str, version: str, stats: BatchStats) -> None:
        with self._lock:
            tally = self._batches.get((model, version))
            if tally is None:
                tally = self._batches[(model, version)] = ([], [], [])
            tally[0].append(stats.rows)
            tally[1].append(stats.compute_s)
            tally[2].extend(stats.queue_wait_s)

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


class PredictionLogObserver:
    """Every answered request of a served model goes to the writer's buffer as it is."""

    def __init__(self, writer: PredictionLogWriter, known_models: set[str]) -> None:
        self.writer = writer
        self.known = known_models

    def observe_batch(self, b: BatchOutcome) -> None:
        model = b.model
        self.writer.record_batch(model.name, model.version, model.schema, b.requests, b.latency_s, b.rows,
                                 b.inputs, b.outputs)

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
        self.writer.record(RequestRecord(
            request.request_id, int(o.wall_start_s * 1e6), request.model, o.version, request.route, o.status,
            o.latency_s * 1e3, detail, rows, inputs, o.outputs, model.schema if model is not None else None))


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

