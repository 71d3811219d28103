"""The metrics observer: per-request tallies become the documented series on a drain."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from contracts.errors import InvalidInput, Overloaded
from contracts.prometheus import MetricsHub, MetricsRecorder
from serving.batching import BatchStats
from serving.observers import MetricsObserver
from serving.outcomes import BatchOutcome, Outcome
from serving.pipeline import Prepared
from serving.types import InferenceRequest


class _Model:
    name = "demo"
    version = 3  # served versions are ints inside; labels are their text


def _outcome(error=None, rows=2, latency_s=0.004, model="demo"):
    request = InferenceRequest(model, None, [], route="v2", request_id="r")
    return Outcome(request, _Model() if model == "demo" else None, Prepared(rows) if error is None else None,
                   None, error, latency_s, 0.0)


def _stats(requests: list) -> BatchStats:
    return BatchStats(rows=len(requests), items=len(requests), queue_wait_s=(0.0,) * len(requests), compute_s=0.001)


def _samples(rec: MetricsRecorder) -> dict:
    hub = MetricsHub()
    hub.push("a", rec.drain())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(hub.render()) for s in fam.samples}


def test_requests_rows_latency_rejections_and_inflight_add_up():
    rec = MetricsRecorder()
    inflight = {("demo", "v2"): 1}  # the data plane's count: one request still in flight at the drain
    obs = MetricsObserver(rec, {"demo"}, inflight)
    outcomes = [_outcome() for _ in range(5)] + [_outcome(InvalidInput("x: bad")), _outcome(Overloaded("full", 1.0)),
                                                 _outcome(model="nope", error=InvalidInput("no such model"))]
    for o in outcomes:
        obs.observe(o)
    # a batch whose callers had all gone: its shape and timing count, no request does
    stats = BatchStats(rows=10, items=5, queue_wait_s=(0.001,) * 5, compute_s=0.002)
    obs.observe_batch(BatchOutcome(_Model(), stats, [], [], [], [], {}, {}))
    got = _samples(rec)
    ok = (("model", "demo"), ("route", "v2"), ("status", "200"), ("version", "3"))
    assert got[("mlgate_requests_total", ok)] == 5
    assert got[("mlgate_rows_total", ok)] == 10
    bad = (("model", "demo"), ("route", "v2"), ("status", "400"), ("version", "3"))
    assert got[("mlgate_requests_total", bad)] == 1
    assert got[("mlgate_rejections_total", (("model", "demo"), ("reason", "queue_full"), ("route", "v2"),
                                            ("version", "3")))] == 1
    assert got[("mlgate_rejections_total", (("model", "_unknown"), ("reason", "bad_input"), ("route", "v2"),
                                            ("version", "")))] == 1
    assert got[("mlgate_request_duration_seconds_count", ok)] == 5
    assert got[("mlgate_request_duration_seconds_count", (("model", "demo"), ("route", "v2"), ("status", "503"),
                                                          ("version", "3")))] == 1
    assert got[("mlgate_queue_wait_seconds_count", (("model", "demo"), ("version", "3")))] == 5
    assert got[("mlgate_batch_size_rows_sum", (("model", "demo"), ("version", "3")))] == 10
    assert got[("mlgate_inflight_requests", (("model", "demo"), ("route", "v2")))] == 1
    again = _samples(rec)  # deltas were folded in once: a second drain adds nothing
    assert ("mlgate_requests_total", ok) not in again
    assert again[("mlgate_inflight_requests", (("model", "demo"), ("route", "v2")))] == 1


def test_a_request_whose_client_went_away_is_499_client_closed_not_an_internal_error():
    import asyncio

    rec = MetricsRecorder()
    obs = MetricsObserver(rec, {"demo"})
    gone = _outcome(asyncio.CancelledError())
    assert gone.status == 499
    obs.observe(gone)
    got = _samples(rec)
    closed = (("model", "demo"), ("route", "v2"), ("status", "499"), ("version", "3"))
    assert got[("mlgate_requests_total", closed)] == 1
    assert got[("mlgate_rejections_total", (("model", "demo"), ("reason", "client_closed"), ("route", "v2"),
                                            ("version", "3")))] == 1


def test_a_batch_of_answers_counts_each_request_under_its_own_route():
    rec = MetricsRecorder()
    obs = MetricsObserver(rec, {"demo"})
    routes = ["v2", "v2", "plain", "v2"]
    requests = [InferenceRequest("demo", None, [], route=r, request_id=str(i)) for i, r in enumerate(routes)]
    obs.observe_batch(BatchOutcome(_Model(), _stats(requests), requests, [0.001, 0.002, 0.003, 0.004], [0.0] * 4,
                                   [1, 2, 3, 4], {}, {}))
    same = [InferenceRequest("demo", None, [], route="v2", request_id="s") for _ in range(3)]
    obs.observe_batch(BatchOutcome(_Model(), _stats(same), same, [0.5, 0.5, 0.5], [0.0] * 3, [1, 1, 1], {}, {}))
    got = _samples(rec)
    v2 = (("model", "demo"), ("route", "v2"), ("status", "200"), ("version", "3"))
    plain = (("model", "demo"), ("route", "plain"), ("status", "200"), ("version", "3"))
    assert got[("mlgate_requests_total", v2)] == 6 and got[("mlgate_rows_total", v2)] == 1 + 2 + 4 + 3
    assert got[("mlgate_requests_total", plain)] == 1 and got[("mlgate_rows_total", plain)] == 3
    assert abs(got[("mlgate_request_duration_seconds_sum", v2)] - (0.007 + 1.5)) < 1e-9
    assert got[("mlgate_request_duration_seconds_count", plain)] == 1


def test_made_up_versions_do_not_become_label_values():
    rec = MetricsRecorder()
    obs = MetricsObserver(rec, {"demo"}, served_versions=lambda m: {"3"} if m == "demo" else set())
    for version in [f"v{i}" for i in range(100)] + ["3"]:  # 100 made-up versions and a served one, all refused
        request = InferenceRequest("demo", version, [], route="v2", request_id="r")
        obs.observe(Outcome(request, None, None, None, InvalidInput("bad"), 0.001, 0.0))
    obs.observe(Outcome(InferenceRequest("nope", "9", [], route="v2", request_id="r"), None, None, None,
                        InvalidInput("no such model"), 0.001, 0.0))
    got = _samples(rec)
    versions = {dict(labels)["version"] for name, labels in got if name == "mlgate_requests_total"}
    assert versions == {"_unknown", "3"}
    assert got[("mlgate_requests_total", (("model", "demo"), ("route", "v2"), ("status", "400"),
                                          ("version", "_unknown")))] == 100
    assert got[("mlgate_requests_total", (("model", "_unknown"), ("route", "v2"), ("status", "400"),
                                          ("version", "_unknown")))] == 1
