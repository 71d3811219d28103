"""Oracle: the official client (``tritonclient.http``) writes requests our decoder reads and
reads responses our encoder writes, unmodified."""

from __future__ import annotations

import numpy as np
import pytest

from registry.schema import V2_TO_NUMPY
from serving.protocol import decode_infer_request, encode_infer_response
from serving.types import InferenceResponse, RequestedOutput, Tensor

httpclient = pytest.importorskip("tritonclient.http")
Client = httpclient.InferenceServerClient
DATATYPES = sorted(V2_TO_NUMPY)


def client_input(name: str, datatype: str, arr: np.ndarray, binary: bool):
    tensor = httpclient.InferInput(name, list(arr.shape), datatype)
    tensor.set_data_from_numpy(arr, binary_data=binary)
    return tensor


def decode(inputs, **kwargs):
    body, header_length = Client.generate_request_body(inputs, **kwargs)
    return decode_infer_request(body, model="m", version="1", header_length=header_length)


def client_result(resp: InferenceResponse, requested=None, binary_default=False):
    body, header_length = encode_infer_response(resp, requested=requested, binary_default=binary_default)
    return Client.parse_response_body(body, header_length=header_length)


def as_bytes(arr: np.ndarray) -> np.ndarray:
    """tritonclient reads JSON BYTES as str; compare as the UTF-8 bytes they came from."""
    return np.vectorize(lambda v: v.encode() if isinstance(v, str) else v, otypes=[object])(arr)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", DATATYPES)
def test_client_requests_decode(wire, datatype, binary):
    arr = wire.sample(datatype)
    req = decode([client_input("x", datatype, arr, binary)])
    (tensor,) = req.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("x", datatype, arr.shape)
    assert tensor.data.dtype == arr.dtype
    np.testing.assert_array_equal(tensor.data, arr)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", DATATYPES)
def test_client_reads_responses(wire, datatype, binary):
    arr = wire.sample(datatype)
    resp = InferenceResponse("m", "1", [Tensor("y", datatype, arr.shape, arr)])
    result = client_result(resp, binary_default=binary)
    got = result.as_numpy("y")
    if datatype == "BYTES":
        got = as_bytes(got)
    assert got.shape == arr.shape and got.dtype == arr.dtype
    np.testing.assert_array_equal(got, arr)


def test_client_request_fields(wire):
    inputs = [
        client_input("a", "FP32", np.ones((2, 2), np.float32), True),
        client_input("b", "BYTES", wire.bytes_array([b"\xff\x00", b"ok"], (2, 1)), True),
        client_input("c", "INT64", np.arange(3), False),
    ]
    outputs = [
        httpclient.InferRequestedOutput("p", binary_data=False),
        httpclient.InferRequestedOutput("q"),
    ]
    req = decode(inputs, outputs=outputs, request_id="abc", timeout=250_000, priority=3)
    assert [t.name for t in req.inputs] == ["a", "b", "c"]
    assert req.inputs[1].data.tolist() == [[b"\xff\x00"], [b"ok"]]
    assert req.id == "abc" and req.timeout_s == 0.25 and req.parameters["priority"] == 3
    assert req.outputs == [RequestedOutput("p", False), RequestedOutput("q", True)]
    assert req.binary_output_default is False
    assert decode(inputs).binary_output_default is True  # the client's default with no outputs


def test_client_round_trip_with_requested_outputs(wire):
    """Client request -> decode -> identity model -> encode -> client result."""
    arrays = {
        "f": np.linspace(0, 1, 6, dtype=np.float16).reshape(3, 2),
        "u": np.arange(4, dtype=np.uint32),
        "s": wire.bytes_array([b"alpha", b"\xce\xb2"], (2,)),
        "k": np.array([[True], [False]]),
    }
    datatypes = {"f": "FP16", "u": "UINT32", "s": "BYTES", "k": "BOOL"}
    inputs = [client_input(n, datatypes[n], a, binary=n in "fs") for n, a in arrays.items()]
    outputs = [
        httpclient.InferRequestedOutput("s", binary_data=False),
        httpclient.InferRequestedOutput("f"),
        httpclient.InferRequestedOutput("k", binary_data=False),
    ]
    req = decode(inputs, outputs=outputs, request_id="rt")
    resp = InferenceResponse("m", "1", req.inputs, id=req.id)
    result = client_result(resp, requested=req.outputs, binary_default=req.binary_output_default)
    assert result.get_response()["id"] == "rt"
    assert [o["name"] for o in result.get_response()["outputs"]] == ["s", "f", "k"]
    assert result.as_numpy("u") is None
    np.testing.assert_array_equal(as_bytes(result.as_numpy("s")), arrays["s"])
    np.testing.assert_array_equal(result.as_numpy("f"), arrays["f"])
    np.testing.assert_array_equal(result.as_numpy("k"), arrays["k"])


def test_client_non_finite_floats_in_json():
    arr = np.array([np.nan, np.inf, -np.inf, 1.5], dtype=np.float32)
    (tensor,) = decode([client_input("x", "FP32", arr, binary=False)]).inputs
    np.testing.assert_array_equal(tensor.data, arr)
    result = client_result(InferenceResponse("m", "1", [tensor]), binary_default=False)
    np.testing.assert_array_equal(result.as_numpy("x"), arr)
