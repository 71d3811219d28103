"""Feedback labels: the endpoint's checks, the layout, and the join into windows (late labels too)."""

from __future__ import annotations

import asyncio
import datetime as dt

import numpy as np
import orjson
import pytest

from access.identity import OPEN, Identity
from contracts import feedback as fb
from contracts.errors import InvalidInput, NotFound
from monitoring.config import MonitoringConfig
from monitoring.monitor import ModelMonitor
from monitoring.retrain import Roots
from monitoring.state import StateStore
from serving.feedback import FeedbackHandler, parse_items
from serving.http.routes import Route
from tests.clock import ManualClock
from tests.unit.monitoring import logdata as ld
from training import demo_data

SCHEMA = demo_data.demo_schema()
T0 = ld.T0.timestamp()


def test_bodies_single_rows_and_batch():
    assert parse_items(b'{"request_id": "a", "label": "churn"}', SCHEMA) == [("a", 0, "churn", None)]
    assert parse_items(b'{"request_id": "a", "row_index": 2, "label": 0}', SCHEMA) == [("a", 2, "stay", None)]
    assert parse_items(b'{"request_id": "a", "labels": ["stay", 1]}', SCHEMA) == [("a", 0, "stay", None),
                                                                                   ("a", 1, "churn", None)]
    batch = orjson.dumps({"feedback": [{"request_id": "a", "label": "stay"}, {"request_id": "b", "labels": [1]}]})
    assert parse_items(batch, SCHEMA) == [("a", 0, "stay", None), ("b", 0, "churn", None)]


@pytest.mark.parametrize(("body", "field"), [
    (b"[1]", "body"), (b"{", "body"), (b'{"label": "stay"}', "body.request_id"),
    (b'{"request_id": "a", "label": "maybe"}', "body.label"),
    (b'{"request_id": "a", "row_index": -1, "label": "stay"}', "body.row_index"),
    (b'{"feedback": [{"request_id": "a", "label": "stay"}, {"request_id": "b", "labels": ["x"]}]}',
     "feedback[1].labels[0]"),
    (b'{"feedback": []}', "feedback"),
])
def test_bad_bodies_name_the_field(body, field):
    with pytest.raises(InvalidInput, match=rf"^{field.replace('[', '.').replace(']', '.')}"):
        parse_items(body, SCHEMA)


def handler(log_root: str, flushed: list, clock: ManualClock) -> FeedbackHandler:
    return FeedbackHandler(log_root, lambda m, v: SCHEMA, flush=lambda: flushed.append(1), clock=clock)


def test_labels_for_unknown_ids_are_refused_with_the_ids(tmp_path):
    log_root = str(tmp_path)
    ld.write_log(log_root, ld.log_table(demo_data.generate(4, seed=1), "1", ld.T0_US + np.arange(4), 0,
                                        rows_per_request=2))  # requests r0 and r1, two rows each
    flushed: list = []
    h = handler(log_root, flushed, ManualClock(T0 + 60))
    with pytest.raises(NotFound) as err:
        h.accept("demo", [("r0", 1, "stay", None), ("r1", 2, "stay", None), ("nope", 0, "churn", None)], OPEN)
    assert "nope" in err.value.message and "r1[2]" in err.value.message and "r0" not in err.value.message
    assert fb.list_feedback(log_root, "demo") == []  # nothing of a refused body is stored
    assert h.accept("demo", [("r0", 1, "stay", None), ("r1", 0, "churn", None)], OPEN) == 2
    assert flushed == [1, 1]
    table = fb.read_feedback(log_root, fb.list_feedback(log_root, "demo"))
    assert table.select(["request_id", "row_index", "label"]).to_pylist() == [
        {"request_id": "r0", "row_index": 1, "label": "stay"}, {"request_id": "r1", "row_index": 0, "label": "churn"}]


def test_route_answers_with_the_count(tmp_path):
    log_root = str(tmp_path)
    ld.write_log(log_root, ld.log_table(demo_data.generate(1, seed=1), "1", ld.T0_US + np.arange(1), 7))
    status, _, body = asyncio.run(handler(log_root, [], ManualClock(T0 + 60))(Route("feedback", "demo"), {},
                                                        b'{"request_id": "r7", "label": "churn"}', OPEN))
    assert (status, orjson.loads(body)) == (200, {"model": "demo", "accepted": 1})


ALICE = Identity("key:a1", "alice", "key", frozenset({"feedback:demo"}))
BOB = Identity("key:b2", "bob", "key", frozenset({"feedback:*"}))
ADMIN = Identity("key:c3", "ops", "key", frozenset({"admin"}))


