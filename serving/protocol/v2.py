"""The Open Inference Protocol v2 REST codec: an infer request's body to an
``InferenceRequest``, an ``InferenceResponse`` to the response body.

**Requests.** ``header_length`` is the ``Inference-Header-Content-Length`` header: the JSON header
is ``body[:header_length]`` and the binary sections of the inputs that declare
``parameters.binary_data_size`` follow it, in input order, with nothing after them.

Request parameters are kept as sent; two are also interpreted, as Triton does:
``timeout`` is an integer number of MICROseconds (0 = no deadline) and becomes
``timeout_s``; ``binary_data_output`` (bool) becomes ``binary_output_default``.
Shared-memory and classification parameters are refused, not ignored.

**Responses.** Each output goes as JSON ``data`` (flat, row-major) or, when binary, as
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
from serving.protocol.binary import array_to_binary, binary_to_array
from serving.protocol.datatypes import DATATYPES, fail, json_repr, json_type
from serving.protocol.json_data import (
    array_to_json,
    check_datatype,
    check_request_id,
    check_shape,
    json_to_array,
    one_value_array,
    parse_json,
)
from serving.types import InferenceRequest, InferenceResponse, RequestedOutput, Tensor

_UNSUPPORTED_PARAMETERS = ("shared_memory_region", "classification")
_ONE_VALUE_KEYS = frozenset({"name", "shape", "datatype", "data"})


def decode_infer_request(
    body: bytes, *, model: str, version: str | None, header_length: int | None
) -> InferenceRequest:
    body = bytes(body)
    header_end = len(body) if header_length is None else _header_end(len(body), header_length)
    doc = parse_json(memoryview(body)[:header_end], "body")
    if not isinstance(doc, dict):
        fail("body", f"expected a JSON object, got {json_type(doc)}")
    # the checks of absent members are skipped inline: most requests have no id, outputs or parameters
    parameters = doc.get("parameters")
    parameters = {} if parameters is None else _object(parameters, "parameters")
    inputs, end = _decode_inputs(doc.get("inputs"), body, header_end, header_length is not None)
    if end != len(body):
        fail("body", f"{len(body) - end} unexpected bytes after the binary tensor data")
    request_id, outputs = doc.get("id"), doc.get("outputs")
    return InferenceRequest(
        model=model,
        version=version,
        inputs=inputs,
        id=None if request_id is None else check_request_id(request_id, "id"),
        outputs=None if outputs is None else _decode_outputs(outputs),
        parameters=parameters,
        binary_output_default=_flag(parameters, "binary_data_output", "parameters") if parameters else False,
        timeout_s=_timeout_s(parameters.get("timeout")) if parameters else None,
    )


def _header_end(body_length: int, header_length: int | None) -> int:
    if header_length is None:
        return body_length
    if type(header_length) is not int or not 0 < header_length <= body_length:
        fail("Inference-Header-Content-Length",
             f"{header_length!r} is not a length within the {body_length}-byte body")
    return header_length


def _decode_inputs(
    raw: Any, body: bytes, offset: int, has_binary_section: bool
) -> tuple[list[Tensor], int]:
    if not isinstance(raw, list) or not raw:
        fail("inputs", "expected a non-empty array of input tensors")
    tensors: list[Tensor] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        if type(item) is dict and item.keys() == _ONE_VALUE_KEYS and (tensor := _one_value(item)) is not None:
            size = 0
        else:
            tensor, size = _decode_input(item, f"inputs[{i}]", body, offset, has_binary_section)
        if tensor.name in names:
            fail(f"inputs[{i}].name", f"duplicate input name {tensor.name!r}")
        names.add(tensor.name)
        tensors.append(tensor)
        offset += size
    return tensors, offset


def _decode_input(
    item: Any, field: str, body: bytes, offset: int, has_binary_section: bool
) -> tuple[Tensor, int]:
    """One input and the number of binary-section bytes it consumed."""
    if not isinstance(item, dict):
        fail(field, f"expected an object, got {json_type(item)}")
    name = _name(item.get("name"), f"{field}.name")
    datatype = check_datatype(item.get("datatype"), f"{field}.datatype")
    shape = check_shape(item.get("shape"), f"{field}.shape", len(body))
    parameters = item.get("parameters")
    if parameters is None:
        parameters = {}
    else:
        parameters = _object(parameters, f"{field}.parameters")
        _refuse_unsupported(parameters, f"{field}.parameters")
    size = parameters.pop("binary_data_size", None)
    if size is None:
        if "data" not in item:
            fail(field, "no tensor data: give data or parameters.binary_data_size")
        data = json_to_array(item["data"], datatype, shape, f"{field}.data")
        return Tensor(name, datatype, shape, data, parameters), 0
    size_field = f"{field}.parameters.binary_data_size"
    if "data" in item:
        fail(field, "give either data or parameters.binary_data_size, not both")
    if type(size) is not int or size < 0:
        fail(size_field, f"expected a non-negative integer, got {json_repr(size)}")
    if not has_binary_section:
        fail(size_field, "binary data needs the Inference-Header-Content-Length header")
    if size > len(body) - offset:
        fail(size_field, f"{size} bytes declared but only {len(body) - offset} left in the body")
    data = binary_to_array(body, offset, size, datatype, shape, size_field)
    return Tensor(name, datatype, shape, data, parameters), size


def _one_value(item: dict) -> Tensor | None:
    """The commonest input, one value of one row (``"shape": [1], "data": [v]``), built
    without the general path's steps; None for anything else, which the general path
    then validates (and names the field of any error)."""
    name, shape, datatype, data = item["name"], item["shape"], item["datatype"], item["data"]
    if type(name) is not str or not name or type(datatype) is not str or type(shape) is not list \
            or len(shape) != 1 or type(shape[0]) is not int or shape[0] != 1 \
            or type(data) is not list or len(data) != 1:
        return None
    array = one_value_array(data[0], datatype)
    return None if array is None else Tensor(name, datatype, (1,), array, {})


def _decode_outputs(raw: Any) -> list[RequestedOutput] | None:
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        fail("outputs", f"expected an array, got {json_type(raw)}")
    outputs: list[RequestedOutput] = []
    for i, item in enumerate(raw):
        field = f"outputs[{i}]"
        if not isinstance(item, dict):
            fail(field, f"expected an object, got {json_type(item)}")
        name = _name(item.get("name"), f"{field}.name")
        if any(o.name == name for o in outputs):
            fail(f"{field}.name", f"duplicate output name {name!r}")
        parameters = _object(item.get("parameters"), f"{field}.parameters")
        _refuse_unsupported(parameters, f"{field}.parameters")
        binary = parameters.pop("binary_data", None)
        if binary is not None and type(binary) is not bool:
            fail(f"{field}.parameters.binary_data", f"expected a boolean, got {json_type(binary)}")
        outputs.append(RequestedOutput(name=name, binary_data=binary, parameters=parameters))
    return outputs


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        fail(field, f"expected a non-empty string, got {json_repr(value) if value == '' else json_type(value)}")
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(field, f"expected an object, got {json_type(value)}")
    return value


def _refuse_unsupported(parameters: dict[str, Any], field: str) -> None:
    for key in _UNSUPPORTED_PARAMETERS:
        if key in parameters:
            fail(f"{field}.{key}", "not supported by this server")


def _flag(parameters: dict[str, Any], key: str, field: str) -> bool:
    value = parameters.get(key, False)
    if type(value) is not bool:
        fail(f"{field}.{key}", f"expected a boolean, got {json_type(value)}")
    return value


def _timeout_s(value: Any) -> float | None:
    """``parameters.timeout`` is in microseconds, as in Triton; 0 means no deadline."""
    if value is None:
        return None
    if type(value) is not int or value < 0:
        fail("parameters.timeout", "expected a non-negative integer number of microseconds, "
                                   f"got {json_type(value)} {value!r:.40}")
    return value / 1e6 if value else None


# -- responses ---------------------------------------------------------------------------

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
    header: dict[str, Any] = {"model_name": resp.model_name, "model_version": str(resp.model_version)}
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
