"""The plain JSON route's codec: rows in, one tensor per feature out; errors name the field."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from contracts.errors import InvalidInput
from registry.schema import FeatureSpec, ModelSchema, OutputSpec
from serving.protocol.plain import decode_instances, encode_predictions
from training.demo_data import demo_schema

DEMO = demo_schema()
TENSOR = ModelSchema(
    kind="tensor",
    task="regression",
    inputs=(FeatureSpec(name="x", datatype="FP32", shape=(3,)),),
    outputs=(OutputSpec(name="y", datatype="FP32", shape=()),),
)
ROW = {"age": 42, "income": 52000, "tenure_months": 18, "balance": 1200.5, "credit_score": 640,
       "num_products": 2, "region": "north", "plan": "basic", "channel": "web"}


def decode(doc, schema=DEMO):
    return decode_instances(doc if isinstance(doc, bytes) else orjson.dumps(doc), schema)


def test_rows_become_one_tensor_per_feature():
    inputs, req_id, params = decode({"instances": [ROW, {**ROW, "age": None, "region": None}],
                                     "id": "r-1", "parameters": {"timeout_s": 2}})
    assert req_id == "r-1" and params == {"timeout_s": 2}
    by_name = {t.name: t for t in inputs}
    assert list(by_name) == DEMO.feature_names
    age = by_name["age"]
    assert age.datatype == "FP64" and age.shape == (2,)
    assert age.data[0] == 42 and math.isnan(age.data[1])
    region = by_name["region"]
    assert region.datatype == "BYTES" and region.data.tolist() == [b"north", b""]


def test_absent_features_are_missing_and_ints_are_categories():
    inputs, _, _ = decode({"instances": [{"region": 3}]})
    by_name = {t.name: t for t in inputs}
    assert math.isnan(by_name["income"].data[0])
    assert by_name["plan"].data.tolist() == [b""]
    assert by_name["region"].data.tolist() == [b"3"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "body: malformed JSON"),
        (b"", "body: malformed JSON"),
        (b"[1, 2]", "body: expected a JSON object"),
        (b'{"rows": []}', "instances"),
        (b'{"instances": []}', "instances"),
        (b'{"instances": {"age": 1}}', "instances"),
        (b'{"instances": [1]}', "instances[0]"),
        (b'{"instances": [{"age": 1}], "id": 5}', "id"),
        (b'{"instances": [{"age": 1}], "parameters": [1]}', "parameters"),
        (b'{"instances": [{"age": 1}, {"height": 2}]}', "instances[1].height"),
        (b'{"instances": [{"age": "old"}]}', "instances[0].age"),
        (b'{"instances": [{"age": true}]}', "instances[0].age"),
        (b'{"instances": [{"age": [1]}]}', "instances[0].age"),
        (b'{"instances": [{"age": 1}, {"plan": 1.5}]}', "instances[1].plan"),
        (b'{"instances": [{"plan": {"a": 1}}]}', "instances[0].plan"),
        (b'{"instances": [{"age": 1e999}]}', "body"),
    ],
)
def test_decoding_errors_name_the_field(body, fragment):
    with pytest.raises(InvalidInput) as info:
        decode(body)
    assert fragment in info.value.message
    assert int(info.value.status) == 400


def test_tensor_model_rows():
    inputs, _, _ = decode({"instances": [[1, 2, 3], [4, 5, 6.5]]}, TENSOR)
    (x,) = inputs
    assert x.name == "x" and x.datatype == "FP32" and x.shape == (2, 3)
    np.testing.assert_array_equal(x.data, np.array([[1, 2, 3], [4, 5, 6.5]], dtype=np.float32))


@pytest.mark.parametrize("rows", [
    [[1, 2], [3]], [{"x": 1}], [[1, [2], 3]],
    [["1", "2", "3"]], [[True, 2, 3]], [[None, 2, 3]], [[1, 2, 3], 4],
])
def test_tensor_model_bad_rows(rows):
    with pytest.raises(InvalidInput) as info:
        decode({"instances": rows}, TENSOR)
    assert info.value.message.startswith("instances")


def test_tensor_model_rows_of_the_wrong_width_fail_validation_not_decoding():
    from serving.pipeline import prepare

    inputs, _, _ = decode({"instances": [[1, 2]]}, TENSOR)
    with pytest.raises(InvalidInput, match="inputs.x.shape"):
        prepare(TENSOR, inputs)


def test_encode_classifier_predictions():
    outputs = {"probabilities": np.array([[0.25, 0.75], [0.9, 0.1]], dtype=np.float32),
               "label": np.array([b"churn", b"stay"], dtype=object)}
    doc = orjson.loads(encode_predictions(outputs, DEMO, "demo", "3", "r-9"))
    assert doc["model_name"] == "demo" and doc["model_version"] == "3" and doc["id"] == "r-9"
    assert doc["predictions"] == [
        {"label": "churn", "probabilities": {"stay": 0.25, "churn": 0.75}},
        {"label": "stay", "probabilities": {"stay": pytest.approx(0.9), "churn": pytest.approx(0.1)}},
    ]


def test_encode_regression_predictions_without_id():
    doc = orjson.loads(encode_predictions({"y": np.array([1.5, -2.0], dtype=np.float32)}, TENSOR, "t", "1", None))
    assert doc == {"predictions": [1.5, -2.0], "model_name": "t", "model_version": "1"}