def test_a_label_is_accepted_only_from_the_identity_that_made_the_prediction_or_an_admin(tmp_path):
    log_root = str(tmp_path)
    rows = demo_data.generate(3, seed=1)
    ld.write_log(log_root, ld.log_table(rows, "1", ld.T0_US + np.arange(3), 0, identity=ALICE.id))  # r0..r2
    ld.write_log(log_root, ld.log_table(rows, "1", ld.T0_US + np.arange(3), 2, identity=BOB.id))  # r2..r4
    h = handler(log_root, [], ManualClock(T0 + 60))
    with pytest.raises(NotFound, match="for this identity") as err:
        h.accept("demo", [("r0", 0, "churn", None)], BOB)  # alice's prediction: unknown to bob
    assert "r0" in err.value.message
    assert h.accept("demo", [("r0", 0, "churn", None), ("r1", 0, "stay", None)], ALICE) == 2
    assert h.accept("demo", [("r4", 0, "churn", None)], BOB) == 1
    for who in (ALICE, BOB):  # r2 was asked by both: neither may label it alone
        with pytest.raises(NotFound, match="r2"):
            h.accept("demo", [("r2", 0, "stay", None)], who)
    assert h.accept("demo", [("r2", 0, "stay", None), ("r0", 0, "stay", None)], ADMIN) == 2
    assert h.known.rows("demo", {"r0", "r2"}) == {"r0": (1, ALICE.id), "r2": (2, "\x00mixed")}


def test_predictions_logged_before_identities_take_labels_from_an_admin_only(tmp_path):
    log_root = str(tmp_path)
    table = ld.log_table(demo_data.generate(1, seed=1), "1", ld.T0_US + np.arange(1), 9)
    ld.write_log(log_root, table.drop_columns(["identity"]))  # a segment of an older writer
    h = handler(log_root, [], ManualClock(T0 + 60))
    with pytest.raises(NotFound, match="r9"):
        h.accept("demo", [("r9", 0, "stay", None)], ALICE)
    assert h.accept("demo", [("r9", 0, "stay", None)], ADMIN) == 1


def test_known_ids_are_kept_for_max_age_days_of_the_given_clock(tmp_path):
    """The horizon is counted from the clock the handler is given, never from the machine's date."""
    log_root = str(tmp_path)
    ld.write_log(log_root, ld.log_table(demo_data.generate(1, seed=1), "1", ld.T0_US + np.arange(1), 3))
    clock = ManualClock(T0 + 7 * 86400)  # the partition of T0's day is 7 days old: still in the horizon
    h = handler(log_root, [], clock)
    assert h.known.rows("demo", {"r3"}) == {"r3": (1, None)}
    clock.advance(86400)  # 8 days: forgotten
    assert h.known.rows("demo", {"r3"}) == {"r3": (0, None)}
    with pytest.raises(NotFound, match="r3"):
        h.accept("demo", [("r3", 0, "stay", None)], OPEN)


def test_labels_land_in_the_partition_of_the_day_the_clock_says_they_were_received(tmp_path):
    log_root = str(tmp_path)
    ld.write_log(log_root, ld.log_table(demo_data.generate(1, seed=1), "1", ld.T0_US + np.arange(1), 5))
    clock = ManualClock(T0 + 86400)  # received the day after the prediction
    assert handler(log_root, [], clock).accept("demo", [("r5", 0, "churn", None)], OPEN) == 1
    (segment,) = fb.list_feedback(log_root, "demo")
    assert segment.day == (ld.T0 + dt.timedelta(days=1)).date() and f"date={segment.day}" in segment.path
    received = fb.read_feedback(log_root, [segment])["ts"].to_pylist()
    assert received == [clock.utc()]


def label(log_root: str, pairs: list[tuple[str, str]], clock: ManualClock) -> None:
    """Labels for row 0 of each request, received at ``clock``'s time."""
    fb.FeedbackWriter(log_root).write("demo", fb.table([p[0] for p in pairs], [0] * len(pairs),
                                                       [p[1] for p in pairs], [None] * len(pairs), clock.utc()))


