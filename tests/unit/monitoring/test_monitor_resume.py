"""Incremental reading: a counted segment is never read again; a restart resumes exactly."""

from __future__ import annotations

import json

import pytest

from monitoring.config import MonitoringConfig
from monitoring.monitor import ModelMonitor
from monitoring.retrain import Roots
from monitoring.state import StateStore
from tests.clock import ManualClock
from tests.unit.monitoring import logdata as ld

T0 = ld.T0.timestamp()


def monitor(tmp_path, registry_root, state: str, clock: ManualClock, **window) -> ModelMonitor:
    cfg = MonitoringConfig(state_root=str(tmp_path / state), backfill_s=86400, window=window)
    roots = Roots(registry_root, str(tmp_path / "logs"), str(tmp_path / "data"), str(tmp_path / "runs"))
    return ModelMonitor(ld.MODEL, cfg, roots, clock=clock)


def comparable(store: StateStore) -> list[tuple]:
    return [(w["window_id"], w["rows"], w["dataset_drift"], [(f["feature"], f["value"]) for f in w["features"]])
            for w in store.read("windows")]


def test_counted_segments_are_never_read_again(tmp_path, registry_root):
    clock = ManualClock(T0)
    segments = ld.traffic(str(tmp_path / "logs"), "1", 900, ld.T0_US, 1_000_000, seed=1, segments=3)
    m = monitor(tmp_path, registry_root, "s", clock, by="rows", size_rows=300)
    clock.to(T0 + 1000)
    first = m.tick()
    assert (first.segments, first.rows, [w.rows for w in first.windows]) == (3, 900, [300, 300, 300])
    for seg in segments:  # any read of a counted segment would now fail
        with open(seg.path, "wb") as f:
            f.write(b"not parquet")
    clock.to(T0 + 1001)
    assert m.tick().segments == 0
    again = monitor(tmp_path, registry_root, "s", clock, by="rows", size_rows=300)
    clock.to(T0 + 1002)
    out = again.tick()
    assert (out.segments, out.windows) == (0, [])
    state = json.loads((tmp_path / "s" / "model=demo" / "state.json").read_text())
    assert state["cursor"]["pending"] == [] and len(again.cursor.committed["2026-11-20"]) == 3


@pytest.mark.parametrize("window", [{"by": "time", "size_s": 600, "grace_s": 0},
                                    {"by": "time", "size_s": 600, "slide_s": 300, "grace_s": 0},
                                    {"by": "rows", "size_rows": 500, "slide_rows": 250}])
def test_restart_gives_the_windows_of_an_uninterrupted_run(tmp_path, registry_root, window):
    clock = ManualClock(T0)
    logs = str(tmp_path / "logs")
    ld.traffic(logs, "1", 700, ld.T0_US, 1_000_000, seed=2, segments=4)  # 12:00:00 .. 12:11:40
    steady = monitor(tmp_path, registry_root, "steady", clock, **window)
    crashed = monitor(tmp_path, registry_root, "crashed", clock, **window)
    clock.to(T0 + 700)
    steady.tick()
    first = crashed.tick()
    assert first.segments == 4 and crashed.cursor.pending  # open windows hold their segments
    del crashed  # no shutdown: everything needed is on disk
    ld.traffic(logs, "1", 900, ld.T0_US + 700_000_000, 1_000_000, seed=3, shift=1.0, segments=3, first_id=700)
    clock.to(T0 + 1700)
    steady.tick()
    resumed = monitor(tmp_path, registry_root, "crashed", clock, **window)
    out = resumed.tick()
    assert out.segments == 3  # only the new ones count as read; pending ones were replayed
    a, b = comparable(StateStore(str(tmp_path / "steady"), ld.MODEL)), comparable(
        StateStore(str(tmp_path / "crashed"), ld.MODEL))
    assert a == b and len(a) >= 2
    assert any(w[2] for w in a)  # the shifted rows drift


def test_old_partitions_are_pruned_from_the_cursor(tmp_path, registry_root):
    clock = ManualClock(T0)
    ld.traffic(str(tmp_path / "logs"), "1", 100, ld.T0_US, 1_000_000, seed=4)
    m = monitor(tmp_path, registry_root, "s", clock, by="rows", size_rows=100)
    clock.to(T0 + 200)
    m.tick()
    assert "2026-11-20" in m.cursor.committed
    clock.to(T0 + 5 * 86400)
    m.tick()
    assert m.cursor.committed == {}


def test_committed_names_are_stored_as_runs():
    from monitoring.cursor import pack, unpack

    names = {f"host-1-{i:08d}.parquet" for i in [*range(1, 5000), *range(5002, 5010)]} | {"odd.parquet"}
    packed = pack(names)
    assert packed == {"runs": {"host-1": [[1, 4999], [5002, 5009]]}, "names": ["odd.parquet"]}
    assert unpack(packed) == names
