"""Live quality of one model: prediction keys, feedback ingestion and labelled rows.

Keys and joined labels are kept in memory for ``live.horizon_s`` and on disk in the
state directory (``keys/``, ``labels/``, ``orphans.arrow``), so a restart neither
re-reads prediction segments nor loses labels. See ``monitoring.labels`` for the join.

Keys are kept once the model has feedback (``keyed``). Until then a segment leaves
only a stub (``monitoring.ingest.KeyStub``, in the monitor's state), and when the
first labels arrive the keys of the stubbed segments in the horizon are read then:
a label joins the same prediction either way, for the price of reading request ids
only of models that get labels.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pyarrow as pa
import pyarrow.compute as pc

from contracts import feedback as fb
from contracts import predlog
from contracts.clock import utc_at
from monitoring import labels
from monitoring.cursor import Cursor
from monitoring.ingest import KeyStub
from monitoring.state import StateStore


def _day(ts_s: float) -> dt.date:
    return utc_at(ts_s).date()


class LiveQuality:
    def __init__(self, model: str, log_root: str, store: StateStore | None, horizon_s: float) -> None:
        self.model = model
        self.log_root = log_root
        self.store = store
        self.horizon_s = horizon_s
        self.book = labels.LabelBook()
        self._keys: list[pa.Table] = []
        self._keys_joined: pa.Table | None = None
        self.orphans = labels.join(fb.SCHEMA.empty_table(), labels.KEYS_SCHEMA.empty_table())[1]
        self.labels_joined = 0
        self.last_joined = 0
        self.keyed = False  # keys are kept (the model has feedback)
        self.stubs: list[KeyStub] = []  # segments read before that
        self.quarantined = 0  # unreadable feedback files moved aside

    def to_dict(self) -> dict:
        return {"keyed": self.keyed, "stubs": [s.__dict__ for s in self.stubs]}

    def restore(self, now_s: float, state: dict | None = None) -> None:
        """Reload keys, labels and orphans of the horizon from the state directory."""
        self.keyed = bool((state or {}).get("keyed", False))
        self.stubs = [KeyStub(**s) for s in (state or {}).get("stubs", [])]
        if self.store is None:
            return
        oldest = _day(now_s - self.horizon_s)
        self._keys = [labels.as_keys(t) for t in self.store.read_tables("keys", oldest)]
        for table in self.store.read_tables("labels", oldest):
            self.book.add(table)
        orphans = self.store.read_table("orphans")
        if orphans is not None:
            self.orphans = orphans

    def add_keys(self, day: dt.date, segment_id: str, keys: list[pa.Table]) -> None:
        if not keys:
            return
        table = pa.concat_tables(keys)
        self._keys.append(table)
        self._keys_joined = None
        if self.store is not None:
            # uncompressed: a third of the CPU of lz4 for twice the bytes (random probabilities
            # and unique ids hardly compress), written once per segment, kept for the horizon
            self.store.write_table("keys", day, segment_id, table, compression="uncompressed")

    def has_feedback(self, since_s: float) -> bool:
        """Whether feedback segments were received since ``since_s`` (their partition's day)."""
        return bool(fb.list_feedback(self.log_root, self.model, utc_at(since_s)))

    def _all_keys(self) -> pa.Table:
        if self._keys_joined is None:
            self._keys_joined = pa.concat_tables(self._keys) if self._keys else labels.KEYS_SCHEMA.empty_table()
            self._keys = [self._keys_joined] if self._keys else []
        return self._keys_joined

    def ingest(self, cursor: Cursor | None, now_s: float, since_s: float | None = None) -> set[tuple[str, int]]:
        """Join new feedback segments (and earlier orphans); the changed (version, bucket) pairs."""
        since = utc_at(since_s if since_s is not None else now_s - self.horizon_s)
        fb_segments = fb.list_feedback(self.log_root, self.model, since)
        if cursor is not None:
            fb_segments = cursor.feedback_new(fb_segments)
        self.last_joined = 0
        if not fb_segments and self.orphans.num_rows == 0:
            return set()
        new = self._read_feedback(fb_segments)
        joined, orphans = labels.join(new, self._all_keys())
        if self.orphans.num_rows:
            old_joined, old_orphans = self._rejoin_orphans()
            joined, orphans = pa.concat_tables([joined, old_joined]), pa.concat_tables([orphans, old_orphans])
        cutoff = int((now_s - self.horizon_s) * 1e6)
        self.orphans = orphans.filter(pc.greater_equal(orphans[labels.LABEL_TS], cutoff))
        if joined.num_rows and self.store is not None:
            self.store.write_table("labels", _day(now_s), uuid.uuid4().hex, joined)
        if self.store is not None:
            self.store.write_table("", None, "orphans", self.orphans)
        for seg in fb_segments if cursor is not None else ():
            cursor.feedback_commit(seg)
        self.labels_joined += joined.num_rows
        self.last_joined = joined.num_rows
        return self.book.add(joined)

    def _read_feedback(self, segments: list[predlog.Segment]) -> pa.Table:
        """The labels of ``segments``; an unreadable file is moved aside, logged and counted
        (``quarantined``), and its labels are lost, never the monitor's tick."""
        tables = []
        for seg in segments:
            try:
                tables.append(fb.read_feedback(self.log_root, [seg]))
            except predlog.UNREADABLE as exc:
                predlog.quarantine(self.log_root, seg.path, exc, f"feedback join of {self.model}")
                self.quarantined += 1
        return pa.concat_tables(tables) if tables else fb.SCHEMA.empty_table()

    def _rejoin_orphans(self) -> tuple[pa.Table, pa.Table]:
        keys = self._all_keys()
        rows = self.orphans
        joined, left = labels.join_rows(rows, keys)
        return joined, left.select(rows.column_names)

    def window_rows(self, version: str, end_index: int, k: int) -> pa.Table | None:
        return self.book.rows(version, range(end_index - k + 1, end_index + 1))

    def all_rows(self) -> pa.Table | None:
        """Every labelled row in the horizon (all versions), latest label per prediction row."""
        tables = [self.book.rows(v, self.book.buckets(v)) for v in self.book.versions()]
        tables = [t for t in tables if t is not None]
        return pa.concat_tables(tables) if tables else None

    def prune(self, now_s: float) -> None:
        oldest_us = int((now_s - self.horizon_s) * 1e6)
        self.book.prune(oldest_us)
        keys = self._all_keys()
        if keys.num_rows and pc.min(keys[predlog.TIMESTAMP]).as_py() < oldest_us:
            self._keys_joined = keys.filter(pc.greater_equal(keys[predlog.TIMESTAMP], oldest_us))
            self._keys = [self._keys_joined]
        oldest = _day(now_s - self.horizon_s)
        self.stubs = [s for s in self.stubs if dt.date.fromisoformat(s.day) >= oldest]
        if self.store is not None:
            self.store.drop_before("keys", oldest)
            self.store.drop_before("labels", oldest)
