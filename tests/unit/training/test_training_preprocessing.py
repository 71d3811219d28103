"""Preprocessing in training: fitted on the training split only, round-trips through the
registry unchanged, maps unseen categories and missing values to their own encodings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from registry import Registry
from registry.preprocess import Preprocessor
from registry.torch_io import register_torch_model
from training.ingest import ingest
from training.models import TabularMLP, export_classifier


@pytest.fixture
def dataset(store):
    return ingest(store, "demo:3000", "demo").dataset


def test_fitted_on_the_training_split_only(dataset):
    schema = dataset.schema.model_schema()
    train, test = dataset.columns("train"), dataset.columns("test")
    pre = Preprocessor.fit(schema, train)
    assert pre.numeric["balance"].mean == pytest.approx(np.nanmean(train["balance"]))
    assert pre.numeric["balance"].mean != pytest.approx(np.nanmean(test["balance"]))


def test_round_trip_through_json_and_the_registry(dataset, tmp_path):
    schema = dataset.schema.model_schema()
    pre = Preprocessor.fit(schema, dataset.columns("train"))
    test = dataset.columns("test")
    again = Preprocessor.from_json(schema, pre.to_json())
    np.testing.assert_array_equal(pre.transform(test), again.transform(test))
    mv = register_torch_model(Registry(str(tmp_path / "reg")), "m", export_classifier(TabularMLP(pre.width, 2)),
                              schema, preprocessor=pre)
    np.testing.assert_array_equal(pre.transform(test), mv.preprocessor().transform(test))


def test_unseen_categories_and_missing_values(dataset):
    schema = dataset.schema.model_schema()
    pre = Preprocessor.fit(schema, dataset.columns("train"))
    rows = {k: v[:3].copy() for k, v in dataset.columns("test").items()}
    rows["plan"] = np.array(["gold", None, "basic"], dtype=object)
    rows["income"] = np.array([np.nan, 1.0, 2.0])
    x = pre.transform(rows)
    enc = pre.categorical["plan"]
    offset = _offset(pre, "plan")
    n = len(enc.categories)
    assert x[0, offset + n] == 1 and x[0, offset:offset + enc.width].sum() == 1  # unseen
    assert x[1, offset + n + 1] == 1 and x[1, offset:offset + enc.width].sum() == 1  # missing
    assert x[2, offset + enc.categories.index("basic")] == 1
    inc = _offset(pre, "income")
    assert x[0, inc] == 0.0 and x[0, inc + 1] == 1.0  # missing numeric: the mean, flagged
    assert np.isfinite(x).all()


def test_served_model_runs_on_preprocessed_rows(dataset):
    schema = dataset.schema.model_schema()
    pre = Preprocessor.fit(schema, dataset.columns("train"))
    module = export_classifier(TabularMLP(pre.width, 2))
    with torch.inference_mode():
        proba = module(torch.from_numpy(pre.transform(dataset.columns("test")))).numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def _offset(pre: Preprocessor, name: str) -> int:
    offset = 0
    for spec in pre.schema.inputs:
        if spec.name == name:
            return offset
        offset += pre.categorical[spec.name].width if spec.categorical else 2
    raise KeyError(name)
