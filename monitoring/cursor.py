"""Which log segments the monitor has counted: the cursor that makes reading incremental.

A prediction segment is *pending* from the moment it is read until every window its
rows belong to has been scored (its buckets are released); then it is *committed*
and never read again. After a restart only pending segments are read again, in the
order they were first read, which rebuilds the open windows exactly (rows of
buckets released in the meantime are skipped; by-rows numbering restarts from the
first pending row). Committed names are kept per date partition for
``cursor_retention_days``; older partitions are not listed any more. Feedback
segments are committed as soon as their labels are stored.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field

from contracts.predlog import Segment


def seg_key(seg: Segment) -> tuple[str, str]:
    return seg.day.isoformat(), seg.path.rsplit("/", 1)[-1]


@dataclass
class Mark:
    """A pending segment: where its rows started (by-rows numbering) and their last bucket."""

    path: str
    day: str
    size_bytes: int = 0
    first_row: dict[str, int] = field(default_factory=dict)
    max_bucket: dict[str, int] = field(default_factory=dict)

    @property
    def segment(self) -> Segment:
        return Segment(self.path, self.size_bytes, dt.date.fromisoformat(self.day))


@dataclass
class Cursor:
    committed: dict[str, set[str]] = field(default_factory=dict)  # day -> segment file names
    pending: list[Mark] = field(default_factory=list)
    feedback: dict[str, set[str]] = field(default_factory=dict)

    def known(self, seg: Segment) -> bool:
        day, name = seg_key(seg)
        return name in self.committed.get(day, ()) or any(m.path == seg.path for m in self.pending)

    def new(self, segments: list[Segment]) -> list[Segment]:
        pending = {m.path for m in self.pending}
        return [s for s in segments
                if s.path not in pending and seg_key(s)[1] not in self.committed.get(seg_key(s)[0], ())]

    def hold(self, mark: Mark) -> None:
        """Mark a segment pending (in place when it already is: the order is kept)."""
        for i, m in enumerate(self.pending):
            if m.path == mark.path:
                self.pending[i] = mark
                return
        self.pending.append(mark)

    def commit_released(self, released: dict[str, int | None]) -> int:
        """Commit pending segments whose buckets are all released; returns how many."""
        keep, done = [], 0
        for m in self.pending:
            if all(released.get(v) is not None and b <= released[v] for v, b in m.max_bucket.items()):
                self.commit(m.segment)
                done += 1
            else:
                keep.append(m)
        self.pending = keep
        return done

    def commit(self, seg: Segment) -> None:
        """Commit a segment at once (it held no rows to window)."""
        day, name = seg_key(seg)
        self.committed.setdefault(day, set()).add(name)


    def restart_row(self, version: str) -> int | None:
        """By-rows numbering to resume from: the first row of the first pending segment."""
        rows = [m.first_row[version] for m in self.pending if version in m.first_row]
        return min(rows) if rows else None

    def feedback_new(self, segments: list[Segment]) -> list[Segment]:
        return [s for s in segments if seg_key(s)[1] not in self.feedback.get(seg_key(s)[0], ())]

    def feedback_commit(self, seg: Segment) -> None:
        day, name = seg_key(seg)
        self.feedback.setdefault(day, set()).add(name)

    def prune(self, oldest: dt.date) -> None:
        """Forget committed names of partitions older than ``oldest`` (never listed again)."""
        for book in (self.committed, self.feedback):
            for day in [d for d in book if dt.date.fromisoformat(d) < oldest]:
                del book[day]

    def to_dict(self) -> dict:
        return {"committed": {d: pack(n) for d, n in self.committed.items()},
                "pending": [asdict(m) for m in self.pending],
                "feedback": {d: pack(n) for d, n in self.feedback.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> Cursor:
        return cls({d: unpack(n) for d, n in data.get("committed", {}).items()},
                   [Mark(**m) for m in data.get("pending", [])],
                   {d: unpack(n) for d, n in data.get("feedback", {}).items()})


_NAME = re.compile(r"^(.+)-(\d{8})\.parquet$")


def pack(names: set[str]) -> dict:
    """Segment names as runs of sequence numbers per writer (a writer's names are consecutive),
    so a day of small segments costs a few bytes in ``state.json``, not one string each."""
    runs: dict[str, list[list[int]]] = {}
    parsed, other = [], []
    for name in names:
        m = _NAME.match(name)
        if m:
            parsed.append((m.group(1), int(m.group(2))))
        else:
            other.append(name)
    for writer, seq in sorted(parsed):
        spans = runs.setdefault(writer, [])
        if spans and spans[-1][1] == seq - 1:
            spans[-1][1] = seq
        else:
            spans.append([seq, seq])
    return {"runs": runs, "names": sorted(other)}


def unpack(data: dict) -> set[str]:
    out = set(data.get("names", ()))
    for writer, spans in data.get("runs", {}).items():
        out.update(f"{writer}-{seq:08d}.parquet" for lo, hi in spans for seq in range(lo, hi + 1))
    return out
