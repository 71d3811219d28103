"""The fields of a tensor in JSON (``datatype``, ``shape``, ``data``) and the request ``id``.

Datatype and shape are checked before anything is allocated (:func:`check_shape`).

Decoding is vectorised: the element types of an orjson-decoded list are checked with
one C-level pass (``set(map(type, ...))``, so ``true`` is never a number and ``1.0``
never an integer), converted with ``np.fromiter`` and range-checked on the array;
only ``BYTES`` needs a per-element step (``str.encode``).

Non-finite floats: strict JSON has none, but the official client (``tritonclient``)
writes the literals ``NaN``, ``Infinity`` and ``-Infinity``. Documents orjson rejects
that contain them are parsed again with the standard library, and the encoder writes
the same literals for non-finite ``FP*`` outputs (clients that need strict JSON ask
for binary outputs). Strings such as ``"NaN"`` and ``null`` are not numbers.
"""

from __future__ import annotations

import json
import math
from itertools import chain
from typing import Any

import numpy as np
import orjson

from contracts.errors import InvalidInput, MlgateError
from registry.schema import V2_TO_NUMPY
from serving.protocol.datatypes import (
    DATATYPES,
    FLOAT_DATATYPES,
    UNSUPPORTED_DATATYPES,
    fail,
    format_shape,
    json_repr,
    json_type,
    type_name,
)

_ALLOWED: dict[str, frozenset[type]] = {
    **{dt: frozenset({int}) for dt in V2_TO_NUMPY if dt.startswith(("INT", "UINT"))},
    **{dt: frozenset({int, float}) for dt in FLOAT_DATATYPES},
    "BOOL": frozenset({bool}),
    "BYTES": frozenset({str}),
}
_EXPECTED = {"BOOL": "booleans", "BYTES": "strings", **{dt: "numbers" for dt in FLOAT_DATATYPES}}


def check_datatype(value: object, field: str) -> str:
    if not isinstance(value, str):
        fail(field, f"expected a string, got {json_type(value)}")
    if value in UNSUPPORTED_DATATYPES:
        fail(field, f"unsupported datatype {value}")
    if value not in DATATYPES:
        fail(field, f"unknown datatype {value[:40]!r}; expected one of {', '.join(sorted(DATATYPES))}")
    return value


MAX_RANK = 16  # dimensions of one tensor (numpy's own limit is 64)
MAX_ID_CHARS = 256  # a request id, echoed in X-Request-Id and logged


def check_shape(value: object, field: str, max_elements: int) -> tuple[int, ...]:
    """A tensor shape, bounded before anything is allocated: at most :data:`MAX_RANK`
    dimensions, and neither a dimension nor the product of the non-zero ones above
    ``max_elements`` (the caller's bound: what the body can hold, one byte at least per
    element). Checked dimension by dimension, so a huge shape costs no arithmetic."""
    if not isinstance(value, list):
        fail(field, f"expected an array of non-negative integers, got {json_type(value)}")
    if len(value) > MAX_RANK:
        fail(field, f"{len(value)} dimensions; at most {MAX_RANK}")
    product = 1
    for i, dim in enumerate(value):
        if type(dim) is not int or dim < 0:
            fail(field, f"dimension {i} is {json_repr(dim)}; expected a non-negative integer")
        product *= dim or 1
        if product > max_elements:
            fail(field, f"{format_shape(value)} needs more elements than the {max_elements}-byte body can hold")
    return tuple(value)


def check_request_id(value: object, field: str) -> str | None:
    """A client's request id: a string of at most :data:`MAX_ID_CHARS` printable characters
    (it is echoed in a response header: no CR, LF or other control characters)."""
    if value is None:
        return None
    if not isinstance(value, str):
        fail(field, f"expected a string, got {json_type(value)}")
    if len(value) > MAX_ID_CHARS:
        fail(field, f"{len(value)} characters; at most {MAX_ID_CHARS}")
    if not value.isprintable():
        fail(field, "control characters are not allowed")
    return value


