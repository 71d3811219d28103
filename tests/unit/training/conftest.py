"""Fixtures of the training unit tests: small tables, stores in tmp dirs. No Ray."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from training import demo_data
from training.datastore import DataStore


@pytest.fixture
def demo_table() -> pa.Table:
    return demo_data.to_table(demo_data.generate(2_000, seed=3))


@pytest.fixture
def store(tmp_path) -> DataStore:
    return DataStore(str(tmp_path / "data"))


def mixed_table(rows: int = 400, seed: int = 0) -> pa.Table:
    """Numeric, categorical, a group key and a string target; all rows valid."""
    rng = np.random.default_rng(seed)
    return pa.table({
        "customer": pa.array([f"c{i // 4}" for i in range(rows)]),
        "x": pa.array(rng.normal(size=rows)),
        "n": pa.array(rng.integers(0, 10, rows)),
        "color": pa.array(rng.choice(["red", "green", "blue"], rows).tolist()),
        "label": pa.array(rng.choice(["a", "b"], rows).tolist()),
    })
