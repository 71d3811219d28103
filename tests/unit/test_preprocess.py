"""The fitted tabular preprocessor, checked against an independent numpy computation."""

from __future__ import annotations

import numpy as np
import pytest

from registry.preprocess import Preprocessor
from registry.schema import FeatureSpec, ModelSchema
from training import demo_data

SCHEMA = ModelSchema(
    kind="tabular",
    task="classification",
    inputs=(
        FeatureSpec(name="a", datatype="FP64"),
        FeatureSpec(name="b", datatype="FP64"),
        FeatureSpec(name="color", datatype="BYTES", categorical=True),
    ),
    outputs=ModelSchema.classifier_outputs(2),
    class_labels=("no", "yes"),
)


def training_columns(rows: int = 500, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(5.0, 2.0, rows)
    a[::17] = np.nan  # missing values are left out of the fit
    color = np.array(["red", "green", "blue"], dtype=object)[rng.integers(0, 3, rows)]
    color[::23] = None
    return {"a": a, "b": np.full(rows, 3.0), "color": color}  # b is constant


def expected_matrix(train: dict[str, np.ndarray], cols: dict[str, np.ndarray], clip_z: float = 10.0) -> np.ndarray:
    """The documented encoding, written out independently of the implementation."""
    n = len(cols["a"])
    parts = []
    for name in ("a", "b"):
        t = train[name][np.isfinite(train[name])]
        std = t.std() if t.std() > 0 else 1.0
        x = np.asarray(cols[name], dtype=np.float64)
        z = np.clip((x - t.mean()) / std, -clip_z, clip_z)
        missing = np.isnan(x)
        parts += [np.where(missing, 0.0, z), missing.astype(float)]
    levels = sorted({v for v in train["color"] if v is not None})
    onehot = np.zeros((n, len(levels) + 2))
    for i, v in enumerate(cols["color"]):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            onehot[i, len(levels) + 1] = 1  # missing
        else:
            text = v.decode() if isinstance(v, bytes) else str(v)
            onehot[i, levels.index(text) if text in levels else len(levels)] = 1  # else: unseen
    return np.column_stack(parts + [onehot]).astype(np.float32)


def test_fit_uses_the_training_columns_only():
    train = training_columns()
    pre = Preprocessor.fit(SCHEMA, train)
    a = train["a"][np.isfinite(train["a"])]
    assert pre.numeric["a"].mean == pytest.approx(a.mean())
    assert pre.numeric["a"].std == pytest.approx(a.std())
    assert pre.numeric["b"].std == 1.0  # constant column: no division by zero
    assert pre.categorical["color"].categories == ("blue", "green", "red")
    assert pre.width == 2 + 2 + (3 + 2)
    out = pre.transform(train)
    assert out.dtype == np.float32 and out.shape == (500, 9)
    np.testing.assert_allclose(out, expected_matrix(train, train), rtol=1e-6, atol=1e-6)


def test_unseen_categories_and_missing_values_have_defined_encodings():
    train = training_columns()
    pre = Preprocessor.fit(SCHEMA, train)
    cols = {
        "a": np.array([np.nan, 5.0, 1.0, np.nan]),
        "b": np.array([3.0, np.nan, 3.0, 3.0]),
        "color": np.array(["purple", None, b"red", float("nan")], dtype=object),
    }
    out = pre.transform(cols)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, expected_matrix(train, cols), rtol=1e-6, atol=1e-6)
    unseen, missing = 3 + 4, 4 + 4  # columns after a, a_missing, b, b_missing, 3 colors
    assert out[0, unseen] == 1 and out[0, :4].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert out[1, missing] == 1 and out[1, 3] == 1  # None and NaN b: missing
    assert out[3, missing] == 1  # pandas-style NaN in a categorical column is missing too
    assert (out[:, 4:].sum(axis=1) == 1).all()  # exactly one category slot per row


def test_extreme_numeric_values_are_clipped():
    train = training_columns()
    pre = Preprocessor.fit(SCHEMA, train, clip_z=4.0)
    cols = {"a": np.array([1e300, -1e300, np.inf, -np.inf, 5.0]), "b": np.full(5, 3.0),
            "color": np.array(["red"] * 5, dtype=object)}
    out = pre.transform(cols)
    assert out[:4, 0].tolist() == [4.0, -4.0, 4.0, -4.0]
    assert out[:4, 1].tolist() == [0.0] * 4  # extreme is not missing
    np.testing.assert_allclose(out, expected_matrix(train, cols, clip_z=4.0), rtol=1e-6, atol=1e-6)


def test_json_round_trip_is_exact():
    train = training_columns()
    pre = Preprocessor.fit(SCHEMA, train, clip_z=7.5)
    back = Preprocessor.from_json(SCHEMA, pre.to_json())
    assert back.numeric == pre.numeric
    assert back.categorical == pre.categorical
    assert back.clip_z == 7.5 and back.width == pre.width
    assert back.to_json() == pre.to_json()
    np.testing.assert_array_equal(back.transform(train), pre.transform(train))


@pytest.mark.parametrize("rows", [1, 64, 65, 3000])
def test_small_and_large_batch_paths_agree(rows):
    """Up to 64 rows categories are looked up in a dict, above through pandas."""
    schema = demo_data.demo_schema()
    pre = Preprocessor.fit(schema, demo_data.generate(2000, seed=0))
    cols = demo_data.generate(rows, seed=5, shift=1.0, missing_share=0.2)
    mixed = np.array(["north", "atlantis", None, float("nan"), b"south", "", 7], dtype=object)
    cols["region"] = mixed[np.arange(rows) % len(mixed)]
    whole = pre.transform(cols)
    one_by_one = np.concatenate([pre.transform({k: v[i:i + 1] for k, v in cols.items()}) for i in range(rows)])
    np.testing.assert_array_equal(whole, one_by_one)
    if rows > 64:  # the same rows in small chunks take the dict path
        chunks = np.concatenate([pre.transform({k: v[i:i + 50] for k, v in cols.items()})
                                 for i in range(0, rows, 50)])
        np.testing.assert_array_equal(whole, chunks)


def test_demo_model_inputs_are_never_an_error():
    schema = demo_data.demo_schema()
    pre = Preprocessor.fit(schema, demo_data.generate(1000, seed=0))
    cols = {spec.name: (np.full(3, np.nan) if not spec.categorical else np.array([None, "zzz", b""], dtype=object))
            for spec in schema.inputs}
    out = pre.transform(cols)
    assert out.shape == (3, pre.width) and np.isfinite(out).all()
