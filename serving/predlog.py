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
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from registry import fs as rfs
from registry import predlog as contract
from registry.schema import ModelSchema
from serving.config import PredictionLogConfig
from registry.metrics import MetricsRecorder

log = logging.getLogger("mlgate.predlog")


@dataclass
class Chunk:
    """One answered request: everything needed to build its rows later."""

    request_id: str
    ts_us: int
    model: str
    version: str | None
    route: str
    status: int
    latency_ms: float
    error: str | None
    rows: int
    inputs: dict[str, np.ndarray] | None
    outputs: dict[str, np.ndarray] | None
    schema: ModelSchema | None


class PredictionLogWriter:
    def __init__(self, root: str, cfg: PredictionLogConfig, metrics: MetricsRecorder | None = None,
                 on_publish: Callable[[str, int], None] | None = None) -> None:
        """``on_publish(path, rows)`` is called after each segment is published."""
        self.cfg = cfg
        self.on_publish = on_publish
        self.fs, self.path = rfs.resolve(root)
        self.metrics = metrics
        self.writer_id = f"{socket.gethostname()}-{os.getpid()}-{int(time.time())}-{uuid.uuid4().hex[:6]}"
        self._seq = 0
        self._buf: list[Chunk] = []
        self._rows = 0
        self._cond = threading.Condition()
        self._closed = False
        self._key = cfg.pii_salt.encode() if cfg.pii_salt else None
        self._thread = threading.Thread(target=self._loop, name="mlgate-predlog", daemon=True)
        self._thread.start()

    # -- request path ------------------------------------------------------------------
    def append(self, chunk: Chunk) -> None:
        with self._cond:
            if self._closed or self._rows + chunk.rows > self.cfg.max_buffer_rows:
                reason = "closed" if self._closed else "buffer_full"
                if self.metrics is not None:
                    self.metrics.inc("mlgate_predlog_records_dropped_total", (chunk.model, reason), chunk.rows)
                return
            self._buf.append(chunk)
            self._rows += chunk.rows
            if self._rows >= self.cfg.max_rows:
                self._cond.notify()

    # -- writer thread -----------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._closed and self._rows < self.cfg.max_rows:
                    self._cond.wait(self.cfg.flush_interval_s)
                closing = self._closed
            self.flush()
            if closing:
                return

    def flush(self) -> None:
        """Publish everything buffered now (safe from any thread)."""
        with self._cond:
            chunks, self._buf, self._rows = self._buf, [], 0
        if not chunks:
            return
        groups: dict[tuple[str, dt.date], list[Chunk]] = {}
        for c in chunks:
            day = dt.datetime.fromtimestamp(c.ts_us / 1e6, dt.timezone.utc).date()
            groups.setdefault((c.model, day), []).append(c)
        for (model, day), group in groups.items():
            rows = sum(c.rows for c in group)
            try:
                self._publish(model, day, self._table(group))
            except Exception:  # noqa: BLE001 - the sink failed: count, never crash serving
                log.exception("prediction log: could not publish %d records of %s", rows, model)
                self._count("mlgate_predlog_records_dropped_total", (model, "sink_error"), rows)
                continue
            self._count("mlgate_predlog_records_written_total", (model,), rows)

    def _count(self, name: str, labels: tuple[str, ...], value: float) -> None:
        if self.metrics is not None:
            self.metrics.inc(name, labels, value)

    def _publish(self, model: str, day: dt.date, table: pa.Table) -> None:
        directory = contract.partition_dir(self.path, model, day)
        self.fs.create_dir(directory, recursive=True)
        self._seq += 1
        name = contract.segment_name(self.writer_id, self._seq)
        tmp = f"{directory}/.{name}.tmp"
        compression = None if self.cfg.compression == "none" else self.cfg.compression
        with self.fs.open_output_stream(tmp) as out:
            pq.write_table(table, out, compression=compression)
        self.fs.move(tmp, f"{directory}/{name}")
        if self.on_publish is not None:
            self.on_publish(f"{directory}/{name}", table.num_rows)

    def _table(self, chunks: list[Chunk]) -> pa.Table:
        by_version: dict[tuple[str | None, int], list[Chunk]] = {}
        for c in chunks:
            by_version.setdefault((c.version, id(c.schema)), []).append(c)
        tables = [build_table(group, self._key, self.cfg.pii_mode) for group in by_version.values()]
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")

    def close(self, timeout_s: float = 60.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout_s)


def build_table(chunks: list[Chunk], key: bytes | None, pii_mode: str) -> pa.Table:
    """Records of chunks that share one schema (same model version)."""
    rows = np.array([c.rows for c in chunks])
    cols: dict[str, pa.Array] = {
        contract.REQUEST_ID: pa.array(np.repeat(np.array([c.request_id for c in chunks], dtype=object), rows),
                                      pa.string()),
        contract.ROW_INDEX: pa.array(np.concatenate([np.arange(n, dtype=np.int32) for n in rows]), pa.int32()),
        contract.TIMESTAMP: pa.array(np.repeat(np.array([c.ts_us for c in chunks], dtype=np.int64), rows),
                                     pa.timestamp("us", tz="UTC")),
        contract.MODEL: pa.array(np.repeat(np.array([c.model for c in chunks], dtype=object), rows), pa.string()),
        contract.VERSION: pa.array(np.repeat(np.array([c.version for c in chunks], dtype=object), rows), pa.string()),
        contract.ROUTE: pa.array(np.repeat(np.array([c.route for c in chunks], dtype=object), rows), pa.string()),
        contract.STATUS: pa.array(np.repeat(np.array([c.status for c in chunks], dtype=np.int16), rows), pa.int16()),
        contract.LATENCY_MS: pa.array(np.repeat(np.array([c.latency_ms for c in chunks], dtype=np.float32), rows)),
        contract.ERROR: pa.array(np.repeat(np.array([c.error for c in chunks], dtype=object), rows), pa.string()),
    }
    schema = next((c.schema for c in chunks if c.schema is not None), None)
    if schema is not None:
        for spec in schema.inputs:
            if spec.pii and (pii_mode == "drop" or key is None):
                continue
            parts = [c.inputs.get(spec.name) if c.inputs else None for c in chunks]
            cols[contract.INPUT_PREFIX + spec.name] = _hashed(parts, rows, key) if spec.pii else _column(parts, rows)
        for out in schema.outputs:
            parts = [c.outputs.get(out.name) if c.outputs else None for c in chunks]
            cols[contract.OUTPUT_PREFIX + out.name] = _column(parts, rows)
    return pa.table(cols)


def _column(parts: list[np.ndarray | None], rows: np.ndarray) -> pa.Array:
    """One Arrow column from per-request arrays; requests without values give nulls."""
    if all(p is not None for p in parts):
        return _arrow(parts[0] if len(parts) == 1 else np.concatenate(parts))
    template = next((p for p in parts if p is not None), None)
    kind = pa.null() if template is None else _arrow(template[:0]).type
    return pa.concat_arrays([pa.nulls(int(n), kind) if p is None else _arrow(p) for p, n in zip(parts, rows)])


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
