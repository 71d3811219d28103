"""The plain JSON route: ``{"instances": [{feature: value}, ...]}`` -> ``{"predictions": [...]}``.

Rows are turned into one tensor per feature (numeric: FP64 with null -> NaN;
categorical: BYTES with null -> empty) so both routes share validation and the data plane.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson

from contracts.errors import InvalidInput, PayloadTooLarge
from registry.schema import ModelSchema
from serving.protocol.json_data import check_request_id, json_to_array
from serving.types import Tensor


def decode_instances(body: bytes, schema: ModelSchema,
                     max_rows: int | None = None) -> tuple[list[Tensor], str | None, dict]:
    """Returns (inputs, request id, parameters); more than ``max_rows`` instances is a 413,
    refused before any row is converted."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body: malformed JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InvalidInput("body: expected a JSON object with 'instances'")
    rows = doc.get("instances")
    if not isinstance(rows, list) or not rows:
        raise InvalidInput("instances: expected a non-empty list of rows")
    if max_rows is not None and len(rows) > max_rows:
        raise PayloadTooLarge(f"instances: {len(rows)} rows; at most {max_rows} per request (max_rows_per_request)")
    req_id = check_request_id(doc.get("id"), "id")
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidInput("parameters: expected an object")
    if schema.kind == "tensor":
        return [_tensor_rows(rows, schema)], req_id, params
    return _feature_rows(rows, schema), req_id, params


def _feature_rows(rows: list[Any], schema: ModelSchema) -> list[Tensor]:
    names = set(schema.feature_names)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidInput(f"instances[{i}]: expected an object of feature values")
        extra = row.keys() - names
        if extra:
            raise InvalidInput(f"instances[{i}].{sorted(extra)[0]}: unknown feature")
    tensors = []
    for spec in schema.inputs:
        values = [row.get(spec.name) for row in rows]
        if spec.categorical:
            tensors.append(Tensor(spec.name, "BYTES", (len(rows),), _categories(values, spec.name)))
        else:
            tensors.append(Tensor(spec.name, "FP64", (len(rows),), _numbers(values, spec.name)))
    return tensors


def _numbers(values: list[Any], name: str) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None:
            out[i] = math.nan
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[i] = v
        else:
            raise InvalidInput(f"instances[{i}].{name}: expected a number or null, got {type(v).__name__}")
    return out


def _categories(values: list[Any], name: str) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None:
            out[i] = b""
        elif isinstance(v, str):
            out[i] = v.encode()
        elif isinstance(v, (int, bool)):
            out[i] = str(v).encode()
        else:
            raise InvalidInput(f"instances[{i}].{name}: expected a string or null, got {type(v).__name__}")
    return out


def _tensor_rows(rows: list[Any], schema: ModelSchema) -> Tensor:
    """Nested rows, checked as strictly as v2 JSON data: no strings, booleans or nulls for
    numbers, no ragged rows."""
    spec = schema.inputs[0]
    shape, level = [], rows
    while isinstance(level, list):
        shape.append(len(level))
        level = level[0] if level else None
    data = json_to_array(rows, spec.datatype, tuple(shape), "instances")
    return Tensor(spec.name, spec.datatype, data.shape, data)


def encode_predictions(outputs: dict[str, np.ndarray], schema: ModelSchema, model: str, version: int,
                       req_id: str | None) -> bytes:
    if schema.task == "classification":
        labels = schema.class_labels
        probs = outputs["probabilities"]
        preds = [
            {"label": lab.decode(), "probabilities": dict(zip(labels, map(float, p)))}
            for lab, p in zip(outputs["label"], probs)
        ]
    else:
        preds = outputs[schema.outputs[0].name].tolist()
    doc = {"predictions": preds, "model_name": model, "model_version": str(version)}
    if req_id is not None:
        doc["id"] = req_id
    return orjson.dumps(doc)
