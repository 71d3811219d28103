"""Request validation against a model schema: every error names the field."""

from __future__ import annotations

import numpy as np
import pytest

from contracts.errors import InvalidInput
from registry.schema import FeatureSpec, ModelSchema, OutputSpec
from serving.pipeline import prepare
from serving.types import Tensor

TABULAR = ModelSchema(
    kind="tabular",
    task="classification",
    inputs=(
        FeatureSpec(name="age", datatype="FP64"),
        FeatureSpec(name="score", datatype="FP64", nullable=False),
        FeatureSpec(name="ratio", datatype="FP64", allow_nonfinite=True),
        FeatureSpec(name="plan", datatype="BYTES", categorical=True),
        FeatureSpec(name="tier", datatype="BYTES", categorical=True, nullable=False),
    ),
    outputs=ModelSchema.classifier_outputs(2),
    class_labels=("no", "yes"),
)
TENSOR = ModelSchema(
    kind="tensor",
    task="regression",
    inputs=(FeatureSpec(name="x", datatype="FP32", shape=(-1, 3)),),
    outputs=(OutputSpec(name="y", datatype="FP32", shape=(1,)),),
)


def text(*values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [v.encode() if isinstance(v, str) else v for v in values]
    return out


def tabular_inputs(rows: int = 2, **replace: Tensor) -> list[Tensor]:
    base = {
        "age": Tensor("age", "FP64", (rows,), np.arange(rows, dtype=np.float64) + 30),
        "score": Tensor("score", "FP64", (rows,), np.full(rows, 600.0)),
        "ratio": Tensor("ratio", "FP64", (rows,), np.full(rows, 0.5)),
        "plan": Tensor("plan", "BYTES", (rows,), text(*["basic"] * rows)),
        "tier": Tensor("tier", "BYTES", (rows,), text(*["gold"] * rows)),
    }
    base.update(replace)
    return [t for t in base.values() if t is not None]


def fails(schema: ModelSchema, inputs: list[Tensor], *fragments: str) -> str:
    with pytest.raises(InvalidInput) as info:
        prepare(schema, inputs)
    message = info.value.message
    for fragment in fragments:
        assert fragment in message, message
    assert int(info.value.status) == 400
    return message


def test_valid_tabular_request_becomes_columns():
    prepared = prepare(TABULAR, tabular_inputs(3))
    assert prepared.rows == 3 and prepared.tensor is None
    np.testing.assert_array_equal(prepared.columns["age"], [30.0, 31.0, 32.0])
    assert prepared.columns["plan"].tolist() == [b"basic"] * 3


def test_column_shape_n_by_1_is_accepted():
    t = Tensor("age", "FP64", (2, 1), np.array([[1.0], [2.0]]))
    prepared = prepare(TABULAR, tabular_inputs(age=t))
    np.testing.assert_array_equal(prepared.columns["age"], [1.0, 2.0])


def test_numeric_features_accept_any_numeric_datatype():
    t = Tensor("age", "INT32", (2,), np.array([40, 41], dtype=np.int32))
    prepared = prepare(TABULAR, tabular_inputs(age=t))
    assert prepared.columns["age"].dtype == np.float64


def test_integer_categories_become_text():
    t = Tensor("plan", "INT64", (2,), np.array([3, 4]))
    assert prepare(TABULAR, tabular_inputs(plan=t)).columns["plan"].tolist() == ["3", "4"]


def test_unknown_input_is_named():
    extra = Tensor("height", "FP64", (2,), np.zeros(2))
    fails(TABULAR, tabular_inputs() + [extra], "inputs", "unknown input 'height'")


def test_missing_input_is_named():
    fails(TABULAR, tabular_inputs(score=None), "inputs", "missing input 'score'")


@pytest.mark.parametrize(
    "name, tensor, fragment",
    [
        ("age", Tensor("age", "BYTES", (2,), text("1", "2")), "inputs.age.datatype"),
        ("plan", Tensor("plan", "FP64", (2,), np.zeros(2)), "inputs.plan.datatype"),
        ("plan", Tensor("plan", "BOOL", (2,), np.zeros(2, dtype=bool)), "inputs.plan.datatype"),
    ],
)
def test_wrong_datatype_is_named(name, tensor, fragment):
    fails(TABULAR, tabular_inputs(**{name: tensor}), fragment)


@pytest.mark.parametrize("shape", [(), (2, 2), (1, 2, 1)])
def test_bad_column_shape_is_named(shape):
    t = Tensor("age", "FP64", shape, np.zeros(shape))
    fails(TABULAR, tabular_inputs(age=t), "inputs.age.shape")


def test_infinity_is_rejected_unless_allowed():
    bad = Tensor("age", "FP64", (2,), np.array([1.0, np.inf]))
    fails(TABULAR, tabular_inputs(age=bad), "inputs.age", "infinity")
    bad = Tensor("age", "FP64", (2,), np.array([-np.inf, 1.0]))
    fails(TABULAR, tabular_inputs(age=bad), "inputs.age", "infinity")
    ok = Tensor("ratio", "FP64", (2,), np.array([np.inf, -np.inf]))
    assert prepare(TABULAR, tabular_inputs(ratio=ok)).rows == 2


@pytest.mark.parametrize("value, datatype", [(np.inf, "FP64"), (-np.inf, "FP32"), (np.inf, "FP16")])
def test_a_single_infinite_value_is_rejected(value, datatype):
    dtype = {"FP64": np.float64, "FP32": np.float32, "FP16": np.float16}[datatype]
    fails(TABULAR, tabular_inputs(age=Tensor("age", datatype, (1,), np.array([value], dtype))), "inputs.age",
          "infinity")
    fails(TABULAR, tabular_inputs(score=Tensor("score", datatype, (1,), np.array([np.nan], dtype))), "inputs.score",
          "missing value")


def test_nan_is_a_missing_value():
    t = Tensor("age", "FP64", (2,), np.array([np.nan, 1.0]))
    assert np.isnan(prepare(TABULAR, tabular_inputs(age=t)).columns["age"][0])
    empty = Tensor("plan", "BYTES", (2,), text("", "basic"))
    assert prepare(TABULAR, tabular_inputs(plan=empty)).columns["plan"][0] is None


def test_missing_value_refused_where_the_schema_forbids_it():
    fails(TABULAR, tabular_inputs(score=Tensor("score", "FP64", (2,), np.array([np.nan, 1.0]))),
          "inputs.score", "missing value")
    fails(TABULAR, tabular_inputs(tier=Tensor("tier", "BYTES", (2,), text("", "gold"))),
          "inputs.tier", "missing value")


def test_inconsistent_batch_sizes():
    t = Tensor("age", "FP64", (3,), np.zeros(3))
    fails(TABULAR, tabular_inputs(2, age=t), "inputs", "same batch size", "[2, 3]")


# -- tensor models --------------------------------------------------------------------


def test_valid_tensor_request():
    x = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    prepared = prepare(TENSOR, [Tensor("x", "FP32", (4, 2, 3), x.reshape(-1))])
    assert prepared.rows == 4 and prepared.columns is None
    np.testing.assert_array_equal(prepared.tensor, x)


@pytest.mark.parametrize("shape", [(4, 3), (4, 2, 4), (4, 2, 3, 1)])
def test_tensor_shape_is_named(shape):
    fails(TENSOR, [Tensor("x", "FP32", shape, np.zeros(shape, dtype=np.float32))], "inputs.x.shape")


def test_tensor_without_batch_dimension():
    fails(TENSOR, [Tensor("x", "FP32", (), np.zeros((), dtype=np.float32))], "inputs.x.shape", "batch dimension")


def test_tensor_datatype_is_named():
    fails(TENSOR, [Tensor("x", "FP64", (1, 1, 3), np.zeros((1, 1, 3)))], "inputs.x.datatype", "FP32", "FP64")


def test_tensor_non_finite():
    x = np.zeros((1, 1, 3), dtype=np.float32)
    x[0, 0, 1] = -np.inf
    fails(TENSOR, [Tensor("x", "FP32", x.shape, x)], "inputs.x", "infinity")


def test_tensor_unknown_and_missing_input():
    x = np.zeros((1, 1, 3), dtype=np.float32)
    fails(TENSOR, [Tensor("z", "FP32", x.shape, x)], "unknown input 'z'")
    fails(TENSOR, [Tensor("x", "FP32", x.shape, x), Tensor("z", "FP32", x.shape, x)], "unknown input 'z'")
