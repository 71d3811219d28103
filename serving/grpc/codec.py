"""``inference.ModelInferRequest`` to ``serving.types.InferenceRequest``, and
``InferenceResponse`` to ``ModelInferResponse``: translation only.

**Inputs** carry their data either all in ``raw_input_contents`` (one entry per input, in
input order, little-endian, ``BYTES`` elements as a 4-byte little-endian length and the
bytes: the binary tensor extension's layout, decoded by the same code) or each in its typed
``contents`` (``fp32_contents``...; ``FP16`` has none and must go raw). Every problem is an
``InvalidInput`` naming the field (``inputs[1].shape``), as on REST.

Parameters are kept as sent (as Python values); ``timeout`` (microseconds, 0: none, as Triton
and ``tritonclient.grpc``'s ``timeout=`` write it) becomes ``timeout_s``. Shared-memory and
classification parameters are refused.

**Outputs** go back in ``raw_output_contents``, in the order the request named them (all the
model's outputs when it named none), which is all ``tritonclient``'s ``as_numpy`` reads.
"""

from __future__ import annotations

import math

import numpy as np

from registry.schema import V2_TO_NUMPY
from serving.grpc.generated import grpc_service_pb2 as pb
from serving.protocol.binary import array_to_binary, binary_to_array
from serving.protocol.datatypes import fail, format_shape
from serving.protocol.json_data import check_datatype, check_request_id, check_shape
from serving.protocol.v2 import select_outputs
from serving.types import InferenceRequest, InferenceResponse, RequestedOutput, Tensor

_UNSUPPORTED_PARAMETERS = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset",
                           "classification")
# typed contents per datatype: (field of InferTensorContents, numpy dtype it decodes to)
_CONTENTS: dict[str, tuple[str, np.dtype]] = {
    "BOOL": ("bool_contents", np.dtype(np.bool_)),
    "INT8": ("int_contents", np.dtype(np.int8)), "INT16": ("int_contents", np.dtype(np.int16)),
    "INT32": ("int_contents", np.dtype(np.int32)), "INT64": ("int64_contents", np.dtype(np.int64)),
    "UINT8": ("uint_contents", np.dtype(np.uint8)), "UINT16": ("uint_contents", np.dtype(np.uint16)),
    "UINT32": ("uint_contents", np.dtype(np.uint32)), "UINT64": ("uint64_contents", np.dtype(np.uint64)),
    "FP32": ("fp32_contents", np.dtype(np.float32)), "FP64": ("fp64_contents", np.dtype(np.float64)),
}


def parameters_of(params) -> dict:
    """A protobuf ``map<string, InferParameter>`` as plain values."""
    out = {}
    for key, value in params.items():
        choice = value.WhichOneof("parameter_choice")
        out[key] = None if choice is None else getattr(value, choice)
    return out


def decode_infer_request(msg: pb.ModelInferRequest, max_elements: int) -> InferenceRequest:
    """``max_elements``: the bound on any tensor's element count (the message size limit)."""
    if not msg.model_name:
        fail("model_name", "expected a non-empty string")
    parameters = parameters_of(msg.parameters)
    _refuse_unsupported(parameters, "parameters")
    raw = msg.raw_input_contents
    if not msg.inputs:
        fail("inputs", "expected at least one input tensor")
    if raw and len(raw) != len(msg.inputs):
        fail("raw_input_contents", f"{len(raw)} entries for {len(msg.inputs)} inputs: give every input's "
                                   "data raw, or none")
    tensors, names = [], set()
    for i, item in enumerate(msg.inputs):
        tensor = _input(item, i, raw[i] if raw else None, max_elements)
        if tensor.name in names:
            fail(f"inputs[{i}].name", f"duplicate input name {tensor.name!r}")
        names.add(tensor.name)
        tensors.append(tensor)
    return InferenceRequest(
        model=msg.model_name,
        version=msg.model_version or None,
        inputs=tensors,
        id=check_request_id(msg.id, "id") if msg.id else None,
        outputs=_outputs(msg.outputs),
        parameters=parameters,
        timeout_s=_timeout_s(parameters.get("timeout")),
        route="grpc",
    )


