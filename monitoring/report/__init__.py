"""``mlgate monitor report``: a self-contained HTML drift report over a time range."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from contracts.clock import Clock, iso_s, wall_clock_s
from monitoring.config import MonitoringConfig
from monitoring.offline import evaluate_range
from monitoring.retrain import Roots
from monitoring.state import StateStore


def _in_range(records: list[dict], since: dt.datetime, until: dt.datetime) -> list[dict]:
    lo, hi = since.isoformat(timespec="seconds"), until.isoformat(timespec="seconds")
    return [r for r in records if lo <= r.get("at", "") < hi]


def build_report(model: str, cfg: MonitoringConfig, roots: Roots, since: dt.datetime, until: dt.datetime,
                 clock: Clock = wall_clock_s) -> str:
    """Evaluate the range with the configured windows and render the page (generated at ``clock``'s time)."""
    from monitoring.report.html import render

    now_s = clock()
    result = evaluate_range(model, cfg, roots, since, until, per_window=True, clock=lambda: now_s)
    store = StateStore(cfg.state_root, model)
    d = cfg.drift
    settings = (f"alpha {d.alpha}, {d.correction} correction, dataset drift at {d.drift_share:.0%} of features, "
                f"tests up to effective n {d.large_sample_rows}")
    return render(result, d.drift_share, _in_range(store.read("alerts"), since, until),
                  _in_range(store.read("triggers"), since, until), settings, generated_at=iso_s(now_s))


def write_report(path: str, html: str) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out
