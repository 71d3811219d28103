"""v2 datatypes on the wire and the one way this package reports a bad field.

Binary tensor data is little-endian and row-major. ``BF16`` is part of the
protocol but not of our schemas (``registry.schema.V2_TO_NUMPY``), so it is
refused with a clear 400 instead of an "unknown datatype".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import numpy as np

from contracts.errors import InvalidInput
from registry.schema import V2_TO_NUMPY

DATATYPES: frozenset[str] = frozenset(V2_TO_NUMPY)
UNSUPPORTED_DATATYPES: frozenset[str] = frozenset({"BF16"})
# Element dtype of binary tensor data (the extension fixes little-endian).
WIRE_DTYPES: dict[str, np.dtype] = {
    name: dt.newbyteorder("<") for name, dt in V2_TO_NUMPY.items() if name != "BYTES"
}
FLOAT_DATATYPES: frozenset[str] = frozenset({"FP16", "FP32", "FP64"})


def fail(field: str, message: str) -> NoReturn:
    """Raise the 400 every decoding problem becomes, naming the field."""
    raise InvalidInput(f"{field}: {message}")


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


def format_shape(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


_JSON_TYPE_NAMES = {
    bool: "boolean", int: "integer", float: "number", str: "string",
    type(None): "null", list: "array", dict: "object",
}


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    return type_name(type(value))


def type_name(kind: type) -> str:
    return _JSON_TYPE_NAMES.get(kind, kind.__name__)


def json_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
