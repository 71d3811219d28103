"""Versioned datasets under the data root: ``{root}/{name}/{version}/``.

Each version holds ``train.parquet``, ``validation.parquet``, ``test.parquet``,
``rejected.parquet`` (rows that failed validation, with ``source_row`` and ``reasons``),
``schema.json`` (:class:`DatasetSchema`) and ``dataset.json``, the manifest written last
(counts, split settings, source, content fingerprint). Versions are staged and renamed
into place like registry versions. The data root holds training data only: live
prediction logs are a separate area that training reads but never writes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contracts import fs as rfs
from contracts.errors import Conflict, NotFound, RegistryError
from contracts.names import check_name
from training.dataschema import DatasetSchema
from training.split import SPLITS

MANIFEST = "dataset.json"
_PUBLISH_RETRIES = 20


def to_arrow(columns: dict[str, np.ndarray], schema: DatasetSchema) -> pa.Table:
    """Clean columns as a typed table: float64 numerics (null = missing), string categoricals."""
    kinds = {c.name: c.kind for c in schema.features}
    if schema.task == "regression":
        kinds[schema.target] = "numeric"
    arrays = {}
    for name in schema.columns:
        col = columns[name]
        if kinds.get(name) == "numeric":
            arrays[name] = pa.array(col, type=pa.float64(), from_pandas=True)
        else:
            arrays[name] = pa.array(list(col), type=pa.string())
    return pa.table(arrays)


def columns_of(table: pa.Table, names: list[str], numeric: set[str]) -> dict[str, np.ndarray]:
    """Arrow columns as the preprocessor takes them: float64 with NaN, or objects with None."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        col = table[name]
        if name in numeric:
            out[name] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        else:
            out[name] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    return out


@dataclass(frozen=True)
class DatasetVersion:
    store: DataStore
    name: str
    version: int
    manifest: dict[str, Any]

    @property
    def path(self) -> str:
        return f"{self.store.path}/{self.name}/{self.version}"

    @property
    def uri(self) -> str:
        """The version's location as the data root spells it (path or URI)."""
        return f"{self.store.root.rstrip('/')}/{self.name}/{self.version}"

    @property
    def schema(self) -> DatasetSchema:
        return DatasetSchema.model_validate(self.manifest["schema"])

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    def split_path(self, split: str) -> str:
        return f"{self.path}/{split}.parquet"

    def read(self, split: str) -> pa.Table:
        if split not in (*SPLITS, "rejected"):
            raise NotFound(f"dataset {self.name} has no split {split!r}")
        return pq.read_table(self.split_path(split), filesystem=self.store.fs)

    def columns(self, split: str) -> dict[str, np.ndarray]:
        """Features and target of one split, decoded for the preprocessor and metrics."""
        schema = self.schema
        numeric = {c.name for c in schema.features if c.kind == "numeric"}
        if schema.task == "regression":
            numeric.add(schema.target)
        return columns_of(self.read(split), [*schema.feature_names, schema.target], numeric)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.manifest.items() if k != "schema"}


class DataStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.fs, self.path = rfs.resolve(root)

    def list_names(self) -> list[str]:
        return [n for n in rfs.list_dirs(self.fs, self.path) if not n.startswith(".") and self.list_versions(n)]

    def list_versions(self, name: str) -> list[int]:
        check_name(name, "dataset name")
        found = [int(d) for d in rfs.list_dirs(self.fs, f"{self.path}/{name}") if d.isdigit()]
        return sorted(v for v in found if rfs.exists(self.fs, f"{self.path}/{name}/{v}/{MANIFEST}"))

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        versions = self.list_versions(name)
        if not versions:
            raise NotFound(f"unknown dataset {name!r} under {self.root}")
        version = versions[-1] if version is None else version
        if version not in versions:
            raise NotFound(f"dataset {name!r} has no version {version}")
        path = f"{self.path}/{name}/{version}/{MANIFEST}"
        try:
            manifest = json.loads(rfs.read_bytes(self.fs, path))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"cannot read {path}: {exc}") from exc
        return DatasetVersion(self, name, version, manifest)

    def publish(self, name: str, tables: dict[str, pa.Table], manifest: dict[str, Any]) -> DatasetVersion:
        """Write ``tables`` (split name -> table) and the manifest as the next version."""
        for _ in range(_PUBLISH_RETRIES):
            version = (self.list_versions(name) or [0])[-1] + 1
            if self._try_publish(name, version, tables, {**manifest, "name": name, "version": version}):
                return self.get(name, version)
        raise Conflict(f"could not allocate a version for dataset {name!r}")

    def _try_publish(self, name: str, version: int, tables: dict[str, pa.Table], manifest: dict) -> bool:
        final = f"{self.path}/{name}/{version}"
        local = rfs.is_local(self.fs)
        target = f"{self.path}/{name}/.staging/{uuid.uuid4().hex}" if local else final
        if rfs.exists(self.fs, final):
            return False
        self.fs.create_dir(target, recursive=True)
        for split, table in tables.items():
            pq.write_table(table, f"{target}/{split}.parquet", filesystem=self.fs)
        rfs.write_bytes(self.fs, f"{target}/schema.json", json.dumps(manifest["schema"], indent=1).encode())
        rfs.write_bytes(self.fs, f"{target}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
        if not local:
            return True
        try:
            if rfs.exists(self.fs, final):
                raise OSError("taken")
            self.fs.move(target, final)
        except OSError:  # lost the race: somebody published this number first
            self.fs.delete_dir(target)
            return False
        return True
