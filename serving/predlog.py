"""The prediction-log writer: one per replica, asynchronous, bounded, atomic segments.

The request path only appends references to arrays already computed to the writer's
buffer (``serving.observers.PredictionBuffer``: bounded, beyond ``max_buffer_rows`` new
records are dropped and counted). A writer thread takes what is buffered, turns it into
Arrow columns and publishes a Parquet segment every ``flush_interval_s`` or ``max_rows``
rows, whichever comes first. Publishing writes a temporary ``.name`` file and renames
it, so readers see whole segments only. ``close()`` flushes all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contracts import fs as rfs
from contracts import predlog as contract
from contracts.errors import ConfigError
from contracts.prometheus import MetricsRecorder
from serving.config import PredictionLogConfig
from serving.observers import PendingRows, PredictionBuffer

log = logging.getLogger("mlgate.predlog")
_T = contract.FIXED_TYPES


def _table(p: PendingRows, key: bytes | None, pii_mode: str) -> tuple[pa.Table, np.ndarray]:
    """The records of one buffered model version as one table, and the UTC day number of each row."""
    requests, total = len(p.request_id), p.row_count
    rows = np.array(p.rows, dtype=np.int64)
    part_rows = np.array(p.part_rows, dtype=np.int64)
    spread = None if total == requests else pa.array(np.repeat(np.arange(requests), rows))

    def per_request(name: str, values) -> pa.Array:
        column = pa.array(values, _T[name])
        return column if spread is None else column.take(spread)

    ts_us = np.array(p.ts_us, dtype=np.int64)
    if spread is None:
        row_index = np.zeros(total, dtype=np.int32)
    else:
        row_index = (np.arange(total) - np.repeat(np.cumsum(rows) - rows, rows)).astype(np.int32)
        ts_us = np.repeat(ts_us, rows)
    fixed = [  # in the contract's order, with its types
        per_request(contract.REQUEST_ID, p.request_id),
        pa.array(row_index, _T[contract.ROW_INDEX]),
        pa.array(ts_us, _T[contract.TIMESTAMP]),
        pa.repeat(pa.scalar(p.model, _T[contract.MODEL]), total),
        pa.repeat(pa.scalar(p.version, _T[contract.VERSION]), total),
        per_request(contract.ROUTE, p.route),
        per_request(contract.STATUS, np.array(p.status, dtype=np.int16)),
        per_request(contract.LATENCY_MS, np.array(p.latency_ms, dtype=np.float32)),
        per_request(contract.ERROR, p.error),
        per_request(contract.IDENTITY, p.identity),
    ]
    cols: dict[str, pa.Array] = {}
    if p.schema is not None:
        for spec in p.schema.inputs:
            if spec.pii and (pii_mode == "drop" or key is None):
                continue
            parts = p.inputs[spec.name]
            cols[contract.INPUT_PREFIX + spec.name] = _hashed(parts, part_rows, key) if spec.pii else \
                _column(parts, part_rows)
        for out in p.schema.outputs:
            cols[contract.OUTPUT_PREFIX + out.name] = _column(p.outputs[out.name], part_rows)
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


def pii_key(cfg: PredictionLogConfig) -> bytes | None:
    """The key personal-data features are hashed with: the contents of ``pii_salt_file``
    (read here, where it is used; one trailing newline ignored), else ``pii_salt``; None
    (those features are not written) when neither is set or ``pii_mode`` is ``drop``."""
    if cfg.pii_mode == "drop":
        return None
    if cfg.pii_salt_file is None:
        return cfg.pii_salt.encode() if cfg.pii_salt else None
    try:
        with open(cfg.pii_salt_file, "rb") as f:
            key = f.read().removesuffix(b"\n").removesuffix(b"\r")
    except OSError as exc:
        raise ConfigError(f"serving.prediction_log.pii_salt_file: cannot read {cfg.pii_salt_file} "
                          f"({exc.strerror})") from None
    if not key:
        raise ConfigError(f"serving.prediction_log.pii_salt_file: {cfg.pii_salt_file} is empty")
    return key


class PredictionLogWriter:
    def __init__(self, root: str, cfg: PredictionLogConfig, metrics: MetricsRecorder | None = None,
                 on_publish: Callable[[str, int], None] | None = None) -> None:
        """``on_publish(path, rows)`` is called after each segment is published. What is
        written comes from :attr:`buffer` (``serving.observers.PredictionBuffer``), which
        the request path's observer fills."""
        self.cfg = cfg
        self.on_publish = on_publish
        self.fs, self.path = rfs.resolve(root)
        self.metrics = metrics
        self.buffer = PredictionBuffer(cfg, metrics)
        self.writer_id = contract.writer_id()
        self._seq = 0
        self._lock = threading.Lock()  # the segment sequence
        self._closed = False
        self._key = pii_key(cfg)
        self._thread = threading.Thread(target=self._loop, name="mlgate-predlog", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        # Arrow's conversion of Python lists imports pandas on first use (~0.3 s holding the
        # GIL): pay it now, not in the first flush while requests are being served
        pa.array([""], pa.string())
        while True:
            self.buffer.full.wait(self.cfg.flush_interval_s)
            self.buffer.full.clear()
            closing = self._closed
            self.flush()
            if closing:
                return

    def flush(self) -> None:
        """Publish everything buffered now (safe from any thread)."""
        by_model: dict[str, list[PendingRows]] = {}
        for p in self.buffer.take():
            by_model.setdefault(p.model, []).append(p)
        for model, group in by_model.items():
            try:
                built = [_table(p, self._key, self.cfg.pii_mode) for p in group]
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
        """Refuse later records, publish what is buffered, stop the thread."""
        self._closed = True
        self.buffer.close()  # wakes the thread, which flushes once more and returns
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
