"""Only served versions stay labels in the hub (issue 15): a model version no live source
serves any more loses its accumulated series; a source silent for its time to live is
forgotten; a lone replica restarting keeps its versions' counters."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from contracts.prometheus import MetricsHub, MetricsRecorder
from tests.clock import ManualClock


def _versions(hub: MetricsHub, name: str = "mlgate_requests_total") -> dict[tuple[str, str], float]:
    return {(s.labels["model"], s.labels["version"]): s.value
            for fam in text_string_to_metric_families(hub.render()) for s in fam.samples if s.name == name}


def _replica(served: list[tuple[str, str]], ttl_s: float = 30.0) -> MetricsRecorder:
    rec = MetricsRecorder()
    rec.set_served(served, ttl_s=ttl_s)
    return rec


def _answer(rec: MetricsRecorder, model: str, version: str, n: int = 1) -> None:
    rec.inc("mlgate_requests_total", (model, version, "v2", "200"), n)
    rec.observe("mlgate_request_duration_seconds", (model, version, "v2", "200"), 0.01)


def test_a_version_no_replica_serves_any_more_is_pruned_and_one_another_serves_stays():
    clock = ManualClock(0.0)
    hub = MetricsHub(clock_s=clock)
    a, b = _replica([("demo", "1"), ("demo", "2")]), _replica([("demo", "1")])
    for rec in (a, b):
        _answer(rec, "demo", "1", 3)
    _answer(a, "demo", "2", 4)
    _answer(a, "demo", "_unknown")  # made-up versions are one label, never a served version's
    a.inc("mlgate_requests_total", ("_unknown", "", "v2", "404"))
    hub.push("a", a.drain())
    hub.push("b", b.drain())
    assert _versions(hub) == {("demo", "1"): 6, ("demo", "2"): 4, ("demo", "_unknown"): 1, ("_unknown", ""): 1}

    a.set_served([("demo", "3")], ttl_s=30.0)  # replica a now serves version 3 only
    hub.push("a", a.drain())
    assert _versions(hub) == {("demo", "1"): 6, ("demo", "_unknown"): 1, ("_unknown", ""): 1}
    assert ("demo", "2") not in _versions(hub, "mlgate_request_duration_seconds_count")

    hub.forget("b")  # b goes away: nobody serves 1 any more
    assert _versions(hub) == {("demo", "_unknown"): 1, ("_unknown", ""): 1}


def test_a_silent_source_is_forgotten_after_its_time_to_live():
    clock = ManualClock(0.0)
    hub = MetricsHub(clock_s=clock)
    old, new = _replica([("demo", "1")], ttl_s=30.0), _replica([("demo", "2")], ttl_s=30.0)
    _answer(old, "demo", "1", 2)
    old.set_gauge("mlgate_inflight_requests", ("demo", "v2"), 5)
    hub.push("old", old.drain())  # then it is SIGKILLed: no goodbye
    clock.advance(10)
    _answer(new, "demo", "2")
    hub.push("new", new.drain())
    assert _versions(hub) == {("demo", "1"): 2, ("demo", "2"): 1}
    inflight = [s.value for fam in text_string_to_metric_families(hub.render()) for s in fam.samples
                if s.name == "mlgate_inflight_requests"]
    assert inflight == [5]
    clock.advance(25)  # 35 s after old's last push
    hub.push("new", new.drain())
    assert _versions(hub) == {("demo", "2"): 1}
    inflight = [s.value for fam in text_string_to_metric_families(hub.render()) for s in fam.samples
                if s.name == "mlgate_inflight_requests"]
    assert inflight == []


def test_a_lone_replica_restarting_keeps_its_versions_counters():
    clock = ManualClock(0.0)
    hub = MetricsHub(clock_s=clock)
    first = _replica([("demo", "1")])
    _answer(first, "demo", "1", 7)
    hub.push("first", first.drain())
    hub.forget("first")  # a graceful stop: nobody serves anything for a moment
    assert _versions(hub) == {("demo", "1"): 7}
    second = _replica([("demo", "1")])
    _answer(second, "demo", "1", 1)
    hub.push("second", second.drain())
    assert _versions(hub) == {("demo", "1"): 8}  # the counter went on, no reset


def test_series_of_other_processes_are_not_serving_series_and_stay():
    from monitoring.gauges import MONITOR_METRICS

    hub = MetricsHub()
    monitor = MetricsRecorder({**MONITOR_METRICS})  # the drift monitor: by the versions in the log
    monitor.inc("mlgate_drift_windows_total", ("demo", "9", "drift"))
    replica = _replica([("demo", "1")])
    _answer(replica, "demo", "1")
    hub.push("monitor", monitor.drain())
    hub.push("replica", replica.drain())
    assert ("demo", "1") in _versions(hub)
    assert ("demo", "9") in _versions(hub, "mlgate_drift_windows_total")
