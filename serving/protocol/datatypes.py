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
