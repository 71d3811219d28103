"""The prediction-log reader: columns, time bounds, schemas of several versions, dictionaries."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import pyarrow.parquet as pq

from contracts import predlog

T0 = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
T0_US = int(T0.timestamp() * 1e6)


def _segment(root, name: str, ts_s: list[int], extra: dict) -> predlog.Segment:
    directory = predlog.partition_dir(str(root), "m", T0.date())
    os.makedirs(directory, exist_ok=True)
    n = len(ts_s)
    table = pa.table({
        predlog.REQUEST_ID: [f"{name}-{i}" for i in range(n)],
        predlog.TIMESTAMP: pa.array([T0_US + s * 10**6 for s in ts_s], pa.timestamp("us", tz="UTC")),
        predlog.VERSION: ["1"] * n, **extra})
    path = f"{directory}/{predlog.segment_name(name, 1)}"
    pq.write_table(table, path, compression="zstd")
    return predlog.Segment(path, os.path.getsize(path), T0.date())


def _at(s: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def test_time_bounds_keep_since_and_drop_until(tmp_path):
    seg = _segment(tmp_path, "a", [0, 1, 2, 3], {"in_x": [0.0, 1.0, 2.0, 3.0]})
    table = predlog.read_segments(str(tmp_path), [seg], ["in_x"], since=_at(1), until=_at(3))
    assert table.column_names == ["in_x"] and table["in_x"].to_pylist() == [1.0, 2.0]
    whole = predlog.read_segments(str(tmp_path), [seg], ["in_x"], since=_at(0), until=_at(4))
    assert whole["in_x"].to_pylist() == [0.0, 1.0, 2.0, 3.0]
    assert predlog.read_segments(str(tmp_path), [seg], ["in_x"], since=_at(9)).num_rows == 0


def test_segments_of_different_versions_are_unified_in_the_requested_order(tmp_path):
    old = _segment(tmp_path, "a", [0, 1], {"in_x": [1.0, 2.0]})
    new = _segment(tmp_path, "b", [2], {"in_x": [3.0], "in_c": ["red"]})
    table = predlog.read_segments(str(tmp_path), [old, new], ["in_c", "in_x", "in_absent"])
    assert table.column_names == ["in_c", "in_x"]
    assert table.to_pydict() == {"in_c": [None, None, "red"], "in_x": [1.0, 2.0, 3.0]}


def test_dictionary_columns_hold_the_same_values(tmp_path):
    seg = _segment(tmp_path, "a", [0, 1, 2], {"in_c": ["red", None, "red"], "in_x": [1.0, 2.0, 3.0]})
    cols = ["in_c", "in_x", predlog.VERSION]
    plain = predlog.read_segments(str(tmp_path), [seg], cols)
    coded = predlog.read_segments(str(tmp_path), [seg], cols, dictionary=["in_c", "in_x", predlog.VERSION, "in_no"])
    assert pa.types.is_dictionary(coded.schema.field("in_c").type)
    assert pa.types.is_dictionary(coded.schema.field(predlog.VERSION).type)
    assert coded.schema.field("in_x").type == pa.float64()  # only strings are dictionary-encoded
    assert coded.to_pydict() == plain.to_pydict()
