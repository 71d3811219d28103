"""Fragments of the input, the output layout, and the manifest that makes runs resumable.

A fragment is a row range of one input file; it becomes exactly one output part with a
deterministic name. The first run writes ``_manifest.json`` (the model version, the input
files with sizes and times, the keys, the fragments); a later run into the same output
reuses that manifest, checks that nothing it depends on changed, and scores only the
fragments whose part is missing. A part appears by rename once complete, so a part that
exists is done.

    DEST/_manifest.json           the plan, written once
    DEST/part-00000.parquet       scored rows of fragment 0 (keys, predictions, model)
    DEST/_rejects/part-00000.parquet   rows of fragment 0 that failed validation, with reasons
    DEST/_tmp/                    parts being written (removed when the run is complete)
    DEST/_SUCCESS                 every part is present
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow.fs as pafs

from contracts import fs as rfs
from contracts.errors import Conflict

MANIFEST = "_manifest.json"
REJECTS_DIR = "_rejects"
TMP_DIR = "_tmp"
SUCCESS = "_SUCCESS"
_IDENTITY = ("model", "source", "format", "files", "keys", "outputs")


@dataclass(frozen=True)
class Fragment:
    part: str  # output part name, without ".parquet"
    file: int  # index into the manifest's files
    start: int = 0
    stop: int | None = None  # None: to the end of the file (CSV)

    @property
    def rows(self) -> int | None:
        return None if self.stop is None else self.stop - self.start


def plan_fragments(files_rows: list[list[int] | None], fragment_rows: int, max_splits: int) -> list[Fragment]:
    """Fragments for files given as rows per Parquet row group (``None``: a CSV file, read whole).

    Consecutive row groups are grouped up to ``fragment_rows``; a larger row group is cut
    into at most ``max_splits`` row ranges. A file without rows still gets one (empty) part.
    """
    ranges: list[tuple[int, int, int | None]] = []
    for index, groups in enumerate(files_rows):
        ranges += [(index, 0, None)] if groups is None else _file_ranges(index, groups, fragment_rows, max_splits)
    width = max(5, len(str(len(ranges) - 1)))
    return [Fragment(f"part-{i:0{width}d}", f, a, b) for i, (f, a, b) in enumerate(ranges)]


def _file_ranges(index: int, groups: list[int], target: int, max_splits: int) -> list[tuple[int, int, int]]:
    out, start, pos = [], 0, 0
    for rows in groups:
        if pos > start and (pos - start) + rows > target:
            out.append((index, start, pos))
            start = pos
        if rows > target:
            cuts = min(math.ceil(rows / target), max_splits)
            out += [(index, pos + rows * j // cuts, pos + rows * (j + 1) // cuts) for j in range(cuts)]
            start = pos + rows
        pos += rows
    if pos > start or not out:
        out.append((index, start, pos))
    return out


@dataclass
class Manifest:
    model: dict[str, Any]  # {"name": ..., "version": ...}
    source: str
    format: str
    files: list[dict[str, Any]]  # {"name", "size", "mtime_ns"}
    keys: list[str]
    outputs: list[str]  # prediction and model columns
    fragments: list[Fragment] = field(default_factory=list)
    format_version: int = 1

    def identity(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _IDENTITY}

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        data = json.loads(raw)
        data["fragments"] = [Fragment(**f) for f in data["fragments"]]
        return cls(**data)


def reconcile(fs: pafs.FileSystem, dest: str, planned: Manifest) -> Manifest:
    """The manifest this run follows: the one already in ``dest`` if it matches, else ``planned``."""
    path = f"{dest}/{MANIFEST}"
    if rfs.exists(fs, path):
        existing = Manifest.from_json(rfs.read_bytes(fs, path))
        changed = [k for k in _IDENTITY if existing.identity()[k] != planned.identity()[k]]
        if changed:
            raise Conflict(f"--output: {dest} holds a run with other {', '.join(changed)} "
                           f"(model {existing.model['name']} v{existing.model['version']}); "
                           "choose another output or delete it")
        return existing
    fs.create_dir(dest, recursive=True)
    rfs.write_atomic(fs, path, planned.to_json())
    return planned


def part_path(dest: str, part: str) -> str:
    return f"{dest}/{part}.parquet"


def rejects_path(dest: str, part: str) -> str:
    return f"{dest}/{REJECTS_DIR}/{part}.parquet"


def done_parts(fs: pafs.FileSystem, dest: str) -> set[str]:
    infos = fs.get_file_info(pafs.FileSelector(dest, allow_not_found=True))
    return {i.base_name[: -len(".parquet")] for i in infos
            if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")}


def pending(manifest: Manifest, done: set[str]) -> list[Fragment]:
    return [f for f in manifest.fragments if f.part not in done]


def finish(fs: pafs.FileSystem, dest: str) -> None:
    """Every part is present: drop leftovers of interrupted runs, mark the output complete."""
    if rfs.exists(fs, f"{dest}/{TMP_DIR}"):
        fs.delete_dir(f"{dest}/{TMP_DIR}")
    if not rfs.exists(fs, f"{dest}/{SUCCESS}"):
        rfs.write_atomic(fs, f"{dest}/{SUCCESS}", b"")
