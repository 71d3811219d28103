"""Test helpers shared by the serving tiers: demo rows as a client writes them, and the
oracle: a model version's predictions computed with plain torch, one row at a time."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch

from registry.preprocess import Preprocessor
from registry.schema import ModelSchema
from registry.store import ModelVersion

ROW = {"age": 42, "income": 52000, "tenure_months": 18, "balance": 1200.5, "credit_score": 640,
       "num_products": 2, "region": "north", "plan": "basic", "channel": "web"}


def demo_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows of the demo dataset as JSON values (missing: None), with some unseen categories."""
    from training import demo_data

    cols = demo_data.generate(n, seed=seed, shift=0.5, missing_share=0.1)
    schema = demo_data.demo_schema()
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for spec in schema.inputs:
            v = cols[spec.name][i]
            if spec.categorical:
                row[spec.name] = None if v is None else str(v)
            else:
                row[spec.name] = None if math.isnan(v) else float(v)
        if i % 7 == 3:
            row["region"] = "atlantis"  # a category never seen in training
        rows.append(row)
    return rows


def v2_inputs(schema: ModelSchema, rows: list[dict[str, Any]], column_shape: str = "[N]") -> list[dict]:
    """JSON v2 inputs, one per feature. A missing number travels as NaN (write the body with
    ``json.dumps``, which emits the ``NaN`` literal as tritonclient does); a missing category as ""."""
    inputs = []
    for spec in schema.inputs:
        values = [row.get(spec.name) for row in rows]
        if spec.categorical:
            values = ["" if v is None else v for v in values]
        else:
            values = [math.nan if v is None else v for v in values]
        shape = [len(rows)] if column_shape == "[N]" else [len(rows), 1]
        inputs.append({"name": spec.name, "datatype": "BYTES" if spec.categorical else "FP64",
                       "shape": shape, "data": values})
    return inputs


def demo_doc(**change: dict) -> dict:
    """A valid two-row v2 request for ``demo`` with some inputs' fields replaced."""
    from training.demo_data import demo_schema

    inputs = v2_inputs(demo_schema(), [ROW, ROW])
    for name, patch in change.items():
        for item in inputs:
            if item["name"] == name:
                item.update(patch)
    return {"inputs": inputs}


def load_module(version: ModelVersion) -> torch.jit.ScriptModule:
    return torch.jit.load(io.BytesIO(version.read("model.pt")), map_location="cpu")


def reference_probabilities(version: ModelVersion, rows: list[dict[str, Any]]) -> np.ndarray:
    """Tabular classifier oracle: its TorchScript and its preprocessor, row by row."""
    module = load_module(version)
    schema = version.schema
    pre = Preprocessor.from_json(schema, version.read("preprocessor.json").decode())
    out = []
    for row in rows:
        cols = {}
        for spec in schema.inputs:
            v = row.get(spec.name)
            if spec.categorical:
                cols[spec.name] = np.array([v if v not in (None, "") else None], dtype=object)
            else:
                cols[spec.name] = np.array([np.nan if v is None else v], dtype=np.float64)
        with torch.no_grad():
            out.append(module(torch.from_numpy(pre.transform(cols))).numpy()[0])
    return np.array(out, dtype=np.float32)


def reference_tensor(version: ModelVersion, x: np.ndarray) -> np.ndarray:
    """Tensor model oracle: its TorchScript on each row alone."""
    module = load_module(version)
    with torch.no_grad():
        return np.concatenate([module(torch.from_numpy(x[i:i + 1].astype(np.float32))).numpy() for i in range(len(x))])


def labels_of(schema: ModelSchema, probabilities: np.ndarray) -> list[str]:
    return [schema.class_labels[i] for i in probabilities.argmax(axis=1)]
