"""Every malformed request is an ``InvalidInput`` (400) whose message starts with the field."""

from __future__ import annotations

import re
import struct

import orjson
import pytest

from contracts.errors import InvalidInput
from serving.protocol import decode_infer_request


def doc(*inputs: dict, **fields) -> bytes:
    return orjson.dumps({**fields, "inputs": list(inputs)})


def tensor(datatype="FP32", shape=(2,), data=(1, 2), **extra) -> dict:
    entry = {"name": "x", "datatype": datatype, "shape": list(shape), **extra}
    if data is not None:
        entry["data"] = list(data)
    return entry


def binary(datatype, shape, size, name="x") -> dict:
    parameters = {"binary_data_size": size}
    return {"name": name, "datatype": datatype, "shape": list(shape), "parameters": parameters}


def with_binary(header_doc: bytes, *sections: bytes) -> tuple[bytes, int]:
    return header_doc + b"".join(sections), len(header_doc)


def lengths(*values: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


JSON_CASES = {
    "not json": (b"{nope", "body", r"malformed JSON"),
    "empty body": (b"", "body", r"malformed JSON"),
    "non-utf8 header": (b'{"inputs": "\xff"}', "body", r"malformed JSON"),
    "not an object": (b"[1, 2]", "body", r"expected a JSON object, got array"),
    "no inputs": (b"{}", "inputs", r"expected a non-empty array"),
    "empty inputs": (doc(), "inputs", r"expected a non-empty array"),
    "input not object": (orjson.dumps({"inputs": [3]}), "inputs[0]", r"expected an object"),
    "name missing": (
        doc({"datatype": "FP32", "shape": [1], "data": [1]}),
        "inputs[0].name", r"expected a non-empty string",
    ),
    "name not string": (
        doc(tensor(name=5)),
        "inputs[0].name", r"expected a non-empty string, got integer",
    ),
    "datatype unknown": (
        doc(tensor(datatype="FLOAT")),
        "inputs[0].datatype", r"unknown datatype 'FLOAT'",
    ),
    "datatype missing": (
        doc({"name": "x", "shape": [1], "data": [1]}),
        "inputs[0].datatype", r"expected a string",
    ),
    "bf16": (doc(tensor(datatype="BF16")), "inputs[0].datatype", r"unsupported datatype BF16"),
    "shape not list": (doc(tensor() | {"shape": 3}), "inputs[0].shape", r"expected an array"),
    "shape negative": (doc(tensor(shape=(2, -1))), "inputs[0].shape", r"dimension 1 is -1"),
    "shape float": (doc(tensor(shape=(2.0,))), "inputs[0].shape", r"dimension 0 is 2\.0"),
    "shape bool": (doc(tensor(shape=(True,))), "inputs[0].shape", r"dimension 0 is True"),
    "count": (
        doc(tensor(shape=(2, 3), data=range(5))),
        "inputs[0].data", r"expected 6 values for shape \[2,3\], got 5$",
    ),
    "count nested": (
        doc(tensor(shape=(3,), data=[[1, 2], [3, 4]])),
        "inputs[0].data", r"expected 3 values for shape \[3\], got 4",
    ),
    "data not list": (
        doc(tensor(shape=()) | {"data": 1.0}),
        "inputs[0].data", r"expected an array, got number",
    ),
    "ragged": (doc(tensor(shape=(3,), data=[[1, 2], [3]])), "inputs[0].data", r"ragged nested arrays"),
    "mixed nesting": (
        doc(tensor(shape=(3,), data=[[1, 2], 3])),
        "inputs[0].data", r"arrays and values mixed",
    ),
    "late nesting": (
        doc(tensor(shape=(2,), data=[1, [2]])),
        "inputs[0].data", r"FP32 expects JSON numbers, got array",
    ),
    "string in fp32": (
        doc(tensor(data=[1, "2"])),
        "inputs[0].data", r"FP32 expects JSON numbers, got string",
    ),
    "string NaN in fp32": (
        doc(tensor(data=[1, "NaN"])),
        "inputs[0].data", r"FP32 expects JSON numbers, got string",
    ),
    "null in fp64": (
        doc(tensor(datatype="FP64", data=[None, 1])),
        "inputs[0].data", r"FP64 expects JSON numbers, got null",
    ),
    "bool in fp32": (
        doc(tensor(data=[True, 1.0])),
        "inputs[0].data", r"FP32 expects JSON numbers, got boolean",
    ),
    "float in int32": (
        doc(tensor(datatype="INT32", data=[1, 2.0])),
        "inputs[0].data", r"INT32 expects JSON integers, got number",
    ),
    "bool in int32": (
        doc(tensor(datatype="INT32", data=[1, True])),
        "inputs[0].data", r"INT32 expects JSON integers, got boolean",
    ),
    "number in bool": (
        doc(tensor(datatype="BOOL", data=[True, 1])),
        "inputs[0].data", r"BOOL expects JSON booleans, got integer",
    ),
    "number in bytes": (
        doc(tensor(datatype="BYTES", data=["a", 1])),
        "inputs[0].data", r"BYTES expects JSON strings, got integer",
    ),
    "uint8 overflow": (
        doc(tensor(datatype="UINT8", data=[0, 256])),
        "inputs[0].data", r"value out of range for UINT8 \[0, 255\]",
    ),
    "int8 underflow": (
        doc(tensor(datatype="INT8", data=[-129, 0])),
        "inputs[0].data", r"value out of range for INT8",
    ),
    "int16 overflow": (
        doc(tensor(datatype="INT16", data=[32768, 0])),
        "inputs[0].data", r"value out of range for INT16",
    ),
    "uint32 negative": (
        doc(tensor(datatype="UINT32", data=[-1, 0])),
        "inputs[0].data", r"value out of range for UINT32",
    ),
    "uint64 negative": (
        doc(tensor(datatype="UINT64", data=[-1, 2**64 - 1])),
        "inputs[0].data", r"value out of range for UINT64",
    ),
    "int64 overflow": (
        doc(tensor(datatype="INT64", data=[2**63, 0])),
        "inputs[0].data", r"value out of range for INT64",
    ),
    "uint64 beyond 64 bits": (
        b'{"inputs":[{"name":"x","datatype":"UINT64","shape":[1],"data":[18446744073709551616]}]}',
        "inputs[0].data", r"UINT64 expects JSON integers, got number",
    ),
    "fp32 overflow": (doc(tensor(data=[1e39, 0])), "inputs[0].data", r"value out of range for FP32"),
    "fp16 overflow": (
        doc(tensor(datatype="FP16", data=[70000, 0])),
        "inputs[0].data", r"value out of range for FP16",
    ),
    "NaN literal in int32": (
        b'{"inputs":[{"name":"x","datatype":"INT32","shape":[1],"data":[NaN]}]}',
        "inputs[0].data", r"INT32 expects JSON integers, got number",
    ),
    "NaN literal with surrogate": (
        b'{"id":"\\ud800","inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[NaN]}]}',
        "body", r"malformed JSON",
    ),
    "NaN literal beyond 64 bits": (
        b'{"inputs":[{"name":"x","datatype":"INT64","shape":[2],"data":[NaN,99999999999999999999]}]}',
        "body", r"malformed JSON",
    ),
    "deep nesting": (
        b'{"inputs":' + b"[" * 5000 + b"]" * 5000 + b', "x": NaN}',
        "body", r"malformed JSON",
    ),
    "duplicate inputs": (doc(tensor(), tensor()), "inputs[1].name", r"duplicate input name 'x'"),
    "no data": (doc(tensor(data=None)), "inputs[0]", r"no tensor data"),
    "input parameters not object": (
        doc(tensor(parameters=[1])),
        "inputs[0].parameters", r"expected an object",
    ),
    "binary size negative": (
        doc(binary("FP32", (1,), -4)),
        "inputs[0].parameters.binary_data_size", r"expected a non-negative integer",
    ),
    "binary size string": (
        doc(binary("FP32", (1,), "4")),
        "inputs[0].parameters.binary_data_size", r"expected a non-negative integer",
    ),
    "binary without header length": (
        doc(binary("FP32", (1,), 4)),
        "inputs[0].parameters.binary_data_size", r"binary data needs the Inference-Header-Content",
    ),
    "shared memory": (
        doc(tensor(data=None, parameters={"shared_memory_region": "r"})),
        "inputs[0].parameters.shared_memory_region", r"not supported",
    ),
    "id not string": (doc(tensor(), id=5), "id", r"expected a string, got integer"),
    "parameters not object": (
        doc(tensor(), parameters="x"),
        "parameters", r"expected an object, got string",
    ),
    "timeout negative": (
        doc(tensor(), parameters={"timeout": -1}),
        "parameters.timeout", r"expected a non-negative integer number of microseconds",
    ),
    "timeout float": (
        doc(tensor(), parameters={"timeout": 1.5}),
        "parameters.timeout", r"expected a non-negative integer",
    ),
    "timeout string": (
        doc(tensor(), parameters={"timeout": "10"}),
        "parameters.timeout", r"expected a non-negative integer",
    ),
    "timeout bool": (
        doc(tensor(), parameters={"timeout": True}),
        "parameters.timeout", r"expected a non-negative integer",
    ),
    "binary_data_output not bool": (
        doc(tensor(), parameters={"binary_data_output": 1}),
        "parameters.binary_data_output", r"expected a boolean, got integer",
    ),
    "outputs not list": (
        doc(tensor(), outputs={"name": "y"}),
        "outputs", r"expected an array, got object",
    ),
    "output not object": (
        doc(tensor(), outputs=["y"]),
        "outputs[0]", r"expected an object, got string",
    ),
    "output name missing": (
        doc(tensor(), outputs=[{"name": "y"}, {}]),
        "outputs[1].name", r"expected a non-empty string",
    ),
    "output duplicate": (
        doc(tensor(), outputs=[{"name": "y"}, {"name": "y"}]),
        "outputs[1].name", r"duplicate output name 'y'",
    ),
    "output binary_data not bool": (
        doc(tensor(), outputs=[{"name": "y", "parameters": {"binary_data": "yes"}}]),
        "outputs[0].parameters.binary_data", r"expected a boolean, got string",
    ),
    "classification": (
        doc(tensor(), outputs=[{"name": "y", "parameters": {"classification": 3}}]),
        "outputs[0].parameters.classification", r"not supported",
    ),
}


@pytest.mark.parametrize("body, field, message", JSON_CASES.values(), ids=JSON_CASES.keys())
def test_malformed_json_requests(body, field, message):
    with pytest.raises(InvalidInput, match=rf"^{re.escape(field)}: {message}"):
        decode_infer_request(body, model="m", version=None, header_length=None)


F32_2 = struct.pack("<2f", 1.0, 2.0)
BINARY_CASES = {
    "truncated section": (
        with_binary(doc(binary("FP32", (2,), 8)), F32_2[:5]),
        "inputs[0].parameters.binary_data_size", r"8 bytes declared but only 5 left",
    ),
    "second section truncated": (
        with_binary(doc(binary("FP32", (2,), 8), binary("FP32", (2,), 8, "y")), F32_2, F32_2[:7]),
        "inputs[1].parameters.binary_data_size", r"8 bytes declared but only 7 left",
    ),
    "not element multiple": (
        with_binary(doc(binary("FP32", (2,), 7)), F32_2[:7]),
        "inputs[0].parameters.binary_data_size", r"7 bytes is not a multiple of the FP32 element size 4",
    ),
    "count mismatch": (
        with_binary(doc(binary("FP64", (2, 3), 8)), F32_2),
        "inputs[0].parameters.binary_data_size",
        r"expected 6 values \(48 bytes\) for shape \[2,3\], got 1 \(8 bytes\)",
    ),
    "trailing garbage": (
        with_binary(doc(binary("FP32", (2,), 8)), F32_2, b"junk"),
        "body", r"4 unexpected bytes after the binary tensor data",
    ),
    "trailing after json-only": (
        with_binary(doc(tensor()), b"junk"),
        "body", r"4 unexpected bytes after",
    ),
    "bool not 0 or 1": (
        with_binary(doc(binary("BOOL", (2,), 2)), b"\x01\x02"),
        "inputs[0].parameters.binary_data_size", r"BOOL bytes must be 0 or 1",
    ),
    "bytes length past end": (
        with_binary(doc(binary("BYTES", (2,), 11)), lengths(b"ab") + struct.pack("<I", 9) + b"x"),
        "inputs[0].parameters.binary_data_size", r"BYTES element 1: length 9 runs past the end",
    ),
    "bytes prefix past end": (
        with_binary(doc(binary("BYTES", (2,), 8)), lengths(b"ab") + b"\x01\x00"),
        "inputs[0].parameters.binary_data_size", r"BYTES element 1: length prefix runs past the end",
    ),
    "bytes huge length": (
        with_binary(doc(binary("BYTES", (1,), 5)), b"\xff\xff\xff\xff!"),
        "inputs[0].parameters.binary_data_size", r"BYTES element 0: length 4294967295 runs past",
    ),
    "bytes leftover": (
        with_binary(doc(binary("BYTES", (1,), 9)), lengths(b"ab") + b"zzz"),
        "inputs[0].parameters.binary_data_size", r"3 bytes left after the 1 BYTES elements",
    ),
    "bytes too many elements": (
        with_binary(doc(binary("BYTES", (10**12,), 8)), lengths(b"a", b"")[:8]),
        "inputs[0].shape", r"\[1000000000000\] needs more elements than the 112-byte body can hold",
    ),
    "huge shape": (
        with_binary(doc(binary("FP64", (2**40, 2**40), 8)), F32_2),
        "inputs[0].shape", r"\[1099511627776,1099511627776\] needs more elements than the 125-byte body",
    ),
    "data and binary": (
        with_binary(doc(binary("FP32", (2,), 8) | {"data": [1, 2]}), F32_2),
        "inputs[0]", r"give either data or parameters\.binary_data_size, not both",
    ),
}


@pytest.mark.parametrize("case, field, message", BINARY_CASES.values(), ids=BINARY_CASES.keys())
def test_malformed_binary_requests(case, field, message):
    body, header_length = case
    with pytest.raises(InvalidInput, match=rf"^{re.escape(field)}: {message}"):
        decode_infer_request(body, model="m", version=None, header_length=header_length)


@pytest.mark.parametrize("header_length", [0, -1, 10_000, True, 3.0])
def test_header_length_outside_the_body(header_length):
    body, _ = with_binary(doc(binary("FP32", (2,), 8)), F32_2)
    with pytest.raises(InvalidInput, match=r"^Inference-Header-Content-Length: "):
        decode_infer_request(body, model="m", version=None, header_length=header_length)


def test_header_length_cutting_the_json():
    body, header_length = with_binary(doc(binary("FP32", (2,), 8)), F32_2)
    with pytest.raises(InvalidInput, match=r"^body: malformed JSON"):
        decode_infer_request(body, model="m", version=None, header_length=header_length - 1)
