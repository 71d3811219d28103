"""Row-level validation of Arrow batches: serving's checks, one row at a time."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from batch.validate import accepts, check_batch, feature_values
from registry.preprocess import Preprocessor
from registry.schema import FeatureSpec
from serving.pipeline import prepare
from serving.protocol.plain import decode_instances
from training import demo_data

NUM = FeatureSpec(name="x", datatype="FP64")
STRICT = FeatureSpec(name="x", datatype="FP64", nullable=False)
INF_OK = FeatureSpec(name="x", datatype="FP64", allow_nonfinite=True)
CAT = FeatureSpec(name="c", datatype="BYTES", categorical=True)
CAT_STRICT = FeatureSpec(name="c", datatype="BYTES", categorical=True, nullable=False)


def test_numbers_missing_and_infinity():
    arr = pa.array([1.5, None, math.nan, math.inf, -math.inf, 1e300])
    values, bad = feature_values(NUM, arr)
    np.testing.assert_array_equal(values, [1.5, np.nan, np.nan, np.inf, -np.inf, 1e300])
    assert bad == {3: "x: non-finite value (infinity) not allowed", 4: "x: non-finite value (infinity) not allowed"}
    assert feature_values(STRICT, arr)[1] == {**bad, 1: "x: missing value (NaN) not allowed",
                                              2: "x: missing value (NaN) not allowed"}
    assert feature_values(INF_OK, arr)[1] == {}


@pytest.mark.parametrize("arr", [pa.array([1, None, 3], pa.int64()), pa.array([1, None, 3], pa.uint8()),
                                 pa.array([1.0, None, 3.0], pa.float32()), pa.array([True, None, True]),
                                 pa.array([1, None, 3]).dictionary_encode()])
def test_numeric_columns_of_any_number_type(arr):
    values, bad = feature_values(NUM, arr)
    assert bad == {} and values.dtype == np.float64
    np.testing.assert_array_equal(values, [1.0, np.nan, float(arr[2].as_py())])


def test_numbers_in_text_are_parsed_and_non_numbers_rejected_by_row():
    values, bad = feature_values(NUM, pa.array(["1.5", " 2 ", None, "nan", "abc", "inf"]))
    np.testing.assert_array_equal(values[[0, 1, 2, 3]], [1.5, 2.0, np.nan, np.nan])
    assert bad == {4: "x: expected a number, got 'abc'", 5: "x: non-finite value (infinity) not allowed"}
    values, bad = feature_values(NUM, pa.array(["1", "2e3"]))  # all numbers: one vectorised cast
    assert bad == {} and values.tolist() == [1.0, 2000.0]


def test_categories_empty_and_null_are_missing_integers_are_text():
    values, bad = feature_values(CAT, pa.array(["north", "", None, "north"]))
    assert values.tolist() == ["north", None, None, "north"] and bad == {}
    assert feature_values(CAT, pa.array([7, None], pa.int32()))[0].tolist() == ["7", None]
    assert feature_values(CAT, pa.array(["a", None]).dictionary_encode())[0].tolist() == ["a", None]
    assert feature_values(CAT, pa.array([b"a", b""], pa.binary()))[0].tolist() == [b"a", None]
    assert feature_values(CAT, pa.nulls(2))[0].tolist() == [None, None]
    assert feature_values(CAT_STRICT, pa.array(["a", "", None]))[1] == {1: "c: missing value not allowed",
                                                                        2: "c: missing value not allowed"}


def test_a_category_column_of_floats_rejects_every_row():
    _, bad = feature_values(CAT, pa.array([1.0, 2.0]))
    assert bad == {0: "c: a categorical feature takes text or integers, got double", 1: bad[0]}


@pytest.mark.parametrize("dtype, numeric, categorical", [
    (pa.float32(), True, False), (pa.int64(), True, True), (pa.string(), True, True),
    (pa.large_string(), True, True), (pa.bool_(), True, False), (pa.null(), True, True),
    (pa.dictionary(pa.int32(), pa.string()), True, True), (pa.timestamp("s"), False, False),
    (pa.list_(pa.float64()), False, False), (pa.decimal128(10, 2), True, False),
])
def test_accepted_column_types(dtype, numeric, categorical):
    assert accepts(NUM, dtype) is numeric
    assert accepts(CAT, dtype) is categorical


def demo_batch() -> tuple[pa.RecordBatch, list[dict]]:
    rows = [
        {"age": 42.0, "income": 52000.0, "tenure_months": 18.0, "balance": 1200.5, "credit_score": 640.0,
         "num_products": 2.0, "region": "north", "plan": "basic", "channel": "web"},
        {"age": None, "income": 1e300, "tenure_months": None, "balance": -1e300, "credit_score": 0.0,
         "num_products": None, "region": "atlantis", "plan": None, "channel": ""},
        {"age": math.inf, "income": 1.0, "tenure_months": 1.0, "balance": 1.0, "credit_score": 1.0,
         "num_products": 1.0, "region": "south", "plan": "pro", "channel": "ios"},
        {"age": 30.0, "income": "lots", "tenure_months": 1.0, "balance": -math.inf, "credit_score": 1.0,
         "num_products": 1.0, "region": None, "plan": "pro", "channel": "ios"},
    ]
    cols = {}
    for spec in demo_data.demo_schema().inputs:
        values = [r[spec.name] for r in rows]
        cols[spec.name] = pa.array([None if v is None else str(v) for v in values]) if spec.name == "income" \
            else pa.array(values, pa.string() if spec.categorical else pa.float64())
    return pa.RecordBatch.from_pydict(cols), rows


def test_rows_failing_validation_are_set_apart_with_every_reason():
    batch, _ = demo_batch()
    checked = check_batch(demo_data.demo_schema(), batch)
    assert checked.valid.tolist() == [True, True, False, False]
    assert checked.reasons == ["age: non-finite value (infinity) not allowed",
                               "income: expected a number, got 'lots'; "
                               "balance: non-finite value (infinity) not allowed"]
    assert checked.prepared.rows == 2 and all(len(v) == 2 for v in checked.prepared.columns.values())


def test_valid_rows_reach_the_preprocessor_exactly_as_from_the_plain_route():
    """Serving hands categories over as bytes, batch as str: the model's matrix is the same."""
    schema = demo_data.demo_schema()
    batch, rows = demo_batch()
    checked = check_batch(schema, batch.slice(0, 2))
    assert checked.valid is None and checked.reasons == []
    served = prepare(schema, decode_instances(json.dumps({"instances": rows[:2]}).encode(), schema)[0])
    pre = Preprocessor.fit(schema, demo_data.generate(500, seed=0))
    np.testing.assert_array_equal(pre.transform(checked.prepared.columns), pre.transform(served.columns))
    for spec in schema.inputs:
        if not spec.categorical:
            np.testing.assert_array_equal(checked.prepared.columns[spec.name], served.columns[spec.name])
