"""Reading prediction-log segments into windows: only the columns the versions need.

Rows that count: status 200 (answered predictions), ``ts`` at or after the monitor's
start, a version with a reference profile. Each segment yields its pending
:class:`~monitoring.cursor.Mark` and, for live quality, the join keys of its rows
(``keys=True``). A segment read without them leaves a :class:`KeyStub`, from which
:func:`read_keys` gives the same keys later (once the model gets feedback).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contracts import predlog
from contracts.errors import NotFound
from contracts.predlog import Segment
from monitoring import labels
from monitoring.cursor import Mark
from monitoring.reference import VersionContext, load_context
from monitoring.windows import VersionWindows, WindowSpec
from registry.store import Registry

FIXED = [predlog.TIMESTAMP, predlog.VERSION, predlog.STATUS]
KEYS = [predlog.REQUEST_ID, predlog.ROW_INDEX]  # only when feedback labels are joined


class Contexts:
    """Version contexts of one model, loaded once per version from the registry."""

    def __init__(self, registry_root: str, model: str, exclude: tuple[str, ...] = (), outputs: bool = True):
        self.registry = Registry(registry_root)
        self.model = model
        self.exclude = exclude
        self.outputs = outputs
        self.loaded: dict[str, VersionContext | None] = {}

    def refresh(self) -> None:
        """Load versions registered since the last call."""
        for v in self.registry.list_versions(self.model):
            if str(v) not in self.loaded:
                self.loaded[str(v)] = load_context(self.registry.get(self.model, v), self.exclude, self.outputs)

    def get(self, version: str) -> VersionContext | None:
        if version not in self.loaded:
            try:
                mv = self.registry.get(self.model, int(version))
            except (NotFound, ValueError):
                self.loaded[version] = None
                return None
            self.loaded[version] = load_context(mv, self.exclude, self.outputs)
        return self.loaded[version]

    def columns(self, keys: bool = False, inputs: bool = True) -> list[str]:
        """``keys``: also request ids and row indexes (to join feedback labels)."""
        cols = FIXED + KEYS if keys else list(FIXED)
        for ctx in self.loaded.values():
            logged = [] if ctx is None else ctx.log_columns if inputs else ctx.output_log_columns
            cols += [c for c in logged if c not in cols]
        return cols

    def dictionary_columns(self) -> list[str]:
        """String columns to read dictionary-encoded (versions, categoricals, outputs)."""
        cols = [predlog.VERSION]
        for ctx in self.loaded.values():
            cols += [c for c in ctx.dictionary_columns if c not in cols] if ctx is not None else []
        return cols


@dataclass
class SegmentRead:
    mark: Mark
    rows: int = 0  # rows windowed
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    keys: list[pa.Table] = field(default_factory=list)


def ts_us(col) -> np.ndarray:
    return np.asarray(pc.cast(col, pa.int64()).to_numpy(), dtype=np.int64)


def _utc(us: int | None):
    return None if us is None else dt.datetime.fromtimestamp(us / 1e6, dt.UTC)


@dataclass
class KeyStub:
    """A segment read without its join keys: what reading them later takes."""

    path: str
    day: str
    first_row: dict[str, int]  # the versions windowed -> by-rows number of their first row
    spec: list  # the WindowSpec fields it was read with (buckets depend on them)

    @classmethod
    def of(cls, mark: Mark, spec: WindowSpec) -> KeyStub:
        return cls(mark.path, mark.day, dict(mark.first_row), list(spec.__dict__.values()))


def read_segment(log_root: str, seg: Segment, contexts: Contexts, windows: dict[str, VersionWindows],
                 spec: WindowSpec, start_us: int | None, until_us: int | None = None,
                 keys: bool = False) -> SegmentRead:
    """Read one segment (rows with start <= ts < until) into the version windows; ``keys``:
    also the join keys of its rows."""
    table = predlog.read_segments(log_root, [seg], contexts.columns(keys), _utc(start_us), _utc(until_us),
                                  contexts.dictionary_columns())
    out = SegmentRead(Mark(seg.path, seg.day.isoformat(), seg.size_bytes))
    for ctx, rows in _version_rows(table, contexts, out.skipped):
        vw = windows.get(ctx.version)
        if vw is None:
            vw = windows[ctx.version] = VersionWindows(ctx, spec)
        _add(out, vw, ctx, rows, keys)
    return out


def read_keys(log_root: str, stub: KeyStub, contexts: Contexts, start_us: int | None) -> list[pa.Table]:
    """The join keys :func:`read_segment` would have given for the segment of ``stub``."""
    seg = Segment(stub.path, 0, dt.date.fromisoformat(stub.day))
    table = predlog.read_segments(log_root, [seg], contexts.columns(keys=True, inputs=False), _utc(start_us),
                                  None, contexts.dictionary_columns())
    spec, out = WindowSpec(*stub.spec), []
    for ctx, rows in _version_rows(table, contexts, {}):
        if ctx.version in stub.first_row:
            ts = ts_us(rows[predlog.TIMESTAMP])
            keys = _keys(ctx, rows, ts, spec.buckets(ts, stub.first_row[ctx.version]), ctx.model_outputs(rows))
            out += [keys] if keys is not None else []
    return out


def _version_rows(table: pa.Table, contexts: Contexts, skipped: dict[str, int]):
    """(context, rows) of each version with a reference profile among the answered rows."""
    if table.num_rows == 0:
        return
    answered = pc.equal(table[predlog.STATUS], 200)
    ok = table if pc.all(answered).as_py() else table.filter(answered)
    if ok.num_rows < table.num_rows:
        skipped["not_answered"] = table.num_rows - ok.num_rows
    versions = pc.unique(ok[predlog.VERSION]).to_pylist()
    for version in versions:
        rows = ok if len(versions) == 1 else ok.filter(pc.equal(ok[predlog.VERSION], version))
        ctx = contexts.get(version) if version is not None else None
        if ctx is None:
            skipped["no_reference_profile"] = skipped.get("no_reference_profile", 0) + rows.num_rows
        else:
            yield ctx, rows


def _add(out: SegmentRead, vw: VersionWindows, ctx: VersionContext, rows: pa.Table, keys: bool) -> None:
    out.mark.first_row[ctx.version] = vw.next_row
    ts = ts_us(rows[predlog.TIMESTAMP])
    model_out = ctx.model_outputs(rows)
    outputs = ctx.output_columns(model_out, rows.num_rows) if ctx.outputs_profile is not None else None
    added = vw.add(ts, ctx.input_columns(rows), outputs)
    out.mark.max_bucket[ctx.version] = int(added.buckets.max())
    out.rows += rows.num_rows - added.late_rows
    if added.late_rows:
        out.skipped["late"] = out.skipped.get("late", 0) + added.late_rows
    table = _keys(ctx, rows, ts, added.buckets, model_out) if keys else None
    out.keys += [table] if table is not None else []


def _keys(ctx: VersionContext, rows: pa.Table, ts: np.ndarray, buckets: np.ndarray, model_out: dict) -> pa.Table | None:
    pred = ctx.prediction(model_out)
    if pred is None:
        return None
    return labels.keys_table(rows[predlog.REQUEST_ID], rows[predlog.ROW_INDEX], ts, ctx.version, buckets, pred)
