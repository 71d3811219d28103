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
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from registry import fs as rfs

REQUEST_ID = "request_id"
ROW_INDEX = "row_index"
TIMESTAMP = "ts"
MODEL = "model"
VERSION = "version"
ROUTE = "route"
STATUS = "status"
LATENCY_MS = "latency_ms"
ERROR = "error"
INPUT_PREFIX = "in_"
OUTPUT_PREFIX = "out_"

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
]


def partition_dir(root_path: str, model: str, day: dt.date) -> str:
    return f"{root_path}/model={model}/date={day.isoformat()}"


def segment_name(writer_id: str, seq: int) -> str:
    return f"{writer_id}-{seq:08d}.parquet"


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
                  since: dt.datetime | None = None, until: dt.datetime | None = None) -> pa.Table:
    """Read only ``columns`` of ``segments`` (schemas of different versions are unified)."""
    if not segments:
        return pa.table({})
    fs, _ = rfs.resolve(root)
    paths = [s.path for s in segments]
    first = pads.dataset(paths, format="parquet", filesystem=fs)
    schema = pa.unify_schemas([f.physical_schema for f in first.get_fragments()], promote_options="permissive")
    dataset = pads.dataset(paths, schema=schema, format="parquet", filesystem=fs)
    filt = None
    ts = pads.field(TIMESTAMP)
    if since is not None:
        filt = ts >= pa.scalar(_utc(since), pa.timestamp("us", tz="UTC"))
    if until is not None:
        cond = ts < pa.scalar(_utc(until), pa.timestamp("us", tz="UTC"))
        filt = cond if filt is None else filt & cond
    if columns is not None:
        columns = [c for c in columns if c in dataset.schema.names]
    return dataset.to_table(columns=columns, filter=filt)


def read_logs(root: str, model: str, since: dt.datetime | None = None, until: dt.datetime | None = None,
              columns: list[str] | None = None) -> pa.Table:
    """Records of ``model`` with ``since <= ts < until`` as Arrow columns."""
    return read_segments(root, list_segments(root, model, since, until), columns, since, until)


def _utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone.utc)