def _input(item: pb.ModelInferRequest.InferInputTensor, i: int, raw: bytes | None, max_elements: int) -> Tensor:
    field = f"inputs[{i}]"
    if not item.name:
        fail(f"{field}.name", "expected a non-empty string")
    datatype = check_datatype(item.datatype, f"{field}.datatype")
    shape = check_shape(list(item.shape), f"{field}.shape", max_elements)
    parameters = parameters_of(item.parameters)
    _refuse_unsupported(parameters, f"{field}.parameters")
    has_contents = item.HasField("contents")
    if raw is not None:
        if has_contents:
            fail(field, "give its data in contents or raw_input_contents, not both")
        data = binary_to_array(raw, 0, len(raw), datatype, shape, f"raw_input_contents[{i}]")
    elif has_contents:
        data = _typed(item.contents, datatype, shape, f"{field}.contents")
    elif math.prod(shape) == 0:
        data = np.empty(shape, dtype=V2_TO_NUMPY[datatype])
    else:
        fail(field, "no tensor data: give contents or raw_input_contents")
    return Tensor(item.name, datatype, shape, data, parameters)


def _typed(contents: pb.InferTensorContents, datatype: str, shape: tuple[int, ...], field: str) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        values = contents.bytes_contents
        _check_count(len(values), count, shape, f"{field}.bytes_contents")
        out = np.empty(count, dtype=object)
        out[:] = list(values)
        return out.reshape(shape)
    if datatype not in _CONTENTS:
        fail(field, f"{datatype} has no typed contents field; send it in raw_input_contents")
    name, dtype = _CONTENTS[datatype]
    values = getattr(contents, name)
    _check_count(len(values), count, shape, f"{field}.{name}")
    for other, _ in set(_CONTENTS.values()) | {("bytes_contents", None)}:
        if other != name and len(getattr(contents, other)):
            fail(f"{field}.{other}", f"not the contents field of {datatype} (that is {name})")
    wide = {"i": np.int64, "u": np.uint64}.get(dtype.kind, dtype)  # the proto field's own width, then range-checked
    array = np.fromiter(values, dtype=wide, count=count)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if count and (array.min() < info.min or array.max() > info.max):
            fail(f"{field}.{name}", f"a value is out of the range of {datatype}")
        array = array.astype(dtype)
    return array.reshape(shape)


def _check_count(got: int, count: int, shape: tuple[int, ...], field: str) -> None:
    if got != count:
        fail(field, f"{got} values for shape {format_shape(shape)}, which needs {count}")


def _outputs(raw) -> list[RequestedOutput] | None:
    if not raw:
        return None
    outputs: list[RequestedOutput] = []
    for i, item in enumerate(raw):
        field = f"outputs[{i}]"
        if not item.name:
            fail(f"{field}.name", "expected a non-empty string")
        if any(o.name == item.name for o in outputs):
            fail(f"{field}.name", f"duplicate output name {item.name!r}")
        parameters = parameters_of(item.parameters)
        _refuse_unsupported(parameters, f"{field}.parameters")
        parameters.pop("binary_data", None)  # gRPC outputs are always raw
        outputs.append(RequestedOutput(item.name, binary_data=True, parameters=parameters))
    return outputs


def _refuse_unsupported(parameters: dict, field: str) -> None:
    for key in _UNSUPPORTED_PARAMETERS:
        if key in parameters:
            fail(f"{field}.{key}", "not supported by this server")


def _timeout_s(value) -> float | None:
    if value is None:
        return None
    if type(value) is not int or value < 0:
        fail("parameters.timeout", "expected a non-negative int64_param number of microseconds")
    return value / 1e6 if value else None


def encode_infer_response(resp: InferenceResponse, requested: list[RequestedOutput] | None,
                          request_id: str | None) -> pb.ModelInferResponse:
    """The answer, its outputs raw in the order of ``requested``; ``request_id``: the client's id."""
    out = pb.ModelInferResponse(model_name=resp.model_name, model_version=str(resp.model_version),
                                id=request_id or "")
    raw = out.raw_output_contents
    for tensor in select_outputs(resp.outputs, requested):
        out.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        raw.append(bytes(array_to_binary(np.asarray(tensor.data), tensor.datatype, f"output {tensor.name!r}")))
    return out
