"""Log columns to kernel columns: dictionary-encoded strings give what plain strings give."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monitoring.reference import categorical

CASES = {
    "no nulls": pa.chunked_array([["basic", "pro", "basic"]]),
    "nulls": pa.chunked_array([["basic", None, "pro"]]),
    "chunks, one with nulls": pa.chunked_array([["basic"], ["premium", None]]),
    "chunks, no nulls": pa.chunked_array([["basic"], ["premium", "pro"]]),
    "empty": pa.chunked_array([], pa.string()),
}


@pytest.mark.parametrize("name", CASES)
def test_dictionary_columns_give_the_strings_of_plain_ones(name):
    plain = CASES[name]
    coded = pa.chunked_array([c.dictionary_encode() for c in plain.chunks], pa.dictionary(pa.int32(), pa.string()))
    want = np.array(plain.to_pylist(), dtype=object)
    for col in (plain, coded):
        got = categorical(col)
        assert got.dtype.kind == ("O" if plain.null_count else "U")
        assert got.tolist() == want.tolist()
