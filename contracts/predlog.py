"""The prediction-log contract: where segments live, what they hold, how to read them.

Serving writes, monitoring and feedback read; both meet here. Layout under a log root
(local path or pyarrow URI)::

    {root}/model={name}/date={YYYY-MM-DD}/{writer}-{seq:08d}.parquet

One record per row of every answered inference request. Fixed columns (below) plus
``in_<feature>`` (one per input feature, after schema validation; personal-data
features hashed or absent) and ``out_<output>`` columns. A segment is published by
renaming a finished temporary file, so a reader never sees half a file; names that
start with ``.`` are in progress and ignored.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from contracts import fs as rfs

log = logging.getLogger("mlgate.predlog")

REQUEST_ID = "request_id"
ROW_INDEX = "row_index"
TIMESTAMP = "ts"
MODEL = "model"
VERSION = "version"
ROUTE = "route"
STATUS = "status"
LATENCY_MS = "latency_ms"
ERROR = "error"
IDENTITY = "identity"  # who asked: an access.identity id (null when access control was off)
INPUT_PREFIX = "in_"
OUTPUT_PREFIX = "out_"

# The fixed columns of every segment, in this order: the one definition of the record schema
# (the writer builds its columns with these types, readers and tests check against them).
FIXED_FIELDS = [
    pa.field(REQUEST_ID, pa.string(), nullable=False),
    pa.field(ROW_INDEX, pa.int32(), nullable=False),
    pa.field(TIMESTAMP, pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field(MODEL, pa.string(), nullable=False),
    pa.field(VERSION, pa.string()),
    pa.field(ROUTE, pa.string(), nullable=False),
    pa.field(STATUS, pa.int16(), nullable=False),
    pa.field(LATENCY_MS, pa.float32(), nullable=False),
    pa.field(ERROR, pa.string()),
    pa.field(IDENTITY, pa.string()),
]
FIXED_TYPES: dict[str, pa.DataType] = {f.name: f.type for f in FIXED_FIELDS}


def segment_schema(values: dict[str, pa.DataType]) -> pa.Schema:
    """A segment's schema: :data:`FIXED_FIELDS`, then the ``in_``/``out_`` value columns."""
    return pa.schema([*FIXED_FIELDS, *(pa.field(name, kind) for name, kind in values.items())])


QUARANTINE_DIR = "_quarantine"
QUARANTINED_METRIC = "mlgate_quarantined_files_total"  # labels: model, kind (segment, feedback, state)
UNREADABLE = (pa.ArrowException, OSError)  # what reading a torn or truncated file raises


def quarantine(root: str, path: str, error: Exception, reader: str) -> str | None:
    """Move an unreadable file under ``root`` (a segment, a feedback file) to
    ``{root}/_quarantine/`` at the same relative path, out of every listing, and log a
    warning naming ``reader``, the file and ``error``; returns its new path, or None when it
    could not be moved (its readers skip it all the same). Callers count it."""
    fs, base = rfs.resolve(root)
    relative = path[len(base):].lstrip("/") if path.startswith(base + "/") else os.path.basename(path)
    dest: str | None = f"{base}/{QUARANTINE_DIR}/{relative}"
    try:
        fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
        fs.move(path, dest)
    except OSError:
        dest = None
    log.warning("%s: %s is unreadable (%s: %s); %s", reader, path, type(error).__name__, error,
                f"moved to {dest}" if dest else "skipped (it could not be moved)")
    return dest


def partition_dir(root_path: str, model: str, day: dt.date) -> str:
    return f"{root_path}/model={model}/date={day.isoformat()}"


def segment_name(writer_id: str, seq: int) -> str:
    return f"{writer_id}-{seq:08d}.parquet"


def writer_id() -> str:
    """A segment writer's name, unique across hosts, processes and restarts (host, pid and
    random bits: no clock, so names do not depend on the date or on clocks agreeing)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Segment:
    path: str
    size_bytes: int
    day: dt.date


def list_segments(root: str, model: str, since: dt.datetime | None = None,
                  until: dt.datetime | None = None) -> list[Segment]:
    """Published segments of ``model`` whose date partition overlaps [since, until]."""
    fs, path = rfs.resolve(root)
    base = f"{path}/model={model}"
    out = []
    for day_dir in rfs.list_dirs(fs, base):
        day = dt.date.fromisoformat(day_dir.removeprefix("date="))
        if (since and day < since.date()) or (until and day > until.date()):
            continue
        selector = pafs.FileSelector(f"{base}/{day_dir}", allow_not_found=True)
        for info in fs.get_file_info(selector):
            if info.type == pafs.FileType.File and info.base_name.endswith(".parquet") \
                    and not info.base_name.startswith("."):
                out.append(Segment(info.path, info.size, day))
    return sorted(out, key=lambda s: (s.day, s.path))


def read_segments(root: str, segments: list[Segment], columns: list[str] | None = None,
                  since: dt.datetime | None = None, until: dt.datetime | None = None,
                  dictionary: Sequence[str] = ()) -> pa.Table:
    """Read only ``columns`` of ``segments`` with ``since <= ts < until`` (schemas of different
    versions are unified; a column no segment has is left out). ``dictionary``: string columns
    to return dictionary-encoded, as Parquet stores them (one string per distinct value, not
    one per row)."""
    if not segments:
        return pa.table({})
    fs, _ = rfs.resolve(root)
    tables = [_read_file(fs, s.path, columns, since, until, dictionary) for s in segments]
    if len(tables) == 1:
        return tables[0]
    table = pa.concat_tables(tables, promote_options="permissive")
    return table if columns is None else table.select([c for c in columns if c in table.column_names])


def _read_file(fs: pafs.FileSystem, path: str, columns: list[str] | None, since: dt.datetime | None,
               until: dt.datetime | None, dictionary: Sequence[str]) -> pa.Table:
    with fs.open_input_file(path) as f:
        meta = pq.read_metadata(f)
        schema = meta.schema.to_arrow_schema()
        wanted = schema.names if columns is None else [c for c in columns if c in schema.names]
        bounded = since is not None or until is not None
        read = wanted + [TIMESTAMP] if bounded and TIMESTAMP not in wanted else wanted
        strings = [c for c in dictionary if c in read and pa.types.is_string(schema.field(c).type)]
        pf = pq.ParquetFile(f, metadata=meta, read_dictionary=strings)
        table = pf.read(columns=read)
    if bounded:
        table = _between(table, since, until).select(wanted)
    return table


def _between(table: pa.Table, since: dt.datetime | None, until: dt.datetime | None) -> pa.Table:
    """Rows with ``since <= ts < until``; the table itself when all are (no filter pass)."""
    ts = table[TIMESTAMP]
    low = None if since is None else pa.scalar(_utc(since), ts.type)
    high = None if until is None else pa.scalar(_utc(until), ts.type)
    bounds = pc.min_max(ts)
    if table.num_rows == 0 or ((low is None or bounds["min"].as_py() >= low.as_py())
                               and (high is None or bounds["max"].as_py() < high.as_py())):
        return table
    keep = [pc.greater_equal(ts, low)] if low is not None else []
    keep += [pc.less(ts, high)] if high is not None else []
    return table.filter(keep[0] if len(keep) == 1 else pc.and_(*keep))


def read_logs(root: str, model: str, since: dt.datetime | None = None, until: dt.datetime | None = None,
              columns: list[str] | None = None) -> pa.Table:
    """Records of ``model`` with ``since <= ts < until`` as Arrow columns."""
    return read_segments(root, list_segments(root, model, since, until), columns, since, until)


def _utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)
