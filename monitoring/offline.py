"""One-off evaluations over a time range (``mlgate monitor check`` and ``report``).

Reads the range's segments one by one (only the needed columns, each segment folded
into per-bucket kernel windows and dropped), joins every label received since the
range began, and scores per version: one window over the whole range (``check``),
or the configured windows plus the whole range (``report``). Nothing is written:
the running monitor's state is not touched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from contracts import predlog
from contracts.clock import Clock, wall_clock_s
from monitoring.config import MonitoringConfig
from monitoring.drift import WindowResult, evaluate
from monitoring.ingest import Contexts, read_segment
from monitoring.labels import live_metrics
from monitoring.live import LiveQuality
from monitoring.retrain import Roots
from monitoring.windows import ClosedWindow, VersionWindows, WindowSpec


@dataclass
class RangeResult:
    model: str
    since: dt.datetime
    until: dt.datetime
    spec: WindowSpec
    overall: dict[str, WindowResult] = field(default_factory=dict)  # version -> whole range
    closed: dict[str, ClosedWindow] = field(default_factory=dict)  # version -> whole-range kernel windows
    windows: list[WindowResult] = field(default_factory=list)  # the configured windows, in order
    contexts: dict = field(default_factory=dict)
    rows: int = 0
    segments: int = 0


def _us(t: dt.datetime) -> int:
    return int(t.timestamp() * 1e6)


def evaluate_range(model: str, cfg: MonitoringConfig, roots: Roots, since: dt.datetime, until: dt.datetime,
                   per_window: bool = False, clock: Clock = wall_clock_s) -> RangeResult:
    """``clock``: when the range is evaluated (each result's ``evaluated_at``)."""
    spec = WindowSpec.from_config(cfg.window) if per_window else WindowSpec.whole()
    out = RangeResult(model, since, until, spec)
    contexts = Contexts(roots.registry_root, model, cfg.drift.exclude, cfg.drift.outputs)
    contexts.refresh()
    live = LiveQuality(model, roots.log_root, None, cfg.live.horizon_s)
    keys = cfg.live.enabled and live.has_feedback(since.timestamp())
    windows: dict[str, VersionWindows] = {}
    for seg in predlog.list_segments(roots.log_root, model, since, until):
        r = read_segment(roots.log_root, seg, contexts, windows, spec, _us(since), _us(until), keys)
        live.add_keys(seg.day, seg.path, r.keys)
        out.rows += r.rows
        out.segments += 1
    now_s = clock()
    if cfg.live.enabled:
        live.ingest(None, now_s, since_s=since.timestamp())
    min_labels = cfg.live.min_labelled_rows
    for version, vw in sorted(windows.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0):
        whole = vw.merged_all()
        if whole is None:
            continue
        out.contexts[version] = vw.ctx
        out.closed[version] = whole
        result = evaluate(whole, vw.ctx, cfg.drift, cfg.window.min_rows, now_s)
        result.live = live_metrics(live.book.rows(version, sorted(vw.buckets)), vw.ctx.schema, min_labels)
        out.overall[version] = result
        if per_window:
            for w in vw.emit(final=True):
                r = evaluate(w, vw.ctx, cfg.drift, cfg.window.min_rows, now_s)
                r.live = live_metrics(live.window_rows(version, w.end_index, spec.k), vw.ctx.schema, min_labels)
                out.windows.append(r)
    return out
