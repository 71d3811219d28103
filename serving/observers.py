"""Observers of answered requests: metrics, the prediction log, the error log."""

from __future__ import annotations

import logging

import orjson

from registry.errors import (DeadlineExceeded, InvalidInput, MlgateError, NotFound, Overloaded,
                             PayloadTooLarge)
from serving.batching import BatchStats
from serving.dataplane import Outcome
from registry.metrics import MetricsRecorder
from serving.predlog import Chunk, PredictionLogWriter
from serving.types import InferenceRequest

UNKNOWN_MODEL = "_unknown"
_REASONS = ((Overloaded, "queue_full"), (DeadlineExceeded, "deadline"), (PayloadTooLarge, "too_large"),
            (NotFound, "not_found"), (InvalidInput, "bad_input"))

errors_log = logging.getLogger("mlgate.errors")


def rejection_reason(error: BaseException) -> str:
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return "internal"


def model_label(outcome: Outcome, known: set[str]) -> str:
    """Label values never come from unknown names a client made up (bounded cardinality)."""
    name = outcome.request.model
    return name if name in known else UNKNOWN_MODEL


class MetricsObserver:
    def __init__(self, recorder: MetricsRecorder, known_models: set[str]) -> None:
        self.m = recorder
        self.known = known_models

    def begin(self, request: InferenceRequest) -> None:
        name = request.model if request.model in self.known else UNKNOWN_MODEL
        self.m.add_gauge("mlgate_inflight_requests", (name, request.route), 1)

    def observe(self, o: Outcome) -> None:
        name = model_label(o, self.known)
        version = o.model.version if o.model is not None else (o.request.version or "")
        route = o.request.route
        status = str(o.status)
        rows = o.prepared.rows if o.prepared is not None else 0
        self.m.add_gauge("mlgate_inflight_requests", (name, route), -1)
        self.m.inc("mlgate_requests_total", (name, version, route, status))
        self.m.inc("mlgate_rows_total", (name, version, route, status), rows)
        self.m.observe("mlgate_request_duration_seconds", (name, version, route), o.latency_s)
        if o.error is not None:
            self.m.inc("mlgate_rejections_total", (name, version, route, rejection_reason(o.error)))

    def batch(self, model: str, version: str, stats: BatchStats) -> None:
        labels = (model, version)
        self.m.observe("mlgate_batch_size_rows", labels, stats.rows)
        self.m.observe("mlgate_model_compute_seconds", labels, stats.compute_s)
        for wait_s in stats.queue_wait_s:
            self.m.observe("mlgate_queue_wait_seconds", labels, wait_s)


class PredictionLogObserver:
    """One :class:`Chunk` per answered request of a served model; rows are built later."""

    def __init__(self, writer: PredictionLogWriter, known_models: set[str]) -> None:
        self.writer = writer
        self.known = known_models

    def begin(self, request: InferenceRequest) -> None:
        return None

    def observe(self, o: Outcome) -> None:
        if o.request.model not in self.known:
            return  # no log partition for names a client made up
        prepared = o.prepared
        self.writer.append(Chunk(
            request_id=o.request.request_id,
            ts_us=int(o.wall_start_s * 1e6),
            model=o.request.model,
            version=o.model.version if o.model is not None else o.request.version,
            route=o.request.route,
            status=o.status,
            latency_ms=o.latency_s * 1e3,
            error=_message(o.error),
            rows=prepared.rows if prepared is not None else 1,
            inputs=prepared.columns if prepared is not None and prepared.columns is not None else
            ({o.model.schema.inputs[0].name: prepared.tensor} if prepared is not None else None),
            outputs=o.outputs,
            schema=o.model.schema if o.model is not None else None,
        ))


class ErrorLogObserver:
    """JSON lines for every error answer: request id, model, version, status, message."""

    def __init__(self, include_inputs: bool = False) -> None:
        self.include_inputs = include_inputs

    def begin(self, request: InferenceRequest) -> None:
        return None

    def observe(self, o: Outcome) -> None:
        if o.error is None:
            return
        record = {"event": "request_error", "request_id": o.request.request_id, "model": o.request.model,
                  "version": o.model.version if o.model is not None else o.request.version,
                  "route": o.request.route, "status": o.status, "error": _message(o.error)}
        if self.include_inputs and o.prepared is not None and o.prepared.columns is not None:
            record["inputs"] = {k: v.tolist() for k, v in o.prepared.columns.items()}
        line = orjson.dumps(record, default=str).decode()
        if o.status >= 500 and o.status not in (503, 504):
            errors_log.error(line)
        else:
            errors_log.warning(line)


def _message(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return error.message if isinstance(error, MlgateError) else "internal server error"
