"""The metrics recorder and hub: deltas add up across sources; text format is valid."""

from __future__ import annotations

import threading

from prometheus_client.parser import text_string_to_metric_families

from contracts.prometheus import MetricsHub, MetricsRecorder

LABELS = ("demo", "1", "v2", "200")


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _sample(text: str, name: str, **labels) -> float:
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise KeyError(name)


def test_counters_from_many_sources_add_up():
    hub = MetricsHub()
    recorders = [MetricsRecorder() for _ in range(3)]
    for i, rec in enumerate(recorders):
        for _ in range(10 * (i + 1)):
            rec.inc("mlgate_requests_total", LABELS)
        hub.push(f"replica-{i}", rec.drain())
    recorders[0].inc("mlgate_requests_total", LABELS, 5)
    hub.push("replica-0", recorders[0].drain())
    assert _sample(hub.render(), "mlgate_requests_total", model="demo", status="200") == 65


def test_drain_returns_deltas_only():
    rec = MetricsRecorder()
    rec.inc("mlgate_requests_total", LABELS)
    first = rec.drain()
    second = rec.drain()
    assert first["counters"] and not second["counters"]


def test_histogram_buckets_are_cumulative_and_merge():
    hub = MetricsHub()
    for values in ([0.0004, 0.003], [0.003, 20.0]):
        rec = MetricsRecorder()
        for v in values:
            rec.observe("mlgate_request_duration_seconds", ("demo", "1", "v2", "200"), v)
        hub.push("x" + str(values), rec.drain())
    text = hub.render()
    le = lambda b: _sample(text, "mlgate_request_duration_seconds_bucket", le=b)  # noqa: E731
    assert le("0.0005") == 1
    assert le("0.005") == 3
    assert le("10.0") == 3
    assert le("+Inf") == 4
    assert _sample(text, "mlgate_request_duration_seconds_count") == 4
    assert abs(_sample(text, "mlgate_request_duration_seconds_sum") - 20.0064) < 1e-9


def test_gauges_sum_over_sources_and_forget():
    hub = MetricsHub()
    for src, value in (("a", 2), ("b", 3)):
        rec = MetricsRecorder()
        rec.set_gauge("mlgate_inflight_requests", ("demo", "v2"), value)
        hub.push(src, rec.drain())
    assert _sample(hub.render(), "mlgate_inflight_requests") == 5
    hub.forget("a")
    assert _sample(hub.render(), "mlgate_inflight_requests") == 3


def test_recorder_is_thread_safe():
    rec = MetricsRecorder()

    def work():
        for _ in range(10_000):
            rec.inc("mlgate_requests_total", LABELS)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hub = MetricsHub()
    hub.push("a", rec.drain())
    assert _sample(hub.render(), "mlgate_requests_total") == 40_000


def test_label_values_are_escaped_and_parse():
    hub = MetricsHub()
    rec = MetricsRecorder()
    rec.inc("mlgate_rejections_total", ('we"ird\\name', "1", "v2", "bad_input"))
    hub.push("a", rec.drain())
    fams = _families(hub.render())
    sample = fams["mlgate_rejections"].samples[0]
    assert sample.labels["model"] == 'we"ird\\name'


def test_dynamic_metric_definitions_travel_with_the_push():
    from contracts.prometheus import MetricDef

    defs = {"mlgate_drift_psi": MetricDef("mlgate_drift_psi", "gauge", "PSI.", ("model", "feature"))}
    rec = MetricsRecorder(defs)
    rec.set_gauge("mlgate_drift_psi", ("demo", "income"), 0.31)
    hub = MetricsHub()
    hub.push("monitor", rec.drain())
    assert _sample(hub.render(), "mlgate_drift_psi", feature="income") == 0.31


def test_a_scrape_counts_the_scraping_process_own_latest_requests():
    hub = MetricsHub()
    rec = MetricsRecorder()
    rec.inc("mlgate_requests_total", LABELS)
    text = hub.push_and_render("replica-0", rec.drain())
    assert _sample(text, "mlgate_requests_total") == 1


def test_observe_many_counts_each_value_in_its_le_bucket():
    import bisect

    from contracts.prometheus import LATENCY_BUCKETS_S

    values = [0.0, 0.0005, 0.0007, 0.001, 0.003, 2.5, 9.99, 10.0, 11.0, 1e9]
    expected = [0.0] * (len(LATENCY_BUCKETS_S) + 3)  # oracle: one bisect per value
    for v in values:
        expected[bisect.bisect_left(LATENCY_BUCKETS_S, v)] += 1
    expected[-2], expected[-1] = sum(values), len(values)
    many = MetricsRecorder()
    many.observe_many("mlgate_request_duration_seconds", ("demo", "1", "v2", "200"), values)
    many.observe_many("mlgate_request_duration_seconds", ("demo", "1", "v2", "200"), [])
    assert many.drain()["hists"] == [(("mlgate_request_duration_seconds", ("demo", "1", "v2", "200")), expected)]


def test_collectors_fold_their_tallies_in_at_every_drain():
    rec = MetricsRecorder()
    tally = [3]

    def collect():
        rec.inc("mlgate_requests_total", LABELS, tally[0])
        tally[0] = 0

    rec.add_collector(collect)
    assert rec.drain()["counters"] == [(("mlgate_requests_total", LABELS), 3.0)]
    assert rec.drain()["counters"] == [(("mlgate_requests_total", LABELS), 0.0)]


def test_histogram_quantile_interpolates_like_prometheus():
    from contracts.prometheus import histogram_quantile

    inf = float("inf")
    # 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.25], 10 in (0.25, 0.5]
    buckets = [(0.1, 50.0), (0.25, 90.0), (0.5, 100.0), (inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == 0.1
    assert abs(histogram_quantile(0.7, buckets) - 0.175) < 1e-12
    assert abs(histogram_quantile(0.99, buckets) - 0.475) < 1e-12
    assert histogram_quantile(0.99, [(0.1, 0.0), (inf, 0.0)]) is None
    assert histogram_quantile(0.99, [(0.1, 1.0), (inf, 10.0)]) == 0.1  # in +Inf: the highest finite bound
