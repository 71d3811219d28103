"""Cut and garbled bodies: the decoder answers a valid request or ``InvalidInput``, nothing else."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest

from contracts.errors import InvalidInput
from registry.schema import V2_TO_NUMPY
from serving.protocol import decode_infer_request
from serving.types import InferenceRequest

WEIRD = [None, True, False, 0, -1, 1, 2**63, 2**64 - 1, -(2**63), 1.5, -0.0, 1e308, "", "x", "NaN",
         [], [1], [[1, 2], [3]], [True], ["a"], {}, {"binary_data_size": 4}, [-1], [2, 3], [1.5, 2]]
DATATYPES = [*V2_TO_NUMPY, "BF16", "fp32", ""]


def decode_or_400(body: bytes, header_length: int | None) -> InferenceRequest | None:
    try:
        return decode_infer_request(body, model="m", version=None, header_length=header_length)
    except InvalidInput:
        return None


def mixed_body(wire) -> tuple[bytes, int]:
    return wire.build_request(
        [
            ("a", "FP32", np.arange(6, dtype=np.float32).reshape(2, 3), True),
            ("b", "BYTES", wire.bytes_array([b"hi", b"", b"\xc3\xa9"], (3,)), True),
            ("c", "INT8", np.array([[-1, 2]], dtype=np.int8), False),
            ("d", "BOOL", np.array([True, False]), True),
        ],
        id="r", outputs=[{"name": "y", "parameters": {"binary_data": True}}],
    )


def test_every_cut_point_is_a_400(wire):
    body, header_length = mixed_body(wire)
    assert decode_or_400(body, header_length) is not None
    for cut in range(len(body)):
        for length in {header_length, min(header_length, cut), None}:
            with pytest.raises(InvalidInput):
                decode_infer_request(body[:cut], model="m", version=None, header_length=length)


def test_every_cut_point_of_a_json_body_is_a_400(wire):
    body, header_length = wire.build_request([("x", "FP64", np.ones((2, 2)), False)], id="r")
    assert header_length is None
    for cut in range(len(body)):
        with pytest.raises(InvalidInput):
            decode_infer_request(body[:cut], model="m", version=None, header_length=None)


def test_random_bytes():
    rng = random.Random(1234)
    for _ in range(2000):
        body = rng.randbytes(rng.randrange(0, 200))
        decode_or_400(body, rng.choice([None, rng.randrange(-2, 210)]))


def test_mutated_valid_bodies(wire):
    rng = random.Random(99)
    original, header_length = mixed_body(wire)
    for _ in range(3000):
        body = bytearray(original)
        for _ in range(rng.randrange(1, 4)):
            pos = rng.randrange(len(body))
            action = rng.randrange(3)
            if action == 0:
                body[pos] = rng.randrange(256)
            elif action == 1:
                del body[pos]
            else:
                body.insert(pos, rng.choice(b'[]{}",:0123456789-.eE \x00\xff'))
        length = rng.choice([header_length, header_length + rng.randrange(-3, 4), None])
        decode_or_400(bytes(body), length)


def random_input(rng: random.Random, wire, index: int) -> tuple[dict, bytes]:
    """A valid input (JSON or binary) with, half the time, one field made wrong."""
    datatype = rng.choice(sorted(V2_TO_NUMPY))
    shape = tuple(rng.randrange(0, 4) for _ in range(rng.randrange(0, 3)))
    pick = rng.randrange(6)
    arr = wire.sample(datatype).reshape(-1)[pick : pick + 1].repeat(int(np.prod(shape))).reshape(shape)
    binary = rng.random() < 0.5
    (entry,), section = build_entries(wire, [(f"x{index}", datatype, arr, binary)])
    if rng.random() < 0.5:
        key = rng.choice(["name", "datatype", "shape", "data", "parameters"])
        entry[key] = rng.choice(WEIRD + DATATYPES) if rng.random() < 0.7 else entry.get(key)
        if rng.random() < 0.3:
            entry.pop(key, None)
    if binary and rng.random() < 0.2:
        section = section[: rng.randrange(len(section) + 1)] + rng.randbytes(rng.randrange(3))
    return entry, section


def build_entries(wire, tensors) -> tuple[list[dict], bytes]:
    body, header_length = wire.build_request(tensors)
    end = len(body) if header_length is None else header_length
    return orjson.loads(body[:end])["inputs"], body[end:]


def test_random_structured_requests(wire):
    rng = random.Random(7)
    accepted = 0
    for _ in range(2000):
        pairs = [random_input(rng, wire, i) for i in range(rng.randrange(0, 4))]
        fields = {
            "id": rng.choice(["r", "r", None, 5]),
            "inputs": [entry for entry, _ in pairs],
            "outputs": rng.choice([None, [{"name": "y"}], [{"name": "y", "parameters": rng.choice(WEIRD)}]]),
            "parameters": rng.choice([{}, {}, {"timeout": rng.choice(WEIRD)}, {"binary_data_output": True}]),
        }
        header = orjson.dumps({k: v for k, v in fields.items() if v is not None})
        sections = b"".join(section for _, section in pairs)
        request = decode_or_400(header + sections, len(header) if sections else None)
        if request is not None:
            accepted += 1
            assert all(t.data.shape == t.shape for t in request.inputs)
    assert accepted > 200  # the generator reaches deep into the decoder, not only its first check
