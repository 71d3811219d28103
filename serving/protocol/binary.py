"""The binary tensor data extension: raw little-endian tensors after the JSON header.

Fixed-size datatypes are returned as ``np.frombuffer`` views of the request body
(zero-copy, read-only: the data plane only reads inputs); a view that would be
misaligned for its dtype is copied once so models never see unaligned memory.
``BYTES`` elements are a 4-byte little-endian length followed by the bytes.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from contracts.errors import MlgateError
from serving.protocol.datatypes import WIRE_DTYPES, fail, format_shape

_LENGTH = struct.Struct("<I")


def binary_to_array(
    body: bytes, offset: int, size: int, datatype: str, shape: tuple[int, ...], field: str
) -> np.ndarray:
    """Decode ``size`` bytes of ``body`` at ``offset``; the caller checked bounds."""
    count = math.prod(shape)
    if datatype == "BYTES":
        return _decode_bytes(body, offset, offset + size, count, field).reshape(shape)
    dtype = WIRE_DTYPES[datatype]
    if size % dtype.itemsize:
        fail(field, f"{size} bytes is not a multiple of the {datatype} element size {dtype.itemsize}")
    if size != count * dtype.itemsize:
        fail(field, f"expected {count} values ({count * dtype.itemsize} bytes) for shape "
                    f"{format_shape(shape)}, got {size // dtype.itemsize} ({size} bytes)")
    out = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    if datatype == "BOOL" and count and out.view(np.uint8).max() > 1:
        fail(field, "BOOL bytes must be 0 or 1")
    if not out.flags.aligned or not dtype.isnative:
        out = out.astype(dtype.newbyteorder("="))
    return out.reshape(shape)


def _decode_bytes(body: bytes, start: int, end: int, count: int, field: str) -> np.ndarray:
    if count * _LENGTH.size > end - start:
        fail(field, f"{end - start} bytes cannot hold {count} BYTES elements (4-byte length each)")
    values: list[bytes] = []
    append, unpack, pos = values.append, _LENGTH.unpack_from, start
    for i in range(count):
        if pos + _LENGTH.size > end:
            fail(field, f"BYTES element {i}: length prefix runs past the end of the tensor data")
        (length,) = unpack(body, pos)
        pos += _LENGTH.size
        if length > end - pos:
            fail(field, f"BYTES element {i}: length {length} runs past the end of the tensor data")
        append(body[pos : pos + length])
        pos += length
    if pos != end:
        fail(field, f"{end - pos} bytes left after the {count} BYTES elements of the tensor")
    out = np.empty(count, dtype=object)
    out[:] = values
    return out


def array_to_binary(data: np.ndarray, datatype: str, field: str) -> bytes | memoryview:
    """The raw bytes of one output tensor, row-major and little-endian."""
    if datatype == "BYTES":
        return encode_bytes_elements(data.reshape(-1), field)
    wire = np.ascontiguousarray(data, dtype=WIRE_DTYPES[datatype])
    return wire.reshape(-1).data.cast("B")


def encode_bytes_elements(values: np.ndarray, field: str) -> bytes:
    parts: list[bytes] = []
    for value in values:
        raw = _as_bytes(value, field)
        parts.append(_LENGTH.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)


def _as_bytes(value: object, field: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise MlgateError(f"{field}: BYTES element of type {type(value).__name__}")

