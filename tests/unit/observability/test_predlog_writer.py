"""The prediction-log writer: atomic segments, bounded buffer, PII never in clear."""

from __future__ import annotations

import dataclasses
import glob
import os
import threading
import time

import numpy as np
import pyarrow.parquet as pq

from contracts import predlog
from contracts.prometheus import MetricsHub, MetricsRecorder
from registry.schema import FeatureSpec, ModelSchema
from serving.config import PredictionLogConfig
from serving.observers import RequestRecord
from serving.predlog import PredictionLogWriter

SCHEMA = ModelSchema(
    kind="tabular", task="classification", class_labels=("a", "b"),
    inputs=(FeatureSpec(name="x", datatype="FP64"), FeatureSpec(name="email", datatype="BYTES", categorical=True,
                                                               pii=True)),
    outputs=ModelSchema.classifier_outputs(2),
)


def chunk(i: int, rows: int = 2, status: int = 200) -> RequestRecord:
    """One request for :meth:`PredictionLogWriter.record`."""
    emails = np.array([f"user{i}-{r}@example.com".encode() for r in range(rows)], dtype=object)
    return RequestRecord(
        request_id=f"req-{i}", ts_us=int(time.time() * 1e6), model="m", version="1", route="v2",
        status=status, latency_ms=1.5, error=None if status == 200 else "bad", rows=rows,
        inputs={"x": np.arange(rows, dtype=np.float64) + i, "email": emails},
        outputs={"probabilities": np.full((rows, 2), 0.5, np.float32),
                 "label": np.array([b"a"] * rows, dtype=object)},
        schema=SCHEMA,
    )


def _cfg(**kw) -> PredictionLogConfig:
    base = {"flush_interval_s": 3600, "max_rows": 10**6, "pii_salt": "salt"}
    return PredictionLogConfig(**{**base, **kw})


def test_close_flushes_everything_and_rows_match(tmp_path):
    writer = PredictionLogWriter(str(tmp_path), _cfg())
    for i in range(50):
        writer.buffer.record(chunk(i))
    writer.close()
    table = predlog.read_logs(str(tmp_path), "m")
    assert table.num_rows == 100
    assert sorted(set(table["request_id"].to_pylist())) == sorted(f"req-{i}" for i in range(50))
    assert table.schema.field("out_probabilities").type.list_size == 2


def test_segments_have_the_contract_fixed_columns_first_with_its_types(tmp_path):
    writer = PredictionLogWriter(str(tmp_path), _cfg())
    writer.buffer.record(chunk(1))
    writer.buffer.record(RequestRecord("bad-1", int(time.time() * 1e6), "m", None, "plain", 400, 0.2, "instances: bad"))
    writer.close()
    (seg,) = predlog.list_segments(str(tmp_path), "m")
    schema = pq.read_schema(seg.path)
    fixed = len(predlog.FIXED_FIELDS)
    assert list(schema)[:fixed] == predlog.FIXED_FIELDS  # names, order, types and nullability
    assert schema.names[fixed:] == ["in_x", "in_email", "out_probabilities", "out_label"]


def test_max_rows_triggers_a_segment_without_close(tmp_path):
    published = threading.Event()
    writer = PredictionLogWriter(str(tmp_path), _cfg(max_rows=10), on_publish=lambda path, rows: published.set())
    for i in range(5):
        writer.buffer.record(chunk(i))
    assert published.wait(60), "no segment after max_rows (flush interval is an hour)"
    assert predlog.read_logs(str(tmp_path), "m").num_rows == 10
    writer.close()


def test_buffer_is_bounded_and_drops_are_counted(tmp_path):
    rec = MetricsRecorder()
    writer = PredictionLogWriter(str(tmp_path), _cfg(max_buffer_rows=6, max_rows=10**6), rec)
    for i in range(5):
        writer.buffer.record(chunk(i))  # 2 rows each: 3 fit, 2 are dropped
    writer.close()
    hub = MetricsHub()
    hub.push("w", rec.drain())
    text = hub.render()
    assert 'mlgate_predlog_records_dropped_total{model="m",reason="buffer_full"} 4' in text
    assert 'mlgate_predlog_records_written_total{model="m"} 6' in text
    assert predlog.read_logs(str(tmp_path), "m").num_rows == 6


