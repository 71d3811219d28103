"""``mlgate data ingest``: read a source, validate it, split it, publish a dataset version.

Sources: a Parquet file or directory, or a CSV file (``.csv``, ``.csv.gz``), as a local
path or any pyarrow filesystem URI; or ``demo:ROWS[:SEED]``, the synthetic dataset of the
``demo`` model (with its schema). Ingesting content identical to the latest version
(same fingerprint) publishes nothing and returns that version.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from contracts import fs as rfs
from contracts.clock import Clock, wall_clock_s
from contracts.errors import InvalidInput
from training import demo_data
from training.config import SplitConfig
from training.dataschema import DatasetSchema
from training.datastore import DatasetVersion, DataStore, to_arrow
from training.split import SPLITS, row_hashes, split_indices
from training.validate import infer_schema, validate

DEMO_PREFIX = "demo:"


@dataclass(frozen=True)
class IngestResult:
    dataset: DatasetVersion
    created: bool  # False: the content equals the latest version, nothing published


def read_source(source: str) -> tuple[pa.Table, DatasetSchema | None]:
    """The source table, and its schema when the source defines one (the demo data)."""
    if source.startswith(DEMO_PREFIX):
        return _demo(source)
    fs, path = rfs.resolve(source)
    if not rfs.exists(fs, path):
        raise InvalidInput(f"source: {source} does not exist")
    try:
        if path.endswith((".csv", ".csv.gz")):
            convert = pacsv.ConvertOptions(strings_can_be_null=True)
            with fs.open_input_stream(path, compression="detect") as f:
                return pacsv.read_csv(f, convert_options=convert), None
        return pq.read_table(path, filesystem=fs), None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"source: cannot read {source}: {exc}") from None


def _demo(source: str) -> tuple[pa.Table, DatasetSchema]:
    parts = source[len(DEMO_PREFIX):].split(":")
    try:
        rows, seed = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise InvalidInput(f"source: expected demo:ROWS[:SEED], got {source!r}") from None
    if rows < 10:
        raise InvalidInput("source: the demo source needs at least 10 rows")
    schema = DatasetSchema.from_model_schema(demo_data.demo_schema(), levels=demo_data.CATEGORICAL)
    return demo_data.to_table(demo_data.generate(rows, seed=seed)), schema


def fingerprint(schema: DatasetSchema, split: SplitConfig, parts: dict[str, dict[str, np.ndarray]]) -> str:
    """sha256 over the schema, the split settings and every row's content, split by split."""
    digest = hashlib.sha256()
    settings = {"schema": schema.model_dump(mode="json"), "seed": split.seed,
                "validation_share": split.validation_share, "test_share": split.test_share}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for name in SPLITS:
        digest.update(name.encode())
        digest.update(row_hashes(parts[name], schema.columns).astype("<u8").tobytes())
    return digest.hexdigest()


def ingest(store: DataStore, source: str, name: str, *, target: str | None = None,
           schema: DatasetSchema | None = None, split: SplitConfig | None = None,
           task: str | None = None, group_by: str | None = None, drop: tuple[str, ...] = (),
           clock: Clock = wall_clock_s) -> IngestResult:
    """Validate, split and publish ``source`` as the next version of dataset ``name`` (stamped
    ``created_at`` by ``clock``), unless the latest version already holds the same data."""
    split = split or SplitConfig()
    table, source_schema = read_source(source)
    schema = schema or source_schema
    if schema is None:
        if not target:
            raise InvalidInput("--target: required when the schema is inferred")
        schema = infer_schema(table, target, task=task, group_by=group_by, drop=drop, max_levels=split.max_levels)
    elif target and target != schema.target:
        raise InvalidInput(f"--target: {target!r} differs from the schema's target {schema.target!r}")
    if group_by and group_by != schema.group_by:
        schema = schema.model_copy(update={"group_by": group_by})
    checked = validate(table, schema)
    if not len(checked.source_rows):
        raise InvalidInput(f"source: all {table.num_rows} rows were rejected, e.g. "
                           f"row {checked.rejected['source_row'][0]}: {checked.rejected['reasons'][0]}")
    key = [schema.group_by] if schema.group_by else schema.columns
    idx = split_indices(checked.columns, key, split.seed, split.validation_share, split.test_share)
    parts = {s: {k: v[i] for k, v in checked.columns.items()} for s, i in idx.items()}
    fp = fingerprint(schema, split, parts)
    versions = store.list_versions(name)
    if versions and store.get(name).fingerprint == fp:
        return IngestResult(store.get(name), created=False)
    tables = {s: to_arrow(parts[s], schema) for s in SPLITS}
    tables["rejected"] = checked.rejected
    manifest = {
        "format": 1,
        "created_at": clock(),
        "source": source if "://" in source or source.startswith(DEMO_PREFIX) else os.path.abspath(source),
        "fingerprint": fp,
        "schema": schema.model_dump(mode="json"),
        "split": {"seed": split.seed, "validation_share": split.validation_share,
                  "test_share": split.test_share, "key": schema.group_by or "row content"},
        "rows": {"source": table.num_rows, **{s: len(i) for s, i in idx.items()},
                 "rejected": checked.n_rejected},
    }
    return IngestResult(store.publish(name, tables, manifest), created=True)
