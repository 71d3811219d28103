"""Dataset versions: published atomically, fingerprinted, unchanged content is not republished."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contracts.errors import InvalidInput, NotFound
from training.config import SplitConfig
from training.ingest import ingest
from training.split import SPLITS


def _table(rows=400, seed=0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "customer": [f"c{i // 4}" for i in range(rows)],
        "x": rng.normal(size=rows),
        "color": rng.choice(["red", "green", "blue"], rows).tolist(),
        "label": rng.choice(["a", "b"], rows).tolist(),
    })


@pytest.fixture
def source(tmp_path) -> str:
    path = str(tmp_path / "src.parquet")
    pq.write_table(_table(), path)
    return path


def test_ingest_publishes_splits_that_partition_the_accepted_rows(store, source):
    ds = ingest(store, source, "t", target="label", drop=("customer",)).dataset
    assert (ds.name, ds.version) == ("t", 1)
    parts = [ds.read(s) for s in SPLITS]
    assert sum(p.num_rows for p in parts) == 400
    xs = np.sort(np.concatenate([p["x"].to_numpy() for p in parts]))
    np.testing.assert_array_equal(xs, np.sort(_table()["x"].to_numpy()))
    assert ds.manifest["rows"] == {"source": 400, **{s: p.num_rows for s, p in zip(SPLITS, parts)}, "rejected": 0}
    assert parts[0].column_names == ["x", "color", "label"]


def test_same_content_same_fingerprint_and_no_new_version(store, source):
    first = ingest(store, source, "t", target="label", drop=("customer",))
    again = ingest(store, source, "t", target="label", drop=("customer",))
    assert first.created and not again.created
    assert again.dataset.version == 1 and store.list_versions("t") == [1]


def test_changed_content_or_seed_makes_a_new_version(store, source, tmp_path):
    a = ingest(store, source, "t", target="label", drop=("customer",)).dataset
    b = ingest(store, source, "t", target="label", drop=("customer",), split=SplitConfig(seed=1)).dataset
    other = str(tmp_path / "other.parquet")
    pq.write_table(_table(seed=9), other)
    c = ingest(store, other, "t", target="label", drop=("customer",)).dataset
    assert [a.version, b.version, c.version] == [1, 2, 3]
    assert len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3


def test_ingest_is_deterministic_across_stores(tmp_path, source):
    from training.datastore import DataStore

    a = ingest(DataStore(str(tmp_path / "a")), source, "t", target="label", drop=("customer",)).dataset
    b = ingest(DataStore(str(tmp_path / "b")), source, "t", target="label", drop=("customer",)).dataset
    assert a.fingerprint == b.fingerprint
    for split in SPLITS:
        assert a.read(split).equals(b.read(split))


def test_group_by_keeps_customers_in_one_split(store, source):
    ds = ingest(store, source, "g", target="label", group_by="customer").dataset
    customers = [set(ds.read(s)["customer"].to_pylist()) for s in SPLITS]
    assert not (customers[0] & customers[1]) and not (customers[0] & customers[2]) \
        and not (customers[1] & customers[2])
    assert "customer" not in ds.schema.feature_names


def test_demo_source_uses_the_demo_schema(store):
    ds = ingest(store, "demo:500:4", "demo").dataset
    schema = ds.schema
    assert schema.class_labels == ("stay", "churn") and schema.target == "churn"
    assert {c.name for c in schema.features if c.pii} == {"age"}
    assert ds.manifest["source"] == "demo:500:4"


def test_columns_decode_for_the_preprocessor(store):
    cols = ingest(store, "demo:500", "demo").dataset.columns("train")
    assert cols["income"].dtype == np.float64 and np.isnan(cols["income"]).any()
    assert cols["channel"].dtype == object and any(v is None for v in cols["channel"])


@pytest.mark.parametrize("source", ["demo:abc", "demo:5", "/nonexistent/x.parquet"])
def test_bad_sources(store, source):
    with pytest.raises(InvalidInput):
        ingest(store, source, "x", target="label")


def test_unknown_dataset(store):
    with pytest.raises(NotFound):
        store.get("nope")
