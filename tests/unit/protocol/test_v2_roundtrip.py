"""Round trips through the v2 codec: every datatype, JSON and binary, both directions."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from contracts.errors import InvalidInput
from registry.schema import V2_TO_NUMPY
from serving.protocol import decode_infer_request, encode_infer_response, select_outputs
from serving.types import InferenceResponse, RequestedOutput, Tensor

DATATYPES = sorted(V2_TO_NUMPY)


def decode(body: bytes, header_length: int | None = None):
    return decode_infer_request(body, model="m", version=None, header_length=header_length)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def response(*tensors: Tensor, **fields) -> InferenceResponse:
    return InferenceResponse(model_name="m", model_version="3", outputs=list(tensors), **fields)


@pytest.mark.parametrize("nested", [True, False], ids=["nested", "flat"])
@pytest.mark.parametrize("datatype", DATATYPES)
def test_json_inputs_every_datatype(wire, datatype, nested):
    arr = wire.sample(datatype)
    body, header_length = wire.build_request([("x", datatype, arr, False)], nested=nested)
    req = decode(body, header_length)
    (tensor,) = req.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("x", datatype, (2, 3))
    assert_same(tensor.data, arr)


@pytest.mark.parametrize("datatype", DATATYPES)
def test_binary_inputs_every_datatype(wire, datatype):
    arr = wire.sample(datatype)
    body, header_length = wire.build_request([("x", datatype, arr, True)])
    (tensor,) = decode(body, header_length).inputs
    assert_same(tensor.data, arr)
    assert tensor.parameters == {}
    if datatype != "BYTES":
        assert tensor.data.flags.aligned and tensor.data.flags.c_contiguous


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", DATATYPES)
def test_outputs_every_datatype(wire, datatype, binary):
    arr = wire.sample(datatype)
    resp = response(Tensor("y", datatype, arr.shape, arr))
    body, header_length = encode_infer_response(resp, requested=None, binary_default=binary)
    assert (header_length is not None) == binary
    header, arrays = wire.parse_response(body, header_length)
    assert header["outputs"][0]["shape"] == [2, 3]
    assert_same(arrays["y"], arr)


@pytest.mark.parametrize("shape", [(0,), (2, 0), ()])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", ["FP32", "BYTES", "BOOL"])
def test_empty_and_scalar_tensors(wire, datatype, shape, binary):
    arr = wire.sample(datatype).reshape(-1)[: int(np.prod(shape))].reshape(shape)
    body, header_length = wire.build_request([("x", datatype, arr, binary)])
    (tensor,) = decode(body, header_length).inputs
    assert_same(tensor.data, arr)
    out, out_length = encode_infer_response(response(tensor), requested=None, binary_default=binary)
    assert_same(wire.parse_response(out, out_length)[1]["x"], arr)


def test_mixed_binary_and_json_inputs_keep_their_offsets(wire):
    a = np.arange(5, dtype=np.int16)
    b = np.array([[1.5, -2.0]], dtype=np.float64)
    c = wire.bytes_array([b"hello", b"", b"\xff\xfe"], (3,))
    d = np.array([7], dtype=np.uint8)
    body, header_length = wire.build_request(
        [("a", "INT16", a, True), ("b", "FP64", b, False),
         ("c", "BYTES", c, True), ("d", "UINT8", d, True)]
    )
    req = decode(body, header_length)
    assert [t.name for t in req.inputs] == ["a", "b", "c", "d"]
    for tensor, expected in zip(req.inputs, [a, b, c, d]):
        assert_same(tensor.data, expected)


def test_requested_outputs_order_subset_and_binary_flags(wire):
    a, b, c = (np.arange(3, dtype=np.float32) + k for k in range(3))
    resp = response(*(Tensor(n, "FP32", (3,), v) for n, v in zip("abc", (a, b, c))))
    requested = [RequestedOutput("c", binary_data=True), RequestedOutput("a", binary_data=None)]
    body, header_length = encode_infer_response(resp, requested=requested, binary_default=False)
    header, arrays = wire.parse_response(body, header_length)
    assert [o["name"] for o in header["outputs"]] == ["c", "a"]
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 12}
    assert "data" in header["outputs"][1] and "parameters" not in header["outputs"][1]
    assert_same(arrays["c"], c)
    assert_same(arrays["a"], a)
    requested = [RequestedOutput("b", binary_data=False)]
    body, header_length = encode_infer_response(resp, requested=requested, binary_default=True)
    assert header_length is None and orjson.loads(body)["outputs"][0]["data"] == [1.0, 2.0, 3.0]


def test_unknown_requested_output_is_a_400_naming_it():
    outputs = [Tensor("a", "FP32", (1,), np.zeros(1, np.float32))]
    requested = [RequestedOutput("a"), RequestedOutput("nope")]
    with pytest.raises(InvalidInput, match=r"^outputs\[1\]\.name: model has no output 'nope'"):
        select_outputs(outputs, requested)
    with pytest.raises(InvalidInput, match=r"^outputs\[1\]\.name"):
        encode_infer_response(response(*outputs), requested=requested, binary_default=False)
    assert select_outputs(outputs, None) == outputs


def test_request_fields_are_decoded(wire):
    arr = np.ones(2, np.float32)
    body, _ = wire.build_request(
        [("x", "FP32", arr, False)],
        id="req-7",
        parameters={"timeout": 2_500_000, "binary_data_output": True, "priority": 2},
        outputs=[{"name": "y", "parameters": {"binary_data": False, "extra": 1}}, {"name": "z"}],
    )
    req = decode_infer_request(body, model="iris", version="4", header_length=None)
    assert (req.model, req.version, req.id, req.route) == ("iris", "4", "req-7", "v2")
    assert req.timeout_s == 2.5
    assert req.binary_output_default is True
    assert req.parameters["priority"] == 2
    assert req.outputs == [RequestedOutput("y", False, {"extra": 1}), RequestedOutput("z", None, {})]


@pytest.mark.parametrize(
    "parameters, timeout_s", [({}, None), ({"timeout": 0}, None), ({"timeout": 1}, 1e-6)]
)
def test_timeout_is_microseconds_and_zero_means_none(wire, parameters, timeout_s):
    body, _ = wire.build_request([("x", "INT32", np.zeros(1, np.int32), False)], parameters=parameters)
    req = decode(body)
    assert req.timeout_s == timeout_s
    assert req.binary_output_default is False and req.outputs is None and req.id is None


def test_id_and_parameters_are_echoed(wire):
    resp = response(Tensor("y", "INT64", (1,), np.array([5])), id="abc", parameters={"cached": True})
    header, _ = wire.parse_response(*encode_infer_response(resp, requested=None, binary_default=False))
    assert header == {
        "model_name": "m", "model_version": "3", "id": "abc", "parameters": {"cached": True},
        "outputs": [{"name": "y", "datatype": "INT64", "shape": [1], "data": [5]}],
    }
    body, _ = encode_infer_response(response(), requested=None, binary_default=False)
    assert orjson.loads(body) == {"model_name": "m", "model_version": "3", "outputs": []}


def test_non_finite_floats_use_the_literals_tritonclient_writes(wire):
    body = b'{"inputs":[{"name":"x","datatype":"FP32","shape":[3],"data":[NaN,Infinity,-Infinity]}]}'
    (tensor,) = decode(body).inputs
    np.testing.assert_array_equal(tensor.data, np.array([np.nan, np.inf, -np.inf], np.float32))
    out, _ = encode_infer_response(response(tensor), requested=None, binary_default=False)
    assert b'"data":[NaN,Infinity,-Infinity]' in out
    (again,) = decode(out.replace(b'"outputs"', b'"inputs"')).inputs
    np.testing.assert_array_equal(again.data, tensor.data)


def test_bytes_output_that_is_not_utf8_needs_binary(wire):
    arr = wire.bytes_array([b"ok", b"\xff"], (2,))
    resp = response(Tensor("label", "BYTES", (2,), arr))
    with pytest.raises(InvalidInput, match=r"^output 'label'.*binary_data=true"):
        encode_infer_response(resp, requested=None, binary_default=False)
    body, header_length = encode_infer_response(resp, requested=None, binary_default=True)
    assert_same(wire.parse_response(body, header_length)[1]["label"], arr)


def test_bytes_outputs_accept_str_elements(wire):
    arr = np.array(["setosa", "virginica"], dtype=object)
    resp = response(Tensor("label", "BYTES", (2,), arr))
    for binary in (True, False):
        body, header_length = encode_infer_response(resp, requested=None, binary_default=binary)
        assert wire.parse_response(body, header_length)[1]["label"].tolist() == [b"setosa", b"virginica"]


def test_outputs_are_cast_to_their_datatype_and_made_contiguous(wire):
    data = np.arange(12, dtype=np.float64).reshape(3, 4).T  # not C-contiguous, wrong dtype
    resp = response(Tensor("y", "FP16", (4, 3), data))
    for binary in (True, False):
        body, header_length = encode_infer_response(resp, requested=None, binary_default=binary)
        arrays = wire.parse_response(body, header_length)[1]
        assert_same(arrays["y"], data.astype(np.float16))


@pytest.mark.parametrize("padding", range(8))
def test_binary_inputs_are_read_only_views_or_aligned_copies(padding):
    arr = np.arange(4, dtype=np.float64)
    header = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [4], "parameters": {"binary_data_size": 32}}]}
    ) + b" " * padding  # trailing whitespace is valid JSON and moves the binary section
    (tensor,) = decode(header + arr.tobytes(), len(header)).inputs
    assert_same(tensor.data, arr)
    assert tensor.data.flags.aligned
    # bytes objects start 16-byte aligned in CPython, so the offset decides view or copy
    assert tensor.data.flags.writeable == (len(header) % 8 != 0)
