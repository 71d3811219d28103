"""The prediction-log writer: one per replica, asynchronous, bounded, atomic segments.

The request path only appends references to arrays already computed (no conversion);
a writer thread turns them into Arrow columns and publishes a Parquet segment every
``flush_interval_s`` or ``max_rows`` rows, whichever comes first. Publishing writes a
temporary ``.name`` file and renames it, so readers see whole segments only. Beyond
``max_buffer_rows`` new records are dropped and counted. ``close()`` flushes all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contracts import fs as rfs
from contracts import predlog as contract
from contracts.prometheus import MetricsRecorder
from registry.schema import ModelSchema
from serving.config import PredictionLogConfig
from serving.types import InferenceRequest

log = logging.getLogger("mlgate.predlog")
_T = contract.FIXED_TYPES


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


class _Pending:
    """Buffered records of one model version, column by column: a request adds plain
    values to per-column lists, a batch extends them, and inputs and outputs are kept as
    the arrays they came in (one entry per request or per batch, ``part_rows`` rows each).
    Nothing left behind is a container the garbage collector has to walk again and again
    (a dict per request would be, and full collections of a replica's heap then stall
    requests). A flush builds Arrow columns."""

    def __init__(self, model: str, version: str | None, schema: ModelSchema | None) -> None:
        self.model, self.version, self.schema = model, version, schema
        self.request_id: list[str] = []
        self.ts_us: list[int] = []
        self.route: list[str] = []
        self.status: list[int] = []
        self.latency_ms: list[float] = []
        self.error: list[str | None] = []
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
        self.rows.append(r.rows)
        self._add_arrays(r.rows, r.inputs, r.outputs)

    def add_answered(self, request_ids: list[str], ts_us: list[int], routes: list[str], latency_ms: list[float],
                     rows: list[int], total: int, inputs: dict[str, np.ndarray],
                     outputs: dict[str, np.ndarray]) -> None:
        """Several answered requests (status 200) whose ``total`` rows are in ``inputs``/``outputs``."""
        self.request_id.extend(request_ids)
        self.ts_us.extend(ts_us)
        self.route.extend(routes)
        self.status.extend(repeat(200, len(request_ids)))
        self.latency_ms.extend(latency_ms)
        self.error.extend(repeat(None, len(request_ids)))
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

    def table(self, key: bytes | None, pii_mode: str) -> tuple[pa.Table, np.ndarray]:
        """The records as one table, and the UTC day number of each row."""
        requests, total = len(self.request_id), self.row_count
        rows = np.array(self.rows, dtype=np.int64)
        part_rows = np.array(self.part_rows, dtype=np.int64)
        spread = None if total == requests else pa.array(np.repeat(np.arange(requests), rows))

        def per_request(name: str, values) -> pa.Array:
            column = pa.array(values, _T[name])
            return column if spread is None else column.take(spread)

        ts_us = np.array(self.ts_us, dtype=np.int64)
        if spread is None:
            row_index = np.zeros(total, dtype=np.int32)
        else:
            row_index = (np.arange(total) - np.repeat(np.cumsum(rows) - rows, rows)).astype(np.int32)
            ts_us = np.repeat(ts_us, rows)
        fixed = [  # in the contract's order, with its types
            per_request(contract.REQUEST_ID, self.request_id),
            pa.array(row_index, _T[contract.ROW_INDEX]),
            pa.array(ts_us, _T[contract.TIMESTAMP]),
            pa.repeat(pa.scalar(self.model, _T[contract.MODEL]), total),
            pa.repeat(pa.scalar(self.version, _T[contract.VERSION]), total),
            per_request(contract.ROUTE, self.route),
            per_request(contract.STATUS, np.array(self.status, dtype=np.int16)),
            per_request(contract.LATENCY_MS, np.array(self.latency_ms, dtype=np.float32)),
            per_request(contract.ERROR, self.error),
        ]
        cols: dict[str, pa.Array] = {}
        if self.schema is not None:
            for spec in self.schema.inputs:
                if spec.pii and (pii_mode == "drop" or key is None):
                    continue
                parts = self.inputs[spec.name]
                cols[contract.INPUT_PREFIX + spec.name] = _hashed(parts, part_rows, key) if spec.pii else \
                    _column(parts, part_rows)
            for out in self.schema.outputs:
                cols[contract.OUTPUT_PREFIX + out.name] = _column(self.outputs[out.name], part_rows)
        schema = contract.segment_schema({name: column.type for name, column in cols.items()})
        return pa.Table.from_arrays([*fixed, *cols.values()], schema=schema), ts_us // _US_PER_DAY


_LOW_CARDINALITY = (contract.MODEL, contract.VERSION, contract.ROUTE, contract.STATUS, contract.ERROR)


def _dictionary_columns(table: pa.Table) -> list[str]:
    """Dictionary-encode only the columns with few distinct values (and text inputs and
    outputs, which are categories): trying it on ids, times and floats costs about twice
    the rest of the write and makes the file bigger."""
    return [f.name for f in table.schema
            if f.name in _LOW_CARDINALITY or (pa.types.is_string(f.type) and f.name != contract.REQUEST_ID)]


_US_PER_DAY = 86_400 * 10**6


class PredictionLogWriter:
    def __init__(self, root: str, cfg: PredictionLogConfig, metrics: MetricsRecorder | None = None,
                 on_publish: Callable[[str, int], None] | None = None) -> None:
        """``on_publish(path, rows)`` is called after each segment is published."""
        self.cfg = cfg
        self.on_publish = on_publish
        self.fs, self.path = rfs.resolve(root)
        self.metrics = metrics
        self.writer_id = contract.writer_id()
        self._seq = 0
        self._buf: dict[tuple[str, str | None, int], _Pending] = {}
        self._rows = 0
        self._lock = threading.Lock()  # the buffer
        self._wake = threading.Event()  # max_rows reached, or closing
        self._closed = False
        self._key = cfg.pii_salt.encode() if cfg.pii_salt else None
        self._thread = threading.Thread(target=self._loop, name="mlgate-predlog", daemon=True)
        self._thread.start()

    # -- request path ------------------------------------------------------------------
    def record(self, r: RequestRecord) -> None:
        """One answered request (``r.rows`` records)."""
        with self._lock:
            pending = self._reserve(r.model, r.version, r.schema, r.rows)
            if pending is not None:
                pending.add(r)

    def record_batch(self, model: str, version: str, schema: ModelSchema, requests: list[InferenceRequest],
                     latency_s: list[float], rows: list[int], inputs: dict[str, np.ndarray],
                     outputs: dict[str, np.ndarray]) -> None:
        """Requests one batch answered (status 200): ``inputs``/``outputs`` hold their rows,
        concatenated in request order."""
        total = sum(rows)
        ids = [r.request_id for r in requests]
        ts_us = [int(r.arrived_wall_s * 1e6) for r in requests]
        routes = [r.route for r in requests]
        latency_ms = [x * 1e3 for x in latency_s]
        with self._lock:
            pending = self._reserve(model, version, schema, total)
            if pending is not None:
                pending.add_answered(ids, ts_us, routes, latency_ms, rows, total, inputs, outputs)

    def _reserve(self, model: str, version: str | None, schema: ModelSchema | None, rows: int) -> _Pending | None:
        """Under the lock: room for ``rows`` records and the buffer they go to, or None when
        the policy drops them (counted)."""
        if self._closed or self._rows + rows > self.cfg.max_buffer_rows:
            reason = "closed" if self._closed else "buffer_full"
            self._count("mlgate_predlog_records_dropped_total", (model, reason), rows)
            return None
        key = (model, version, id(schema))
        pending = self._buf.get(key)
        if pending is None:
            pending = self._buf[key] = _Pending(model, version, schema)
        self._rows += rows
        if self._rows >= self.cfg.max_rows:
            self._wake.set()
        return pending

    # -- writer thread -----------------------------------------------------------------
    def _loop(self) -> None:
        # Arrow's conversion of Python lists imports pandas on first use (~0.3 s holding the
        # GIL): pay it now, not in the first flush while requests are being served
        pa.array([""], pa.string())
        while True:
            self._wake.wait(self.cfg.flush_interval_s)
            self._wake.clear()
            closing = self._closed
            self.flush()
            if closing:
                return

    def flush(self) -> None:
        """Publish everything buffered now (safe from any thread)."""
        with self._lock:
            pending, self._buf, self._rows = self._buf, {}, 0
        by_model: dict[str, list[_Pending]] = {}
        for p in pending.values():
            by_model.setdefault(p.model, []).append(p)
        for model, group in by_model.items():
            try:
                built = [p.table(self._key, self.cfg.pii_mode) for p in group]
                table = built[0][0] if len(built) == 1 else \
                    pa.concat_tables([t for t, _ in built], promote_options="permissive")
                days = built[0][1] if len(built) == 1 else np.concatenate([d for _, d in built])
            except Exception:  # noqa: BLE001 - bad values must never crash serving
                log.exception("prediction log: could not build the records of %s", model)
                self._count("mlgate_predlog_records_dropped_total", (model, "sink_error"),
                            sum(p.row_count for p in group))
                continue
            unique_days = np.unique(days)
            for day in unique_days.tolist():
                part = table if len(unique_days) == 1 else table.filter(pa.array(days == day))
                try:
                    self._publish(model, dt.date(1970, 1, 1) + dt.timedelta(days=day), part)
                except Exception:  # noqa: BLE001 - the sink failed: count, never crash serving
                    log.exception("prediction log: could not publish %d records of %s", part.num_rows, model)
                    self._count("mlgate_predlog_records_dropped_total", (model, "sink_error"), part.num_rows)
                    continue
                self._count("mlgate_predlog_records_written_total", (model,), part.num_rows)

    def _count(self, name: str, labels: tuple[str, ...], value: float) -> None:
        if self.metrics is not None:
            self.metrics.inc(name, labels, value)

    def _publish(self, model: str, day: dt.date, table: pa.Table) -> None:
        directory = contract.partition_dir(self.path, model, day)
        self.fs.create_dir(directory, recursive=True)
        with self._lock:
            self._seq += 1
            name = contract.segment_name(self.writer_id, self._seq)
        tmp = f"{directory}/.{name}.tmp"
        compression = None if self.cfg.compression == "none" else self.cfg.compression
        with self.fs.open_output_stream(tmp) as out:
            pq.write_table(table, out, compression=compression, use_dictionary=_dictionary_columns(table))
        rfs.publish(self.fs, tmp, f"{directory}/{name}")
        if self.on_publish is not None:
            self.on_publish(f"{directory}/{name}", table.num_rows)

    def close(self, timeout_s: float = 60.0) -> None:
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join(timeout_s)


def _column(parts: list[np.ndarray | None], rows: np.ndarray) -> pa.Array:
    """One Arrow column from arrays of ``rows`` rows each (a request's, a batch's); parts
    without values (errors) give that many nulls. Vectorised: one concatenation, one take."""
    present = [p for p in parts if p is not None]
    if len(present) == len(parts):
        return _arrow(parts[0] if len(parts) == 1 else np.concatenate(parts))
    if not present:
        return pa.nulls(int(rows.sum()))
    values = _arrow(present[0] if len(present) == 1 else np.concatenate(present))
    row_has = np.repeat(np.fromiter((p is not None for p in parts), dtype=bool, count=len(parts)), rows)
    index = np.zeros(len(row_has), dtype=np.int64)
    index[row_has] = np.arange(len(values))
    return values.take(pa.array(index, mask=~row_has))


def _arrow(values: np.ndarray) -> pa.Array:
    if values.dtype == object:
        return pa.array([_text(v) for v in values], pa.string())
    if values.ndim == 2:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
    return pa.array(values)


def _text(v) -> str | None:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def _hashed(parts: list[np.ndarray | None], rows: np.ndarray, key: bytes) -> pa.Array:
    """Keyed hash (HMAC-SHA256, hex, 32 chars) of each value; missing stays missing."""
    out: list[str | None] = []
    for p, n in zip(parts, rows):
        if p is None:
            out.extend([None] * int(n))
            continue
        for v in p:
            if v is None or (isinstance(v, float) and v != v):
                out.append(None)
            else:
                raw = v if isinstance(v, bytes) else repr(v.item() if hasattr(v, "item") else v).encode()
                out.append(hmac.new(key, raw, hashlib.sha256).hexdigest()[:32])
    return pa.array(out, pa.string())