def json_object(body: bytes, field: str = "body") -> dict:
    """``body`` as a JSON object; InvalidInput naming ``field`` when it is not JSON or not an object."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{field}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{field}: expected a JSON object")
    return doc


def parse_json(buf: bytes | memoryview, field: str) -> Any:
    """orjson first; the standard library only for the NaN/Infinity literals."""
    try:
        return orjson.loads(buf)
    except orjson.JSONDecodeError as exc:
        error = exc
    raw = bytes(buf)
    if b"NaN" in raw or b"Infinity" in raw:
        try:
            doc = json.loads(raw.decode("utf-8"))
            orjson.dumps(doc)  # what orjson refuses besides the literals (surrogates, >64-bit ints)
            return doc
        except (ValueError, TypeError, RecursionError):
            pass
    fail(field, f"malformed JSON: {error}")


def json_to_array(data: Any, datatype: str, shape: tuple[int, ...], field: str) -> np.ndarray:
    """Validate and convert a nested or flat row-major list to an array of ``shape``."""
    flat = _flatten(data, field)
    count = math.prod(shape)
    if len(flat) != count:
        fail(field, f"expected {count} values for shape {format_shape(shape)}, got {len(flat)}")
    found = set(map(type, flat))
    if not found <= _ALLOWED[datatype]:
        expected = _EXPECTED.get(datatype, "integers")
        got = ", ".join(sorted(type_name(t) for t in found - _ALLOWED[datatype]))
        fail(field, f"{datatype} expects JSON {expected}, got {got}")
    return _convert(flat, datatype, field).reshape(shape)


_INT_RANGES = {dt: (int(np.iinfo(V2_TO_NUMPY[dt]).min), int(np.iinfo(V2_TO_NUMPY[dt]).max))
               for dt in V2_TO_NUMPY if dt.startswith(("INT", "UINT"))}
_FP64_EXACT_INT = 2**53


def one_value_array(value: Any, datatype: str) -> np.ndarray | None:
    """A one-element array of ``value`` when it is plainly valid for ``datatype`` (the
    same array :func:`json_to_array` makes); None when in doubt, for the full checks."""
    kind = type(value)
    if datatype == "FP64":
        if kind is float or kind is int and -_FP64_EXACT_INT <= value <= _FP64_EXACT_INT:
            return np.array((value,), dtype=np.float64)
        return None
    if datatype == "BYTES":
        if kind is not str:
            return None
        out = np.empty(1, dtype=object)
        out[0] = value.encode("utf-8")
        return out
    if datatype in _FLOAT_MAX:
        limit = _FLOAT_MAX[datatype]
        if (kind is float or kind is int) and -limit <= value <= limit:  # NaN fails the comparison
            return np.array((value,), dtype=V2_TO_NUMPY[datatype])
        return None
    if datatype == "BOOL":
        return np.array((value,), dtype=np.bool_) if kind is bool else None
    bounds = _INT_RANGES.get(datatype)
    if bounds is not None and kind is int and bounds[0] <= value <= bounds[1]:
        return np.array((value,), dtype=V2_TO_NUMPY[datatype])
    return None


def _flatten(data: Any, field: str) -> list:
    if not isinstance(data, list):
        fail(field, f"expected an array, got {json_type(data)}")
    items = data
    while items and type(items[0]) is list:
        if set(map(type, items)) != {list}:
            fail(field, "arrays and values mixed at the same nesting level")
        if len(set(map(len, items))) != 1:
            fail(field, "ragged nested arrays")
        items = list(chain.from_iterable(items))
    return items


def _convert(flat: list, datatype: str, field: str) -> np.ndarray:
    if datatype == "BYTES":
        out = np.empty(len(flat), dtype=object)
        out[:] = [s.encode("utf-8") for s in flat]
        return out
    if datatype == "BOOL":
        return np.asarray(flat, dtype=np.bool_)
    if datatype in FLOAT_DATATYPES:
        return _to_float(flat, datatype, field)
    return _to_int(flat, datatype, field)


_FLOAT_MAX = {"FP16": float(np.finfo(np.float16).max), "FP32": float(np.finfo(np.float32).max)}


def _to_float(flat: list, datatype: str, field: str) -> np.ndarray:
    dtype = V2_TO_NUMPY[datatype]
    if datatype == "FP64":  # JSON numbers are doubles already: nothing can overflow
        return np.fromiter(flat, dtype=dtype, count=len(flat))
    limit = _FLOAT_MAX[datatype]
    hi, lo = max(flat, default=0.0), min(flat, default=0.0)
    if hi == hi and lo == lo and (-limit <= lo and hi <= limit or math.isinf(hi) or math.isinf(lo)):
        if not (math.isinf(hi) or math.isinf(lo)) or max(abs(v) for v in flat if not math.isinf(v)) <= limit:
            return np.array(flat, dtype=dtype)  # fast path: every value is in range (no NaN)
    with np.errstate(over="ignore"):
        out = np.fromiter(flat, dtype=dtype, count=len(flat))
    # An infinity here is an overflow unless the client sent the Infinity literal.
    if np.isinf(out).any() and not np.array_equal(np.isinf(out), np.isinf(np.asarray(flat, float))):
        fail(field, f"value out of range for {datatype}")
    return out


def _to_int(flat: list, datatype: str, field: str) -> np.ndarray:
    dtype = V2_TO_NUMPY[datatype]
    info = np.iinfo(dtype)
    out_of_range = f"value out of range for {datatype} [{info.min}, {info.max}]"
    try:
        wide = np.fromiter(flat, dtype=np.int64, count=len(flat))
    except OverflowError:  # above the int64 range; JSON integers stop at the uint64 range
        if datatype != "UINT64" or min(flat) < 0:
            fail(field, out_of_range)
        return np.asarray(flat, dtype=np.uint64)
    if wide.size and (wide.min() < info.min or wide.max() > info.max):
        fail(field, out_of_range)
    return wide.astype(dtype)


def array_to_json(data: np.ndarray, datatype: str, field: str) -> Any:
    """Flat row-major JSON data for one output: an array orjson serialises, or a list."""
    if datatype == "BYTES":
        return [_to_text(v, field) for v in data.reshape(-1)]
    flat = np.ascontiguousarray(data, dtype=V2_TO_NUMPY[datatype]).reshape(-1)
    if datatype in FLOAT_DATATYPES and not np.isfinite(flat).all():
        return orjson.Fragment(json.dumps(flat.tolist(), separators=(",", ":")).encode())
    return flat


def _to_text(value: object, field: str) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise MlgateError(f"{field}: BYTES element of type {type(value).__name__}")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        fail(field, "BYTES value is not valid UTF-8 and cannot be sent as JSON; "
                    "request this output with parameters.binary_data=true")