def test_pii_is_hashed_never_clear(tmp_path):
    writer = PredictionLogWriter(str(tmp_path), _cfg())
    writer.buffer.record(chunk(1))
    writer.close()
    for path in glob.glob(f"{tmp_path}/**/*.parquet", recursive=True):
        raw = open(path, "rb").read()
        assert b"@example.com" not in raw
    col = predlog.read_logs(str(tmp_path), "m")["in_email"].to_pylist()
    assert all(len(v) == 32 for v in col) and col[0] != col[1]


def test_pii_dropped_without_salt_or_in_drop_mode(tmp_path):
    for i, cfg in enumerate((_cfg(pii_salt=None), _cfg(pii_mode="drop"))):
        root = tmp_path / str(i)
        writer = PredictionLogWriter(str(root), cfg)
        writer.buffer.record(chunk(1))
        writer.close()
        assert "in_email" not in predlog.read_logs(str(root), "m").column_names


def test_failed_requests_have_null_inputs_and_one_row(tmp_path):
    writer = PredictionLogWriter(str(tmp_path), _cfg())
    writer.buffer.record(RequestRecord("bad-1", int(time.time() * 1e6), "m", None, "plain", 400, 0.2, "instances: bad"))
    writer.buffer.record(chunk(2))
    writer.close()
    table = predlog.read_logs(str(tmp_path), "m").to_pylist()
    bad = [r for r in table if r["request_id"] == "bad-1"]
    assert len(bad) == 1 and bad[0]["status"] == 400 and bad[0]["error"] == "instances: bad"
    assert bad[0].get("in_x") is None


def test_temporary_files_are_ignored_by_readers(tmp_path):
    writer = PredictionLogWriter(str(tmp_path), _cfg())
    writer.buffer.record(chunk(1))
    writer.close()
    seg = predlog.list_segments(str(tmp_path), "m")[0]
    partial = os.path.join(os.path.dirname(seg.path), ".in-progress.parquet.tmp")
    with open(partial, "wb") as f:
        f.write(b"PAR1 half a file")
    assert [s.path for s in predlog.list_segments(str(tmp_path), "m")] == [seg.path]
    assert predlog.read_logs(str(tmp_path), "m").num_rows == 2
    pq.read_table(seg.path)  # the published file is complete


def test_segment_names_never_collide_across_writers(tmp_path):
    names = set()
    for _ in range(3):
        writer = PredictionLogWriter(str(tmp_path), _cfg())
        writer.buffer.record(chunk(1))
        writer.close()
    for seg in predlog.list_segments(str(tmp_path), "m"):
        names.add(os.path.basename(seg.path))
    assert len(names) == 3


def _write_old_and_new(root, age_us: int) -> None:
    """Request 1 recorded ``age_us`` in the past, request 2 now; then closed."""
    writer = PredictionLogWriter(str(root), _cfg())
    old = chunk(1)
    old.ts_us -= age_us
    writer.buffer.record(old)
    writer.buffer.record(chunk(2))
    writer.close()


def test_time_range_filters_records(tmp_path):
    import datetime as dt

    _write_old_and_new(tmp_path, age_us=3600 * 10**6)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    table = predlog.read_logs(str(tmp_path), "m", since=since, columns=["request_id"])
    assert table.column_names == ["request_id"]
    assert set(table["request_id"].to_pylist()) == {"req-2"}


def test_multi_row_requests_number_their_rows_and_repeat_request_fields(tmp_path):
    writer = PredictionLogWriter(str(tmp_path), _cfg())
    for i, rows in enumerate((3, 1, 2)):
        writer.buffer.record(chunk(i, rows=rows, status=200 if i != 1 else 400))
    writer.close()
    table = predlog.read_logs(str(tmp_path), "m", columns=["request_id", "row_index", "status", "in_x"])
    got = sorted(zip(*(table[c].to_pylist() for c in ("request_id", "row_index", "status", "in_x"))))
    assert got == [("req-0", 0, 200, 0.0), ("req-0", 1, 200, 1.0), ("req-0", 2, 200, 2.0), ("req-1", 0, 400, 1.0),
                   ("req-2", 0, 200, 2.0), ("req-2", 1, 200, 3.0)]