def test_late_labels_count_in_the_window_of_their_prediction(tmp_path, registry_root):
    logs = str(tmp_path / "logs")
    cols = demo_data.generate(600, seed=5)
    predicted = np.array(demo_data.CLASS_LABELS, dtype=object)[ld.toy_model(cols).argmax(1)]
    ld.write_log(logs, ld.log_table({k: v[:300] for k, v in cols.items()}, "1", ld.T0_US + np.arange(300)))
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=86400,
                           window={"by": "rows", "size_rows": 300}, live={"min_labelled_rows": 50})
    clock = ManualClock(T0)
    m = ModelMonitor("demo", cfg, Roots(registry_root, logs, "", ""), clock=clock)
    clock.to(T0 + 10)
    first = m.tick()
    assert [w.live for w in first.windows] == [{"labelled_rows": 0}]
    # 100 labels for window 0: 80 agree with the prediction; then window 1's rows arrive
    truth = [(f"r{i}", predicted[i] if i < 80 else _other(predicted[i])) for i in range(100)]
    label(logs, truth, clock)
    ld.write_log(logs, ld.log_table({k: v[300:] for k, v in cols.items()}, "1", ld.T0_US + 300 + np.arange(300),
                                    first_id=300))
    clock.to(T0 + 20)
    second = m.tick()
    assert [w.window_id for w in second.windows] == ["1:rows:1"]
    assert second.windows[0].live == {"labelled_rows": 0}  # labels of window 0 did not leak into window 1
    live = StateStore(cfg.state_root, "demo").read("live")
    assert [(r["window_id"], r["labelled_rows"], r["accuracy"]) for r in live] == [("1:rows:0", 100, 0.8)]
    # a second label for a row replaces the first; an orphan joins once its prediction is read
    label(logs, [("r0", _other(predicted[0])), ("r950", "stay")], clock)
    clock.to(T0 + 30)
    m.tick()
    assert StateStore(cfg.state_root, "demo").read("live")[-1]["accuracy"] == pytest.approx(0.79)
    assert m.live.orphans.num_rows == 1
    ld.write_log(logs, ld.log_table(demo_data.generate(1, seed=9), "1", ld.T0_US + np.array([700]), first_id=950))
    clock.to(T0 + 40)
    m.tick()
    assert m.live.orphans.num_rows == 0
    restarted = ModelMonitor("demo", cfg, Roots(registry_root, logs, "", ""), clock=clock.to(T0 + 50))
    rows = restarted.live.window_rows("1", 0, 1)
    assert rows.num_rows == 100  # labels survive a restart


def _other(label: str) -> str:
    return "stay" if label == "churn" else "churn"


def test_without_live_quality_no_ids_are_read_or_kept(tmp_path, registry_root):
    logs = str(tmp_path / "logs")
    clock = ManualClock(T0)
    ld.traffic(logs, "1", 300, ld.T0_US, 1000, seed=3)
    label(logs, [("r1", "stay")], clock)
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=86400, live={"enabled": False},
                           window={"by": "rows", "size_rows": 300})
    m = ModelMonitor("demo", cfg, Roots(registry_root, logs, "", ""), clock=clock)
    clock.to(T0 + 10)
    out = m.tick()
    assert [w.rows for w in out.windows] == [300] and out.labels == 0
    assert not m.live.stubs and not (tmp_path / "state" / "model=demo" / "keys").exists()


@pytest.mark.parametrize("window", [{"by": "rows", "size_rows": 300}, {"by": "time", "size_s": 60, "grace_s": 0}])
def test_labels_join_predictions_read_before_the_model_had_feedback(tmp_path, registry_root, window):
    """Without feedback no ids are kept; when the first labels come (after a restart here),
    the predictions read before get their keys and the labels count in their window."""
    logs = str(tmp_path / "logs")
    cols = demo_data.generate(300, seed=5)
    predicted = np.array(demo_data.CLASS_LABELS, dtype=object)[ld.toy_model(cols).argmax(1)]
    ld.write_log(logs, ld.log_table(cols, "1", ld.T0_US + np.arange(300) * 1000))
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=86400, window=window,
                           live={"min_labelled_rows": 50})
    clock = ManualClock(T0)
    first_monitor = ModelMonitor("demo", cfg, Roots(registry_root, logs, "", ""), clock=clock)
    clock.to(T0 + 100)
    first = first_monitor.tick()
    assert [(w.window_id, w.live) for w in first.windows] == [("1:rows:0" if window["by"] == "rows" else
                                                              f"1:time:{int(T0) // 60}", {"labelled_rows": 0})]
    assert not (tmp_path / "state" / "model=demo" / "keys").exists()
    label(logs, [(f"r{i}", predicted[i] if i < 80 else _other(predicted[i])) for i in range(100)], clock)
    restarted = ModelMonitor("demo", cfg, Roots(registry_root, logs, "", ""), clock=clock.to(T0 + 200))
    assert restarted.tick().labels == 100
    live = StateStore(cfg.state_root, "demo").read("live")
    assert [(r["window_id"], r["labelled_rows"], r["accuracy"]) for r in live] == [
        (first.windows[0].window_id, 100, 0.8)]
    assert not restarted.live.stubs and (tmp_path / "state" / "model=demo" / "keys").exists()
