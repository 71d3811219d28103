"""Schema validation: every bad row is reported with its row number and reasons, and kept aside."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from contracts.errors import InvalidInput
from training.dataschema import ColumnSpec, DatasetSchema
from training.ingest import ingest
from training.validate import infer_schema, validate

SCHEMA = DatasetSchema(
    features=(ColumnSpec(name="x", kind="numeric", nullable=False),
              ColumnSpec(name="y", kind="numeric"),
              ColumnSpec(name="color", kind="categorical", levels=("red", "green"))),
    target="label", task="classification", class_labels=("a", "b"),
)


def _bad_table() -> pa.Table:
    return pa.table({
        "x": ["1", "2", "oops", "4", None, "6", "inf"],
        "y": ["0.5", "", "1", "nan", "2", "x1", "3"],
        "color": ["red", "green", "red", "purple", "green", None, "red"],
        "label": ["a", "b", "a", "b", "c", None, "a"],
    })


def _reasons(validated) -> dict[int, str]:
    rej = validated.rejected.to_pydict()
    return dict(zip(rej["source_row"], rej["reasons"]))


def test_bad_rows_are_reported_with_row_numbers_and_every_reason():
    reasons = _reasons(validate(_bad_table(), SCHEMA))
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert reasons[2] == "x: not a number ('oops')"
    assert reasons[3] == "color: unknown level 'purple'"  # y 'nan' is a missing value, allowed
    assert reasons[4] == "x: missing; target label: unknown level 'c'"
    assert reasons[5] == "y: not a number ('x1'); target label: missing"  # color None: allowed
    assert reasons[6] == "x: not finite (inf)"


def test_accepted_rows_are_clean_and_keep_their_source_rows():
    v = validate(_bad_table(), SCHEMA)
    np.testing.assert_array_equal(v.source_rows, [0, 1])
    np.testing.assert_array_equal(v.columns["x"], [1.0, 2.0])
    assert np.isnan(v.columns["y"][1])  # empty string: missing, allowed (nullable)
    assert v.columns["color"].tolist() == ["red", "green"]
    assert v.columns["label"].tolist() == ["a", "b"]


def test_rejected_rows_keep_the_source_values():
    rej = validate(_bad_table(), SCHEMA).rejected
    assert rej.column_names == ["x", "y", "color", "label", "source_row", "reasons"]
    assert rej["x"].to_pylist()[0] == "oops"


def test_typed_parquet_columns(tmp_path):
    t = pa.table({"x": pa.array([1.0, float("nan"), 3.0]), "y": pa.array([1, 2, None], pa.int64()),
                  "color": ["red", "red", "green"], "label": ["a", "b", "a"]})
    v = validate(t, SCHEMA)
    assert _reasons(v) == {1: "x: missing"}
    np.testing.assert_array_equal(v.columns["y"][:1], [1.0])
    assert np.isnan(v.columns["y"][1])


def test_missing_column_is_an_error_not_a_row_problem():
    with pytest.raises(InvalidInput, match="missing column.*color"):
        validate(pa.table({"x": [1.0], "y": [1.0], "label": ["a"]}), SCHEMA)


def test_ingest_writes_rejected_rows_aside(tmp_path, store):
    path = tmp_path / "rows.csv"
    pacsv.write_csv(pa.table({"x": ["1", "2", "bad"] * 20, "color": ["red", "green", "red"] * 20,
                              "label": ["a", "b", "a"] * 20}), path)
    ds = ingest(store, str(path), "t", target="label").dataset
    assert ds.manifest["rows"]["rejected"] == 0  # inferred: 'x' is categorical, so nothing is bad
    bad = pa.table({"x": [str(i) for i in range(99)] + ["bad"], "color": ["red"] * 100,
                    "label": ["a", "b"] * 50})
    pq.write_table(bad, tmp_path / "bad.parquet")
    ds = ingest(store, str(tmp_path / "bad.parquet"), "u", target="label").dataset
    rejected = pq.read_table(f"{ds.path}/rejected.parquet").to_pydict()
    assert rejected["source_row"] == [99] and rejected["reasons"] == ["x: not a number ('bad')"]
    assert sum(ds.manifest["rows"][s] for s in ("train", "validation", "test")) == 99


def test_all_rows_rejected_is_an_error(store, tmp_path):
    pq.write_table(pa.table({"x": ["1", "2"], "y": ["1", "1"], "color": ["red", "red"],
                             "label": [None, None]}), tmp_path / "t.parquet")
    with pytest.raises(InvalidInput, match="all 2 rows were rejected"):
        ingest(store, str(tmp_path / "t.parquet"), "v", schema=SCHEMA)


def test_inference():
    t = pa.table({"id": [str(i) for i in range(100)], "num_as_text": [str(i / 3) for i in range(100)],
                  "typo": [str(i) for i in range(99)] + ["n/a?"], "cat": ["u", "v"] * 50,
                  "target": [float(i) for i in range(100)]})
    schema = infer_schema(t, "target", drop=("id",))
    kinds = {c.name: (c.kind, c.levels) for c in schema.features}
    assert kinds == {"num_as_text": ("numeric", None), "typo": ("numeric", None), "cat": ("categorical", ("u", "v"))}
    assert schema.task == "regression" and schema.class_labels == ()
    assert infer_schema(t, "cat", drop=("id", "target")).class_labels == ("u", "v")


def test_inference_refuses_id_like_columns():
    t = pa.table({"id": [f"u{i}" for i in range(300)], "label": ["a", "b"] * 150})
    with pytest.raises(InvalidInput, match="'id': 300 distinct values"):
        infer_schema(t, "label", max_levels=256)