def test_records_of_two_days_go_to_their_own_date_partitions(tmp_path):
    _write_old_and_new(tmp_path, age_us=86_400 * 10**6)
    segments = predlog.list_segments(str(tmp_path), "m")
    assert len({os.path.dirname(s.path) for s in segments}) == 2
    assert predlog.read_logs(str(tmp_path), "m").num_rows == 4


def test_errors_among_successes_give_nulls_exactly_on_their_rows(tmp_path):
    writer = PredictionLogWriter(str(tmp_path), _cfg())
    for i, rows in enumerate((2, 1, 3, 1)):
        record = chunk(i, rows=rows)
        if i % 2:  # a failed request: no inputs, no outputs, one record
            record = dataclasses.replace(record, status=400, error="bad", rows=1, inputs=None, outputs=None)
        writer.buffer.record(record)
    writer.close()
    table = predlog.read_logs(str(tmp_path), "m").sort_by([("request_id", "ascending"), ("row_index", "ascending")])
    got = list(zip(*(table[c].to_pylist() for c in ("request_id", "row_index", "in_x", "out_probabilities",
                                                     "out_label"))))
    assert got == [("req-0", 0, 0.0, [0.5, 0.5], "a"), ("req-0", 1, 1.0, [0.5, 0.5], "a"),
                   ("req-1", 0, None, None, None),
                   ("req-2", 0, 2.0, [0.5, 0.5], "a"), ("req-2", 1, 3.0, [0.5, 0.5], "a"),
                   ("req-2", 2, 4.0, [0.5, 0.5], "a"),
                   ("req-3", 0, None, None, None)]


def test_a_batch_of_answers_and_single_records_interleave_row_for_row(tmp_path):
    from serving.types import InferenceRequest

    writer = PredictionLogWriter(str(tmp_path), _cfg())
    writer.buffer.record(chunk(0, rows=1))
    now_s = time.time()
    requests = [InferenceRequest("m", "1", [], route=route, request_id=f"b-{i}")
                for i, route in enumerate(("v2", "plain", "v2"))]
    rows = [2, 1, 3]
    emails = np.array([f"batch-{r}@example.com".encode() for r in range(6)], dtype=object)
    writer.buffer.record_batch("m", "1", SCHEMA, requests, [0.001, 0.002, 0.003], [now_s] * 3, rows,
                        {"x": np.arange(6, dtype=np.float64) + 100, "email": emails},
                        {"probabilities": np.tile(np.float32([0.25, 0.75]), (6, 1)),
                         "label": np.array([b"b"] * 6, dtype=object)})
    failed = chunk(1)
    failed = dataclasses.replace(failed, status=400, error="bad", rows=1, inputs=None, outputs=None)
    writer.buffer.record(failed)
    writer.close()
    table = predlog.read_logs(str(tmp_path), "m").sort_by([("request_id", "ascending"), ("row_index", "ascending")])
    assert table.num_rows == 1 + 6 + 1
    got = list(zip(*(table[c].to_pylist() for c in ("request_id", "row_index", "route", "status", "in_x",
                                                     "out_label", "latency_ms"))))
    assert got[:6] == [("b-0", 0, "v2", 200, 100.0, "b", 1.0), ("b-0", 1, "v2", 200, 101.0, "b", 1.0),
                       ("b-1", 0, "plain", 200, 102.0, "b", 2.0), ("b-2", 0, "v2", 200, 103.0, "b", 3.0),
                       ("b-2", 1, "v2", 200, 104.0, "b", 3.0), ("b-2", 2, "v2", 200, 105.0, "b", 3.0)]
    assert got[6][:5] == ("req-0", 0, "v2", 200, 0.0) and got[7][:5] == ("req-1", 0, "v2", 400, None)
    assert {t.timestamp() for t in table[predlog.TIMESTAMP].to_pylist()[:6]} == {int(now_s * 1e6) / 1e6}
    hashed = table["in_email"].to_pylist()
    assert all(h is not None and "@" not in h for h in hashed[:7]) and hashed[7] is None
