"""Windows over logged rows, per model version, built from per-bucket kernel windows.

Rows fall into *buckets* of one ``slide`` each: by time, bucket ``j`` holds the rows
with ``j*slide <= ts < (j+1)*slide`` (aligned to the Unix epoch); by rows, bucket ``j``
holds rows ``j*slide .. (j+1)*slide - 1`` in log order (segment by segment, rows in
file order). A window is the ``k = size/slide`` buckets ending at ``j``: tumbling
when ``k = 1``, sliding otherwise. Each bucket keeps its own ``kernels.Window``
(sorted values and category counts, filled segment by segment with ``partial_fit``);
a window merges its buckets' kernel windows exactly (by reference, no copy), so a
row is sorted once however many sliding windows it belongs to.

A time window is ready ``grace`` after its end; a row window when its last bucket is
full. After the windows ending at ``j`` are out, buckets ``<= j - k + 1`` belong to no
future window and are *released*; rows that arrive for a released bucket are late:
counted, never scored.

With a multivariate reference, each bucket also keeps a ``kernels.ReconstructionWindow``
(sums of row reconstruction errors, no rows), and with a CBPE reference a
``kernels.CbpeWindow`` (expected confusion sums), merged the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernels import CbpeWindow, ReconstructionWindow, Window
from monitoring.config import WindowConfig
from monitoring.reference import VersionContext

US = 1_000_000


@dataclass(frozen=True)
class WindowSpec:
    by: str  # "time" (units: microseconds), "rows", or "all" (one window, offline)
    size: int
    slide: int
    grace: int = 0

    @property
    def k(self) -> int:
        return self.size // self.slide

    @classmethod
    def from_config(cls, cfg: WindowConfig) -> WindowSpec:
        if cfg.by == "rows":
            return cls("rows", cfg.size_rows, cfg.slide_rows or cfg.size_rows)
        slide = cfg.slide_s or cfg.size_s
        return cls("time", round(cfg.size_s * US), round(slide * US), round(cfg.grace_s * US))

    @classmethod
    def whole(cls) -> WindowSpec:
        return cls("all", 1, 1)

    def buckets(self, ts_us: np.ndarray, first_row: int = 0) -> np.ndarray:
        """Bucket index of each row (by rows: numbered from ``first_row`` in log order)."""
        if self.by == "time":
            return ts_us // self.slide
        if self.by == "rows":
            return (first_row + np.arange(ts_us.size, dtype=np.int64)) // self.slide
        return np.zeros(ts_us.size, dtype=np.int64)

    def describe(self) -> str:
        if self.by == "all":
            return "one window"
        unit = (lambda v: f"{v / US:g}s") if self.by == "time" else (lambda v: f"{v} rows")
        kind = "tumbling" if self.k == 1 else f"sliding every {unit(self.slide)}"
        return f"{unit(self.size)} {kind}"


@dataclass
class Bucket:
    index: int
    inputs: Window
    outputs: Window | None
    multivariate: ReconstructionWindow | None = None
    cbpe: CbpeWindow | None = None
    rows: int = 0
    ts_min: int = np.iinfo(np.int64).max
    ts_max: int = np.iinfo(np.int64).min


@dataclass
class ClosedWindow:
    """A window ready to score: merged kernel windows and where it lies."""

    model: str
    version: str
    spec: WindowSpec
    end_index: int
    start_us: int
    end_us: int
    rows: int
    inputs: Window
    outputs: Window | None
    multivariate: ReconstructionWindow | None = None
    cbpe: CbpeWindow | None = None

    @property
    def window_id(self) -> str:
        return f"{self.version}:{self.spec.by}:{self.end_index}"


@dataclass
class AddResult:
    buckets: np.ndarray  # bucket index of each row (where it belongs, late or not)
    late: np.ndarray  # rows whose buckets were already released: not windowed

    @property
    def late_rows(self) -> int:
        return int(self.late.sum())


@dataclass
class VersionWindows:
    """The open buckets of one version, and how far its windows were emitted."""

    ctx: VersionContext
    spec: WindowSpec
    emitted_through: int | None = None  # last window end index emitted
    next_row: int = 0  # by=rows: log-order number of the next row
    buckets: dict[int, Bucket] = field(default_factory=dict)

    @property
    def released_through(self) -> int | None:
        return None if self.emitted_through is None else self.emitted_through - self.spec.k + 1

    def add(self, ts_us: np.ndarray, inputs: dict, outputs: dict | None) -> AddResult:
        """Add rows (kernel columns of the profile and of the output profile) to their buckets."""
        idx = self.spec.buckets(ts_us, self.next_row)
        if self.spec.by == "rows":
            self.next_row += ts_us.size
        released = self.released_through
        late = idx <= released if released is not None else np.zeros(idx.size, dtype=bool)
        groups = np.unique(idx[~late]).tolist()
        whole = len(groups) == 1 and not late.any()
        matrix = self.ctx.multivariate_rows(inputs) if self.ctx.multivariate is not None and groups else None
        for j in groups:
            self._fill(self._bucket(j), None if whole else idx == j, ts_us, inputs, outputs, matrix)
        return AddResult(idx, late)

    def _bucket(self, j: int) -> Bucket:
        if j not in self.buckets:
            out = self.ctx.outputs_profile.new_window() if self.ctx.outputs_profile is not None else None
            mv = self.ctx.multivariate.new_window() if self.ctx.multivariate is not None else None
            cbpe = self.ctx.cbpe.new_window() if self.ctx.cbpe is not None else None
            self.buckets[j] = Bucket(j, self.ctx.profile.new_window(), out, mv, cbpe)
        return self.buckets[j]

    def _fill(self, b: Bucket, rows, ts_us, inputs, outputs, matrix=None) -> None:
        pick = (lambda cols: cols) if rows is None else (lambda cols: {k: v[rows] for k, v in cols.items()})
        ts = ts_us if rows is None else ts_us[rows]
        b.inputs.partial_fit(pick(inputs))
        if b.outputs is not None and outputs is not None:
            b.outputs.partial_fit(pick(outputs))
        if b.multivariate is not None and matrix is not None:
            b.multivariate.partial_fit(matrix if rows is None else matrix[rows])
        if b.cbpe is not None and outputs is not None and self.ctx.cbpe_column in outputs:
            scores = outputs[self.ctx.cbpe_column]
            b.cbpe.partial_fit(scores if rows is None else scores[rows])
        b.rows += int(ts.size)
        b.ts_min = min(b.ts_min, int(ts.min()))
        b.ts_max = max(b.ts_max, int(ts.max()))

    def ready_ends(self, now_us: int | None, final: bool) -> list[int]:
        """Window end indexes that may be emitted now, in order."""
        if not self.buckets:
            return []
        spec, data = self.spec, sorted(self.buckets)
        if spec.by == "time":
            last = data[-1] if final else (now_us - spec.grace) // spec.slide - 1
        elif spec.by == "rows":
            full = [j for j in data if self.buckets[j].rows >= spec.slide]
            last = data[-1] if final else (full[-1] if full else -1)
        else:
            return [0] if final else []
        first = -1 if self.emitted_through is None else self.emitted_through
        ends = {e for j in data for e in range(j, j + spec.k)}
        if spec.by == "rows" and not final:
            ends = {e for e in ends if e >= spec.k - 1}
        return sorted(e for e in ends if first < e <= last)

    def emit(self, now_us: int | None = None, final: bool = False) -> list[ClosedWindow]:
        """Windows ready now (``final``: also the partial last ones); releases old buckets."""
        out = []
        for end in self.ready_ends(now_us, final):
            parts = [self.buckets[j] for j in range(end - self.spec.k + 1, end + 1) if j in self.buckets]
            if parts:
                out.append(self._closed(end, parts))
            self.emitted_through = end
        if self.spec.by == "time" and not final and now_us is not None:
            horizon = (now_us - self.spec.grace) // self.spec.slide - 1
            self.emitted_through = max(self.emitted_through if self.emitted_through is not None else horizon, horizon)
        released = self.released_through
        if released is not None:
            for j in [j for j in self.buckets if j <= released]:
                del self.buckets[j]
        return out

    def merged_all(self) -> ClosedWindow | None:
        """Every open bucket as one window (the whole range of an offline evaluation)."""
        parts = [self.buckets[j] for j in sorted(self.buckets)]
        if not parts:
            return None
        closed = self._closed(parts[-1].index, parts)
        if self.spec.by == "time":
            closed.start_us, closed.end_us = min(b.ts_min for b in parts), max(b.ts_max for b in parts) + 1
        return closed

    def _closed(self, end: int, parts: list[Bucket]) -> ClosedWindow:
        inputs = self.ctx.profile.new_window()
        outputs = self.ctx.outputs_profile.new_window() if self.ctx.outputs_profile is not None else None
        mv = self.ctx.multivariate.new_window() if self.ctx.multivariate is not None else None
        cbpe = self.ctx.cbpe.new_window() if self.ctx.cbpe is not None else None
        for b in parts:
            inputs.merge(b.inputs)
            if outputs is not None and b.outputs is not None:
                outputs.merge(b.outputs)
            if mv is not None and b.multivariate is not None:
                mv.merge(b.multivariate)
            if cbpe is not None and b.cbpe is not None:
                cbpe.merge(b.cbpe)
        if self.spec.by == "time":
            start, stop = (end - self.spec.k + 1) * self.spec.slide, (end + 1) * self.spec.slide
        else:
            start, stop = min(b.ts_min for b in parts), max(b.ts_max for b in parts) + 1
        return ClosedWindow(self.ctx.model, self.ctx.version, self.spec, end, start, stop,
                            sum(b.rows for b in parts), inputs, outputs, mv, cbpe)
