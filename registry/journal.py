"""An append-only, atomically committed sequence of JSON records per model.

Layout under a registry root (a local path or any pyarrow filesystem)::

    {root}/{model}/{dirname}/{seq:08d}/{filename}   one committed record, seq from 1
    {root}/{model}/{dirname}/.tmp-{uuid}/           a record being written (local filesystems)

On a local filesystem a record is written to a staging directory, then renamed to its
numbered directory (atomic: the rename fails when another writer took that number). On
object stores the numbered directory is created and the record file written last; a
numbered directory without its file is not a record yet.

A writer reads the history, decides the next record from it, and commits it at the next
number; when somebody else committed that number first, it reads again and decides again
(optimistic concurrency, :meth:`Journal.commit`). The state a journal keeps is the fold
of its records, so the state and its history never disagree.

Records are pydantic models with an ``int`` field ``seq``: the record's number.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Generic, TypeVar

import pyarrow.fs as pafs
from pydantic import BaseModel

from contracts import fs as rfs
from contracts.errors import Conflict
from contracts.names import check_name

R = TypeVar("R", bound=BaseModel)
_RETRIES = 50


class Journal(Generic[R]):
    """The records of type ``record_type`` kept under ``{root}/{model}/{dirname}/``."""

    def __init__(self, fs: pafs.FileSystem, root_path: str, dirname: str, record_type: type[R], *,
                 filename: str = "event.json", what: str = "change") -> None:
        """``dirname``: the directory beside the model's versions (start it with ``.`` so it is never taken for
        a version or a model); ``filename``: the record's file in each numbered directory; ``what``: the kind
        of change, for the error when too many writers compete (``"stage change"``)."""
        self.fs = fs
        self.root_path = root_path
        self.dirname = dirname
        self.record_type = record_type
        self.filename = filename
        self.what = what

    def _dir(self, model: str) -> str:
        return f"{self.root_path}/{check_name(model, 'model name')}/{self.dirname}"

    def _path(self, model: str, seq: int) -> str:
        return f"{self._dir(model)}/{seq:08d}/{self.filename}"

    def _seqs(self, model: str) -> list[int]:
        """The numbered directories, committed or not, in order."""
        return sorted(int(d) for d in rfs.list_dirs(self.fs, self._dir(model)) if d.isdigit())

    def _read(self, model: str, seq: int) -> R:
        return self.record_type.model_validate_json(rfs.read_bytes(self.fs, self._path(model, seq)))

    def history(self, model: str) -> list[R]:
        """Every committed record of ``model``, oldest first (empty when it has none)."""
        return [self._read(model, seq) for seq in self._seqs(model) if rfs.exists(self.fs, self._path(model, seq))]

    def latest_seq(self, model: str) -> int:
        """The number of the newest committed record, 0 when there is none: a cheap change stamp (one
        directory listing and a check or two), for a replica that polls."""
        return next((s for s in reversed(self._seqs(model)) if rfs.exists(self.fs, self._path(model, s))), 0)

    def last(self, model: str) -> R | None:
        """The newest committed record, reading only that one; None when there is none."""
        seq = self.latest_seq(model)
        return self._read(model, seq) if seq else None

    def commit(self, model: str, make: Callable[[int, list[R]], R]) -> R:
        """Append ``make(seq, history)``: the record numbered ``seq`` given every record before it. When
        another writer commits ``seq`` first, ``make`` is called again on the longer history. Whatever
        ``make`` raises (a refusal) propagates, and nothing is written."""
        for _ in range(_RETRIES):
            history = self.history(model)
            seq = history[-1].seq + 1 if history else 1
            record = make(seq, history)
            if record.seq != seq:
                raise ValueError(f"{self.dirname}: make() returned seq {record.seq}, expected {seq}")
            if self._try_write(model, record):
                return record
        raise Conflict(f"{self.what} of {model!r}: too many concurrent writers, try again")

    def _try_write(self, model: str, record: R) -> bool:
        final = f"{self._dir(model)}/{record.seq:08d}"
        body = json.dumps(record.model_dump(mode="json"), indent=1).encode()
        if rfs.exists(self.fs, final):
            return False
        if not rfs.is_local(self.fs):
            self.fs.create_dir(final, recursive=True)
            rfs.write_bytes(self.fs, f"{final}/{self.filename}", body)
            return True
        staging = f"{self._dir(model)}/.tmp-{uuid.uuid4().hex}"
        self.fs.create_dir(staging, recursive=True)
        rfs.write_bytes(self.fs, f"{staging}/{self.filename}", body)
        try:
            rfs.publish(self.fs, staging, final)  # fails if ``final`` exists and is not empty
        except OSError:
            self.fs.delete_dir(staging)
            return False
        return True
