"""Shared wire builders for the v2 codec tests: requests as a client writes them and
responses as a client reads them, written from the protocol text, not from our codec."""

from __future__ import annotations

import struct
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import pytest


def _raw(arr: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in arr.reshape(-1))
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def _json_data(arr: np.ndarray, datatype: str, nested: bool) -> Any:
    arr = arr if nested and arr.ndim else arr.reshape(-1)
    if datatype == "BYTES":
        arr = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(arr)
    return arr.tolist()


def build_request(
    tensors: list[tuple[str, str, np.ndarray, bool]],
    *,
    nested: bool = True,
    **fields: Any,
) -> tuple[bytes, int | None]:
    """(name, datatype, array, binary) per input; extra fields go into the JSON header."""
    inputs, sections = [], []
    for name, datatype, arr, binary in tensors:
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if binary:
            raw = _raw(arr, datatype)
            entry["parameters"] = {"binary_data_size": len(raw)}
            sections.append(raw)
        else:
            entry["data"] = _json_data(arr, datatype, nested)
        inputs.append(entry)
    header = orjson.dumps({**fields, "inputs": inputs})
    if not sections:
        return header, None
    return header + b"".join(sections), len(header)


def parse_response(body: bytes, header_length: int | None) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON header and each output as an array (BYTES: object array of bytes)."""
    end = len(body) if header_length is None else header_length
    header = orjson.loads(body[:end])
    arrays, offset = {}, end
    for out in header["outputs"]:
        size = out.get("parameters", {}).get("binary_data_size")
        arrays[out["name"]] = _read(out, body[offset : offset + (size or 0)], size is not None)
        offset += size or 0
    assert offset == len(body)
    return header, arrays


def _read(out: dict, raw: bytes, binary: bool) -> np.ndarray:
    from registry.schema import V2_TO_NUMPY

    datatype, shape = out["datatype"], out["shape"]
    if datatype == "BYTES":
        values, pos = [], 0
        if binary:
            while pos < len(raw):
                (n,) = struct.unpack_from("<I", raw, pos)
                values.append(raw[pos + 4 : pos + 4 + n])
                pos += 4 + n
        else:
            values = [s.encode("utf-8") for s in out["data"]]
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr.reshape(shape)
    dtype = V2_TO_NUMPY[datatype]
    if binary:
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape)
    return np.asarray(out["data"], dtype=dtype).reshape(shape)


def bytes_array(values: list[bytes], shape: tuple[int, ...]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr.reshape(shape)


def sample(datatype: str) -> np.ndarray:
    """A [2,3] tensor per datatype with the edge values of its range."""
    from registry.schema import V2_TO_NUMPY

    if datatype == "BYTES":
        return bytes_array([b"", b"a", "\u00e9t\u00e9".encode(), b"x" * 300, b"0", b"\x00z"], (2, 3))
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    dtype = V2_TO_NUMPY[datatype]
    if dtype.kind == "f":
        info = np.finfo(dtype)
        values = [0.0, -0.0, float(info.max), float(info.min), float(info.tiny), 0.1]
    else:
        info = np.iinfo(dtype)
        values = [info.min, info.max, 0, 1, info.max // 3, info.min // 7]
    return np.array(values, dtype=dtype).reshape(2, 3)


@pytest.fixture
def wire() -> SimpleNamespace:
    return SimpleNamespace(
        build_request=build_request, parse_response=parse_response,
        bytes_array=bytes_array, sample=sample,
    )
