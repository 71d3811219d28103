"""``POST /v2/models/{m}/feedback``: ground-truth labels for logged predictions.

Bodies (JSON)::

    {"request_id": "r1", "label": "churn"}                   row 0 of request r1
    {"request_id": "r1", "row_index": 2, "label": "churn"}
    {"request_id": "r1", "labels": ["stay", "churn"]}        rows 0..n-1
    {"feedback": [{...}, {...}]}                             the batch form: items as above

Classifiers take the class label (or its index); regressors a number (``label`` or
``value``). A label names a *published* prediction: the request id must be in the
prediction log with at least ``row_index + 1`` rows, predicted for the identity that sends
the label (or any identity, for one with ``admin``: an id that several identities used takes
an admin's label only). This replica's writer is flushed
first; a prediction answered by another replica is published within its
``serving.prediction_log.flush_interval_s``, so send labels after that. Unknown ids
reject the whole body (404, the ids named). Accepted labels are published as one
feedback segment (``contracts.feedback``) before the answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import threading
from collections.abc import Callable

import orjson
import pyarrow as pa

from access.identity import Identity
from contracts import feedback as contract
from contracts import predlog
from contracts.clock import Clock, utc_now, utc_today, wall_clock_s
from contracts.errors import InvalidInput, NotFound
from contracts.prometheus import MetricsRecorder
from registry.schema import ModelSchema
from serving.http.errors import JSON
from serving.protocol.json_data import json_object

MAX_NAMED_IDS = 20
MIXED = "\x00mixed"  # the owner of a request id that several identities used


class KnownIds:
    """Request ids of published prediction-log segments, with the rows logged for each and
    the identity that asked (``request_id`` and ``identity`` columns only).

    Each segment is read once. Partitions older than yesterday no longer change, so after
    the first look only today's and yesterday's are listed again; partitions older than
    ``max_age_days`` are forgotten, both counted from ``clock``'s day. Memory: one entry
    per logged request in the horizon.
    """

    def __init__(self, log_root: str, max_age_days: int = 7, clock: Clock = wall_clock_s,
                 recorder: MetricsRecorder | None = None) -> None:
        """An unreadable segment is moved aside (``contracts.predlog.quarantine``), logged and
        counted in ``recorder``; its ids stay unknown."""
        self.log_root = log_root
        self.max_age_days = max_age_days
        self.clock = clock
        self.recorder = recorder
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = {}  # model -> segment paths read
        # model -> day -> request id -> [rows, identity that asked (None: unauthenticated, MIXED)]
        self._rows: dict[str, dict[dt.date, dict[str, list]]] = {}

    def rows(self, model: str, request_ids: set[str]) -> dict[str, tuple[int, str | None]]:
        """(rows logged, identity that asked) per request id ((0, None) for unknown ids),
        after reading new segments."""
        with self._lock:
            self._refresh(model)
            days = self._rows.get(model, {}).values()
            out = {}
            for rid in request_ids:
                rows, owner = 0, None
                for day in days:
                    entry = day.get(rid)
                    if entry is not None:
                        owner = entry[1] if rows == 0 or owner == entry[1] else MIXED
                        rows += entry[0]
                out[rid] = (rows, owner)
            return out

    def _refresh(self, model: str) -> None:
        today = utc_today(self.clock)
        oldest = today - dt.timedelta(days=self.max_age_days)
        first_look = model not in self._seen
        seen = self._seen.setdefault(model, set())
        by_day = self._rows.setdefault(model, {})
        for day in [d for d in by_day if d < oldest]:
            del by_day[day]
        seen.difference_update({p for p in seen if _day_of(p) < oldest})
        start = oldest if first_look else max(oldest, today - dt.timedelta(days=1))
        for seg in predlog.list_segments(self.log_root, model, dt.datetime.combine(start, dt.time(), dt.UTC)):
            if seg.path in seen:
                continue
            try:
                table = predlog.read_segments(self.log_root, [seg], [predlog.REQUEST_ID, predlog.IDENTITY])
            except predlog.UNREADABLE as exc:
                self._quarantine(model, seg, exc)
                seen.add(seg.path)
                continue
            _add_counts(by_day.setdefault(seg.day, {}), table)
            seen.add(seg.path)


    def _quarantine(self, model: str, seg: predlog.Segment, exc: Exception) -> None:
        predlog.quarantine(self.log_root, seg.path, exc, f"feedback index of {model}")
        if self.recorder is not None:
            self.recorder.inc(predlog.QUARANTINED_METRIC, (model, "segment"))


def _add_counts(day: dict[str, list], table) -> None:
    """Count a segment's rows per (request id, identity) into ``day``."""
    if predlog.IDENTITY not in table.column_names:  # written before identities were logged
        table = table.append_column(predlog.IDENTITY, pa.nulls(len(table), pa.string()))
    counts = table.group_by([predlog.REQUEST_ID, predlog.IDENTITY]).aggregate([([], "count_all")])
    for rid, owner, n in zip(counts[predlog.REQUEST_ID].to_pylist(), counts[predlog.IDENTITY].to_pylist(),
                             counts["count_all"].to_pylist()):
        entry = day.get(rid)
        if entry is None:
            day[rid] = [n, owner]
        else:
            entry[0] += n
            if entry[1] != owner:
                entry[1] = MIXED


