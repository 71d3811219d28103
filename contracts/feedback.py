"""The feedback-label contract: ground truth for logged predictions, stored beside the log.

Serving writes (``POST /v2/models/{m}/feedback``), monitoring reads and joins labels to
predictions by ``(request_id, row_index)``. Layout under the prediction-log root::

    {log_root}/feedback/model={name}/date={YYYY-MM-DD}/{writer}-{seq:08d}.parquet

``date`` is the day the label was received (a late label lands in a later partition
than its prediction; the join, not the layout, puts it in its prediction's window).
Segments are published like prediction-log segments: written under a ``.`` name, then
renamed. Columns: ``request_id``, ``row_index``, ``label`` (classifiers: the class
label), ``value`` (regressors: the target), ``ts`` (when the label was received). A
pair labelled twice keeps the label received last.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contracts import fs as rfs
from contracts import predlog

FEEDBACK_DIR = "feedback"
LABEL = "label"
VALUE = "value"
SCHEMA = pa.schema([
    pa.field(predlog.REQUEST_ID, pa.string(), nullable=False),
    pa.field(predlog.ROW_INDEX, pa.int32(), nullable=False),
    pa.field(LABEL, pa.string()),
    pa.field(VALUE, pa.float64()),
    pa.field(predlog.TIMESTAMP, pa.timestamp("us", tz="UTC"), nullable=False),
])


def feedback_root(log_root: str) -> str:
    """The root under which feedback partitions live (a sibling area of the log)."""
    return f"{log_root.rstrip('/')}/{FEEDBACK_DIR}"


def list_feedback(log_root: str, model: str, since: dt.datetime | None = None) -> list[predlog.Segment]:
    """Published feedback segments of ``model`` received on or after ``since``'s day."""
    return predlog.list_segments(feedback_root(log_root), model, since)


def read_feedback(log_root: str, segments: list[predlog.Segment]) -> pa.Table:
    """All columns of ``segments`` (an empty table with :data:`SCHEMA` for none)."""
    if not segments:
        return SCHEMA.empty_table()
    fs, _ = rfs.resolve(log_root)
    tables = [pq.read_table(s.path, filesystem=fs, schema=SCHEMA) for s in segments]
    return pa.concat_tables(tables)


def table(request_ids: list[str], row_indexes: list[int], labels: list[str | None],
          values: list[float | None], received: dt.datetime) -> pa.Table:
    """Feedback records in :data:`SCHEMA`, all received at ``received`` (an aware datetime)."""
    n = len(request_ids)
    return pa.table({
        predlog.REQUEST_ID: pa.array(request_ids, pa.string()),
        predlog.ROW_INDEX: pa.array(row_indexes, pa.int32()),
        LABEL: pa.array(labels, pa.string()),
        VALUE: pa.array(values, pa.float64()),
        predlog.TIMESTAMP: pa.array([received] * n, pa.timestamp("us", tz="UTC")),
    }, schema=SCHEMA)


class FeedbackWriter:
    """Publishes one segment per call, atomically; names never collide across processes."""

    def __init__(self, log_root: str) -> None:
        self.fs, self.path = rfs.resolve(feedback_root(log_root))
        self.writer_id = predlog.writer_id()
        self._seq = itertools.count(1)

    def write(self, model: str, records: pa.Table) -> str:
        """Publish ``records`` (in :data:`SCHEMA`, not empty) for ``model`` in the partition of
        the day they were received (their earliest ``ts``); returns the segment path."""
        if records.num_rows == 0:
            raise ValueError("feedback: no records to write")
        day = pc.min(records[predlog.TIMESTAMP]).as_py().astimezone(dt.UTC).date()
        directory = predlog.partition_dir(self.path, model, day)
        self.fs.create_dir(directory, recursive=True)
        name = predlog.segment_name(self.writer_id, next(self._seq))
        tmp = f"{directory}/.{name}.tmp"
        with self.fs.open_output_stream(tmp) as out:
            pq.write_table(records.cast(SCHEMA), out, compression="zstd")
        rfs.publish(self.fs, tmp, f"{directory}/{name}")
        return f"{directory}/{name}"
