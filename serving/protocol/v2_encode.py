"""Encode an ``InferenceResponse`` as an Open Inference Protocol v2 REST response.

Each output goes as JSON ``data`` (flat, row-major) or, when binary, as
``parameters.binary_data_size`` in the JSON header with its raw bytes appended after
the header in output order. ``BYTES`` outputs in JSON are UTF-8 text; a value that is
not valid UTF-8 is a 400 telling the client to request that output in binary
(never silently replaced). Non-finite floats in JSON: see ``json_data``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import orjson

from contracts.errors import MlgateError
from serving.protocol.binary import array_to_binary
from serving.protocol.datatypes import DATATYPES, fail
from serving.protocol.json_data import array_to_json
from serving.types import InferenceResponse, RequestedOutput, Tensor

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class _Named(Protocol):
    name: str


T = TypeVar("T", bound=_Named)


def select_outputs(outputs: Sequence[T], requested: Sequence[RequestedOutput] | None) -> list[T]:
    """The outputs the client asked for, in its order; all of them when it asked for none.

    Works on anything with a ``name`` (response tensors, or the schema's ``OutputSpec``
    so the data plane can refuse an unknown output before running the model).
    """
    if requested is None:
        return list(outputs)
    by_name = {o.name: o for o in outputs}
    selected: list[T] = []
    for i, wanted in enumerate(requested):
        if wanted.name not in by_name:
            known = ", ".join(repr(name) for name in by_name)
            fail(f"outputs[{i}].name", f"model has no output {wanted.name!r} (outputs: {known})")
        selected.append(by_name[wanted.name])
    return selected


def encode_infer_response(
    resp: InferenceResponse, *, requested: list[RequestedOutput] | None, binary_default: bool
) -> tuple[bytes, int | None]:
    """The response body and the JSON header length (None: the body is plain JSON)."""
    tensors = select_outputs(resp.outputs, requested)
    flags = [binary_default if r is None or r.binary_data is None else r.binary_data
             for r in (requested or [None] * len(tensors))]
    entries: list[dict[str, Any]] = []
    sections: list[bytes | memoryview] = []
    for tensor, binary in zip(tensors, flags):
        entry, section = _encode_output(tensor, binary)
        entries.append(entry)
        if section is not None:
            sections.append(section)
    header = orjson.dumps(_header(resp, entries), option=_OPTIONS)
    if not sections:
        return header, None
    return b"".join([header, *sections]), len(header)


def encode_error(message: str) -> bytes:
    return orjson.dumps({"error": message})


def _header(resp: InferenceResponse, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    header: dict[str, Any] = {"model_name": resp.model_name, "model_version": resp.model_version}
    if resp.id is not None:
        header["id"] = resp.id
    if resp.parameters:
        header["parameters"] = resp.parameters
    header["outputs"] = outputs
    return header


def _encode_output(tensor: Tensor, binary: bool) -> tuple[dict[str, Any], bytes | memoryview | None]:
    field = f"output {tensor.name!r}"
    data = _checked_data(tensor, field)
    entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype,
                             "shape": list(tensor.shape)}
    parameters = dict(tensor.parameters)
    if not binary:
        entry["data"] = array_to_json(data, tensor.datatype, field)
        if parameters:
            entry["parameters"] = parameters
        return entry, None
    section = array_to_binary(data, tensor.datatype, field)
    entry["parameters"] = {**parameters, "binary_data_size": len(section)}
    return entry, section


def _checked_data(tensor: Tensor, field: str) -> np.ndarray:
    """An output the model produced that contradicts itself is our bug: a 500."""
    if tensor.datatype not in DATATYPES:
        raise MlgateError(f"{field}: unknown datatype {tensor.datatype!r}")
    data = np.asarray(tensor.data)
    if data.size != math.prod(tensor.shape):
        raise MlgateError(f"{field}: {data.size} values do not fill shape {list(tensor.shape)}")
    return data