def _day_of(path: str) -> dt.date:
    part = next(p for p in path.split("/") if p.startswith("date="))
    return dt.date.fromisoformat(part.removeprefix("date="))


class FeedbackHandler:
    """The ``feedback`` POST route of :class:`serving.http.app.GatewayApp`."""

    def __init__(self, log_root: str, schema_of: Callable[[str, str | None], ModelSchema],
                 flush: Callable[[], None] | None = None, max_age_days: int = 7,
                 clock: Clock = wall_clock_s, recorder: MetricsRecorder | None = None) -> None:
        """``schema_of(model, version)`` raises NotFound for a model this gateway does not serve;
        ``clock``: when labels are received (their ``ts`` and partition day) and the known-ids horizon."""
        self.schema_of = schema_of
        self.flush = flush
        self.clock = clock
        self.known = KnownIds(log_root, max_age_days, clock, recorder)
        self.writer = contract.FeedbackWriter(log_root)

    async def __call__(self, route, headers: dict, body: bytes, identity: Identity):
        schema = self.schema_of(route.model, route.version)
        items = parse_items(body, schema)
        accepted = await asyncio.to_thread(self.accept, route.model, items, identity)
        return 200, [JSON], orjson.dumps({"model": route.model, "accepted": accepted})

    def accept(self, model: str, items: list[tuple[str, int, str | None, float | None]],
               identity: Identity) -> int:
        """Check every (request id, row) is published and was predicted for ``identity``
        (any identity, for an admin), then publish the labels (blocking). Another identity's
        prediction reads as unknown: a label sender learns nothing of others' request ids."""
        if self.flush is not None:
            self.flush()
        known = self.known.rows(model, {rid for rid, *_ in items})
        if not identity.admin:
            known = {rid: (rows if owner == identity.id else 0, owner) for rid, (rows, owner) in known.items()}
        unknown = sorted({f"{rid}[{row}]" if known[rid][0] else rid for rid, row, *_ in items
                          if row >= known[rid][0]})
        if unknown:
            named = ", ".join(unknown[:MAX_NAMED_IDS]) + (f" and {len(unknown) - MAX_NAMED_IDS} more"
                                                          if len(unknown) > MAX_NAMED_IDS else "")
            raise NotFound(f"feedback: unknown prediction ids (not in the published prediction log of "
                           f"{model} for this identity; a label can be sent once its prediction is "
                           f"published): {named}")
        ids, idx, labels, values = (list(col) for col in zip(*items))
        self.writer.write(model, contract.table(ids, idx, labels, values, utc_now(self.clock)))
        return len(items)


def parse_items(body: bytes, schema: ModelSchema) -> list[tuple[str, int, str | None, float | None]]:
    """(request id, row index, label, value) per labelled row; InvalidInput names the field."""
    doc = json_object(body)
    if "feedback" in doc:
        if not isinstance(doc["feedback"], list) or not doc["feedback"]:
            raise InvalidInput("feedback: expected a non-empty list of items")
        out = []
        for i, item in enumerate(doc["feedback"]):
            out.extend(_item(item, schema, f"feedback[{i}]"))
        return out
    return _item(doc, schema, "body")


def _item(item, schema: ModelSchema, where: str) -> list[tuple[str, int, str | None, float | None]]:
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: expected an object")
    rid = item.get("request_id")
    if not isinstance(rid, str) or not rid:
        raise InvalidInput(f"{where}.request_id: expected a non-empty string")
    if "labels" in item:
        labels = item["labels"]
        if not isinstance(labels, list) or not labels:
            raise InvalidInput(f"{where}.labels: expected a non-empty list")
        return [(rid, i, *_target(v, schema, f"{where}.labels[{i}]")) for i, v in enumerate(labels)]
    row = item.get("row_index", 0)
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        raise InvalidInput(f"{where}.row_index: expected an integer >= 0")
    key = "label" if "label" in item else "value"
    if key not in item:
        raise InvalidInput(f"{where}: expected 'label', 'labels' or 'value'")
    return [(rid, row, *_target(item[key], schema, f"{where}.{key}"))]


def _target(value, schema: ModelSchema, where: str) -> tuple[str | None, float | None]:
    if schema.task == "classification":
        labels = schema.class_labels
        if isinstance(value, str) and value in labels:
            return value, None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(labels):
            return labels[value], None
        raise InvalidInput(f"{where}: expected one of {list(labels)} or a class index, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return None, float(value)
    raise InvalidInput(f"{where}: expected a finite number, got {value!r}")
