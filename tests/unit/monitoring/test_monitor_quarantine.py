"""Unreadable files on disk never stop the monitor or the feedback route: a truncated
segment or feedback file is moved to ``_quarantine/``, logged and counted; a torn state
file gives way to the previous good one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from access.identity import OPEN
from contracts import feedback as fb
from contracts import predlog
from contracts.errors import NotFound
from contracts.prometheus import MetricsHub, MetricsRecorder
from monitoring import gauges
from monitoring.config import MonitoringConfig
from monitoring.monitor import ModelMonitor
from monitoring.retrain import Roots
from monitoring.state import PREVIOUS_STATE_FILE, STATE_FILE, StateStore
from serving.feedback import FeedbackHandler
from tests.clock import ManualClock
from tests.unit.monitoring import logdata as ld
from training import demo_data

T0 = ld.T0.timestamp()


def truncate(path: str, keep_bytes: int = 100) -> None:
    """What a crash or a full disk leaves: the start of the file only."""
    with open(path, "r+b") as f:
        f.truncate(keep_bytes)


def quarantined_text(rec: MetricsRecorder) -> str:
    hub = MetricsHub()
    hub.push("t", rec.drain())
    return hub.render()


def monitor(tmp_path, registry_root, clock, **live) -> ModelMonitor:
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=86400,
                           window={"by": "rows", "size_rows": 300}, live={"min_labelled_rows": 10, **live})
    return ModelMonitor("demo", cfg, Roots(registry_root, str(tmp_path / "logs"), "", ""),
                        recorder=gauges.recorder(), clock=clock)


def test_a_truncated_segment_is_quarantined_and_the_others_are_scored(tmp_path, registry_root):
    logs = str(tmp_path / "logs")
    good_before, bad, good_after = ld.traffic(logs, "1", 900, ld.T0_US, 1000, seed=1, segments=3)
    truncate(bad.path)
    clock = ManualClock(T0 + 60)
    m = monitor(tmp_path, registry_root, clock)
    out = m.tick()
    assert (out.segments, [w.rows for w in out.windows]) == (2, [300, 300])
    moved = Path(logs) / predlog.QUARANTINE_DIR / Path(bad.path).relative_to(logs)
    assert moved.exists() and not os.path.exists(bad.path)
    assert [s.path for s in predlog.list_segments(logs, "demo")] == [good_before.path, good_after.path]
    text = quarantined_text(m.rec)
    assert f'{predlog.QUARANTINED_METRIC}{{model="demo",kind="segment"}} 1' in text
    clock.advance(60)
    assert m.tick().segments == 0  # and the next tick goes on as usual


def test_a_truncated_feedback_file_is_quarantined_and_other_labels_join(tmp_path, registry_root):
    logs = str(tmp_path / "logs")
    ld.traffic(logs, "1", 300, ld.T0_US, 1000, seed=1)
    clock = ManualClock(T0 + 60)
    writer = fb.FeedbackWriter(logs)
    good = writer.write("demo", fb.table([f"r{i}" for i in range(20)], [0] * 20, ["stay"] * 20, [None] * 20,
                                         clock.utc()))
    bad = writer.write("demo", fb.table([f"r{i}" for i in range(20, 40)], [0] * 20, ["stay"] * 20, [None] * 20,
                                        clock.utc()))
    truncate(bad)
    m = monitor(tmp_path, registry_root, clock)
    out = m.tick()
    assert out.labels == 20 and [w.live["labelled_rows"] for w in out.windows] == [20]
    assert os.path.exists(good) and not os.path.exists(bad)
    assert (Path(logs) / predlog.QUARANTINE_DIR / Path(bad).relative_to(logs)).exists()
    assert f'{predlog.QUARANTINED_METRIC}{{model="demo",kind="feedback"}} 1' in quarantined_text(m.rec)


def test_a_torn_state_file_gives_way_to_the_previous_good_one(tmp_path, registry_root):
    logs = str(tmp_path / "logs")
    ld.traffic(logs, "1", 300, ld.T0_US, 1000, seed=1)
    clock = ManualClock(T0 + 60)
    first = monitor(tmp_path, registry_root, clock)
    assert [w.window_id for w in first.tick().windows] == ["1:rows:0"]
    clock.advance(60)
    first.tick()  # a second save: the first state is now the previous one
    store = StateStore(str(tmp_path / "state"), "demo")
    assert (store.path / PREVIOUS_STATE_FILE).exists()
    (store.path / STATE_FILE).write_text('{"format": 1, "cursor": {"pend')  # torn
    restarted = monitor(tmp_path, registry_root, clock)
    assert restarted.cursor.committed  # resumed from the previous state, not from scratch
    clock.advance(60)
    assert restarted.tick().windows == []  # the scored window is not scored again
    assert len(restarted.store.quarantined) == 1 and Path(restarted.store.quarantined[0]).exists()
    assert f'{predlog.QUARANTINED_METRIC}{{model="demo",kind="state"}} 1' in quarantined_text(restarted.rec)
    assert json.loads((store.path / STATE_FILE).read_text())["model"] == "demo"  # saved whole again


def test_no_readable_state_starts_fresh(tmp_path):
    store = StateStore(str(tmp_path), "demo")
    store.path.mkdir(parents=True)
    (store.path / STATE_FILE).write_bytes(b"\xff\xfe not utf-8")
    (store.path / PREVIOUS_STATE_FILE).write_text("[1, 2]")  # JSON, but not a state
    assert store.load() is None and len(store.quarantined) == 2


def test_the_feedback_index_quarantines_an_unreadable_segment(tmp_path):
    log_root = str(tmp_path)
    cols = demo_data.generate(2, seed=1)
    good = ld.write_log(log_root, ld.log_table({k: v[:1] for k, v in cols.items()}, "1", ld.T0_US + np.arange(1), 0))
    bad = ld.write_log(log_root, ld.log_table({k: v[1:] for k, v in cols.items()}, "1", ld.T0_US + np.arange(1), 1))
    truncate(bad.path)
    rec = MetricsRecorder()
    handler = FeedbackHandler(log_root, lambda m, v: demo_data.demo_schema(), clock=ManualClock(T0 + 60),
                              recorder=rec)
    assert handler.accept("demo", [("r0", 0, "stay", None)], OPEN) == 1
    with pytest.raises(NotFound, match="r1"):  # its prediction is lost with the file
        handler.accept("demo", [("r1", 0, "stay", None)], OPEN)
    assert os.path.exists(good.path) and not os.path.exists(bad.path)
    assert f'{predlog.QUARANTINED_METRIC}{{model="demo",kind="segment"}} 1' in quarantined_text(rec)
