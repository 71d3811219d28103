"""The label join against a plain Python join (oracle), over keys stored as id dictionaries."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from contracts import predlog
from monitoring import labels


def keys_of(ids: list, version: str = "1", seed: int = 0) -> pa.Table:
    n = len(ids)
    row_index = [0] * n
    for i in range(1, n):
        row_index[i] = row_index[i - 1] + 1 if ids[i] == ids[i - 1] else 0
    pred = np.random.default_rng(seed).random((n, 2))
    return labels.keys_table(pa.array(ids, pa.string()), row_index, np.arange(n, dtype=np.int64) + 10 * seed,
                             version, np.arange(n) // 4, pred)


def label_rows(pairs: list[tuple[str, int]]) -> pa.Table:
    return pa.table({predlog.REQUEST_ID: pa.array([p[0] for p in pairs], pa.string()),
                     predlog.ROW_INDEX: pa.array([p[1] for p in pairs], pa.int32()),
                     "label": [f"l{i}" for i in range(len(pairs))],
                     labels.LABEL_TS: pa.array(np.arange(len(pairs)), pa.int64())})


def oracle(rows: pa.Table, keys: pa.Table) -> tuple[list, list]:
    index: dict = {}
    for k in keys.to_pylist():
        if k[predlog.REQUEST_ID] is not None:
            index.setdefault((k[predlog.REQUEST_ID], k[predlog.ROW_INDEX]), []).append(k)
    joined, unmatched = [], []
    for r in rows.to_pylist():
        found = index.get((r[predlog.REQUEST_ID], r[predlog.ROW_INDEX]), [])
        joined += [{**k, **r} for k in found]
        unmatched += [] if found else [r]
    return joined, unmatched


def canonical(records: list[dict]) -> list:
    return sorted(tuple(sorted(r.items())) for r in records)


@pytest.mark.parametrize("ids", [
    ["a"] * 5 + ["b"] * 3 + ["a"] * 2 + ["c"],  # runs, one id in two runs
    [f"r{i}" for i in range(9)],  # one row per request
    ["a", "a", None, "b", "b", "b"],  # a row without id joins nothing
])
def test_join_matches_oracle(ids):
    keys = pa.concat_tables([keys_of(ids, "1", 0), keys_of(ids[::-1], "2", 1)])
    pairs = [("a", 0), ("a", 1), ("a", 4), ("b", 2), ("c", 0), ("r3", 0), ("r8", 0), ("zz", 0), ("a", 99)]
    rows = label_rows(pairs + pairs[:2])  # a pair labelled twice joins twice
    joined, unmatched = labels.join_rows(rows, keys)
    want_joined, want_unmatched = oracle(rows, keys)
    assert joined.schema.field(predlog.REQUEST_ID).type == pa.string()
    assert joined.schema.field(predlog.VERSION).type == pa.string()
    assert canonical(joined.to_pylist()) == canonical(want_joined)
    assert canonical(unmatched.to_pylist()) == canonical(want_unmatched)


def test_keys_stored_with_plain_ids_join_the_same():
    keys = keys_of(["a"] * 3 + ["b"] * 2)
    old = keys.cast(pa.schema([f.with_type(pa.string()) if pa.types.is_dictionary(f.type) else f
                               for f in keys.schema]))
    restored = labels.as_keys(old)
    assert restored.schema.equals(labels.KEYS_SCHEMA)
    rows = label_rows([("a", 2), ("b", 1), ("b", 5)])
    assert canonical(labels.join_rows(rows, restored)[0].to_pylist()) == \
        canonical(labels.join_rows(rows, keys)[0].to_pylist())
