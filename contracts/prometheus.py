"""Prometheus metrics that add up across replicas and processes. No Ray here.

A contract between processes (serving replicas, the drift monitor): they push
snapshots in the format of :meth:`MetricsRecorder.drain` to one hub, the named Ray
actor ``HUB_NAME`` in namespace ``HUB_NAMESPACE`` (see ``serving/hub_actor.py``).

Each process records into a cheap local :class:`MetricsRecorder` (dict increments).
Hot request paths tally in their own structures and register a *collector* that folds
the tallies into the recorder in bulk (:meth:`MetricsRecorder.observe_many`) when it is
drained, so a request pays for a list append, not a histogram update. A pusher sends its
*deltas* to a hub every ``push_interval_s``; the
hub adds counters and histogram buckets, and sums gauges over live sources, so one
scrape shows cluster-wide totals. Counters in the hub survive replica restarts.

Only served versions stay labels: a source that serves models says which versions it
serves (:meth:`MetricsRecorder.set_served`, sent with each push, with a time to live), and
the hub drops the accumulated series of a model version no live source serves any more. A
source that stops pushing for its time to live (a replica that died without a goodbye) is
forgotten: its gauges and its served versions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from contracts.predlog import QUARANTINED_METRIC

UNKNOWN_LABEL = "_unknown"  # the label value of names and versions clients made up
HUB_NAME = "mlgate-metrics-hub"
HUB_NAMESPACE = "mlgate"  # fixed, so replicas (Serve's namespace) and the monitor find one hub

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4,
                     0.5, 0.75, 1.0, 2.5, 5.0, 10.0)  # finer where request deadlines usually lie
ROWS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


@dataclass(frozen=True)
class MetricDef:
    name: str
    kind: str  # counter | histogram | gauge
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


_RMVS = ("model", "version", "route", "status")
HTTP_REFUSED_METRIC = "mlgate_http_refused_total"
AUTH_REFUSED_METRIC = "mlgate_auth_refused_total"  # label reason: unauthenticated, forbidden, rate_limited
MODEL_LOADS_METRIC = "mlgate_model_loads_total"
MODEL_UNLOADS_METRIC = "mlgate_model_unloads_total"
MODEL_STATE_METRIC = "mlgate_model_version_state"
SHADOW_DROPPED_METRIC = "mlgate_shadow_dropped_total"
SERVING_METRICS = {m.name: m for m in (
    MetricDef("mlgate_requests_total", "counter", "Answered inference requests.", _RMVS),
    MetricDef("mlgate_rows_total", "counter", "Rows in answered inference requests.", _RMVS),
    MetricDef("mlgate_request_duration_seconds", "histogram", "Request latency in the gateway.",
              _RMVS, LATENCY_BUCKETS_S),
    MetricDef("mlgate_queue_wait_seconds", "histogram", "Time a request waited for its batch.",
              ("model", "version"), LATENCY_BUCKETS_S),
    MetricDef("mlgate_batch_size_rows", "histogram", "Rows per model call.", ("model", "version"), ROWS_BUCKETS),
    MetricDef("mlgate_model_compute_seconds", "histogram", "Model compute time per batch.",
              ("model", "version"), LATENCY_BUCKETS_S),
    MetricDef("mlgate_inflight_requests", "gauge", "Inference requests being handled.", ("model", "route")),
    MetricDef("mlgate_rejections_total", "counter", "Requests refused, by reason.",
              ("model", "version", "route", "reason")),
    MetricDef("mlgate_predlog_records_written_total", "counter", "Prediction-log records published.", ("model",)),
    MetricDef("mlgate_predlog_records_dropped_total", "counter", "Prediction-log records dropped, by reason.",
              ("model", "reason")),
    MetricDef(HTTP_REFUSED_METRIC, "counter",
              "Requests or connections the HTTP server refused before the app, by reason.", ("reason",)),
    MetricDef(AUTH_REFUSED_METRIC, "counter",
              "Requests refused by access control (401, 403, 429), by reason.", ("reason",)),
    MetricDef(MODEL_LOADS_METRIC, "counter", "Model versions loaded and warmed up by the live model table, "
              "by outcome (loaded, failed).", ("model", "outcome")),
    MetricDef(MODEL_UNLOADS_METRIC, "counter", "Model versions unloaded after draining, by whether their "
              "requests finished in time (drained: true, false).", ("model", "drained")),
    MetricDef(MODEL_STATE_METRIC, "gauge", "Replicas holding a model version in a state (serving, draining, "
              "failed: it could not be loaded or warmed up and takes no traffic).", ("model", "version", "state")),
    MetricDef(SHADOW_DROPPED_METRIC, "counter", "Copies of requests a shadow version did not get because its "
              "queue was full (the primary answered as always).", ("model", "version")),
    MetricDef(QUARANTINED_METRIC, "counter",
              "Unreadable files moved aside (segment, feedback) or passed over (state), by kind.", ("model", "kind")),
)}

Labels = tuple[str, ...]


class MetricsRecorder:
    """Per-process recorder of deltas since the last :meth:`drain`. Thread-safe."""

    def __init__(self, defs: dict[str, MetricDef] | None = None) -> None:
        self.defs = dict(defs or SERVING_METRICS)
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, Labels], float] = {}
        self._hists: dict[tuple[str, Labels], list[float]] = {}  # bucket counts..., sum, count
        self._gauges: dict[tuple[str, Labels], float] = {}
        self._collectors: list[Callable[[], None]] = []
        self._served: list[list[str]] | None = None
        self._ttl_s: float | None = None

    def set_served(self, versions: Iterable[tuple[str, str]], ttl_s: float) -> None:
        """The (model, version) pairs this process serves, sent with every snapshot; the hub
        forgets this source ``ttl_s`` after its last push."""
        self._served = sorted([m, v] for m, v in versions)
        self._ttl_s = ttl_s

    def add_collector(self, collect: Callable[[], None]) -> None:
        """``collect()`` is called at the start of every :meth:`drain` to fold its tallies in."""
        self._collectors.append(collect)

    def inc(self, name: str, labels: Labels, value: float = 1.0) -> None:
        key = (name, labels)
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + value

    def set_gauge(self, name: str, labels: Labels, value: float) -> None:
        with self._lock:
            self._gauges[(name, labels)] = value

    def replace_gauges(self, name: str, values: dict[Labels, float]) -> None:
        """The series of gauge ``name`` become exactly ``values`` (others of it are gone)."""
        with self._lock:
            self._gauges = {k: v for k, v in self._gauges.items() if k[0] != name}
            self._gauges.update({(name, labels): v for labels, v in values.items()})

    def observe(self, name: str, labels: Labels, value: float) -> None:
        self.observe_many(name, labels, (value,))

    def observe_many(self, name: str, labels: Labels, values: Sequence[float]) -> None:
        """Count each of ``values`` into the histogram ``name`` (Prometheus ``le`` buckets:
        a value on a bound counts in that bound's bucket), in one vectorised update."""
        if not len(values):
            return
        buckets = self.defs[name].buckets
        data = np.asarray(values, dtype=np.float64)
        counts = np.bincount(np.searchsorted(buckets, data, side="left"), minlength=len(buckets) + 1)
        key = (name, labels)
        with self._lock:
            hist = self._hists.get(key)
            if hist is None:
                hist = self._hists[key] = [0.0] * (len(buckets) + 3)
            for i, count in enumerate(counts.tolist()):
                hist[i] += count
            hist[-2] += float(data.sum())
            hist[-1] += len(data)

    def drain(self) -> dict:
        """Deltas of counters and histograms since the last drain, and current gauges."""
        for collect in self._collectors:
            collect()
        with self._lock:
            snap = {
                "defs": {n: d.__dict__ for n, d in self.defs.items()},
                "counters": list(self._counters.items()),
                "hists": list(self._hists.items()),
                "gauges": list(self._gauges.items()),
                "served": self._served,
                "ttl_s": self._ttl_s,
            }
            self._counters = {}
            self._hists = {}
        return snap


class MetricsHub:
    """Merges pushes from many sources and renders the Prometheus text format."""

    def __init__(self, clock_s: Callable[[], float] = time.monotonic) -> None:
        """``clock_s``: a monotonic clock for sources' time to live."""
        self._lock = threading.Lock()
        self.clock_s = clock_s
        self.defs: dict[str, MetricDef] = dict(SERVING_METRICS)
        self._counters: dict[tuple[str, Labels], float] = {}
        self._hists: dict[tuple[str, Labels], list[float]] = {}
        self._gauges: dict[str, dict[tuple[str, Labels], float]] = {}  # by source
        self._served: dict[str, frozenset[tuple[str, str]]] = {}  # by source that serves models
        self._expires_s: dict[str, float] = {}  # by source with a time to live

    def push(self, source: str, snap: dict) -> None:
        with self._lock:
            now_s = self.clock_s()
            if snap.get("ttl_s") is not None:
                self._expires_s[source] = now_s + snap["ttl_s"]
            served_before = dict(self._served)
            if snap.get("served") is not None:
                self._served[source] = frozenset((m, v) for m, v in snap["served"])
            for name, d in snap["defs"].items():
                self.defs.setdefault(name, MetricDef(**{**d, "labels": tuple(d["labels"]),
                                                        "buckets": tuple(d["buckets"])}))
            for (name, labels), v in snap["counters"]:
                key = (name, tuple(labels))
                self._counters[key] = self._counters.get(key, 0.0) + v
            for (name, labels), h in snap["hists"]:
                key = (name, tuple(labels))
                cur = self._hists.get(key)
                self._hists[key] = list(h) if cur is None else [a + b for a, b in zip(cur, h)]
            self._gauges[source] = {(n, tuple(lab)): v for (n, lab), v in snap["gauges"]}
            self._expire(now_s)
            if self._served != served_before:
                self._prune()

    def push_and_render(self, source: str, snap: dict) -> str:
        """One call for a scrape: the scraping process's own latest deltas are always counted."""
        self.push(source, snap)
        return self.render()

    def forget(self, source: str) -> None:
        with self._lock:
            self._forget(source)
            self._prune()

    def _forget(self, source: str) -> None:
        self._gauges.pop(source, None)
        self._served.pop(source, None)
        self._expires_s.pop(source, None)

    def _expire(self, now_s: float) -> None:
        expired = [s for s, expires_s in self._expires_s.items() if expires_s <= now_s]
        for source in expired:
            self._forget(source)
        if expired:
            self._prune()

    def _prune(self) -> None:
        """Drop the counters and histograms of model versions no live source serves (a
        version label of ``""`` or ``_unknown`` is not a served version's and stays). While
        no live source serves anything (a lone replica restarting) nothing is dropped: the
        versions it comes back with keep their counters."""
        served = frozenset().union(*self._served.values())
        if not served:
            return
        for series in (self._counters, self._hists):
            for key in [k for k in series if self._unserved(k, served)]:
                del series[key]

    def _unserved(self, key: tuple[str, Labels], served: frozenset[tuple[str, str]]) -> bool:
        """A serving series (``SERVING_METRICS``) of a version no live source serves; other
        processes' series (the monitor's, by the versions in the log) are theirs to keep."""
        d = SERVING_METRICS.get(key[0])
        if d is None or "model" not in d.labels or "version" not in d.labels:
            return False
        model, version = key[1][d.labels.index("model")], key[1][d.labels.index("version")]
        return version not in ("", UNKNOWN_LABEL) and (model, version) not in served

    def render(self) -> str:
        with self._lock:
            self._expire(self.clock_s())
            gauges: dict[tuple[str, Labels], float] = {}
            for per_source in self._gauges.values():
                for key, v in per_source.items():
                    gauges[key] = gauges.get(key, 0.0) + v
            series = {**{k: ("c", v) for k, v in self._counters.items()},
                      **{k: ("h", v) for k, v in self._hists.items()},
                      **{k: ("g", v) for k, v in gauges.items()}}
            return "".join(_render_metric(self.defs[n], [(k[1], v) for k, v in series.items() if k[0] == n])
                           for n in sorted({k[0] for k in series}))


def histogram_quantile(q: float, cumulative: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a Prometheus histogram from its cumulative ``(le, count)``
    buckets (``+Inf`` last), interpolated linearly inside a bucket as Prometheus's
    ``histogram_quantile`` does; None without observations. A quantile in the ``+Inf``
    bucket is reported as the highest finite bound."""
    buckets = sorted(cumulative)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def _labels_text(names: Iterable[str], values: Iterable[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _render_metric(d: MetricDef, rows: list[tuple[Labels, tuple[str, object]]]) -> str:
    out = [f"# HELP {d.name} {d.help}\n# TYPE {d.name} {d.kind}\n"]
    for labels, (_, value) in sorted(rows):
        if d.kind != "histogram":
            out.append(f"{d.name}{_labels_text(d.labels, labels)} {_num(value)}\n")
            continue
        cumulative = 0.0
        for bound, count in zip((*d.buckets, float("inf")), value[:-2]):
            cumulative += count
            le = 'le="' + ("+Inf" if bound == float("inf") else repr(float(bound))) + '"'
            out.append(f"{d.name}_bucket{_labels_text(d.labels, labels, le)} {_num(cumulative)}\n")
        out.append(f"{d.name}_sum{_labels_text(d.labels, labels)} {_num(value[-2])}\n")
        out.append(f"{d.name}_count{_labels_text(d.labels, labels)} {_num(value[-1])}\n")
    return "".join(out)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class LocalHub:
    """Hub client for one process without Ray (tests, the bare reference server)."""

    def __init__(self) -> None:
        self.hub = MetricsHub()

    def push(self, source: str, snap: dict) -> None:
        self.hub.push(source, snap)

    async def render(self, source: str | None = None, snap: dict | None = None) -> str:
        return self.hub.render() if snap is None else self.hub.push_and_render(source, snap)

    def forget(self, source: str) -> None:
        self.hub.forget(source)


class MetricsPusher:
    """Drains a recorder into a hub every ``interval_s`` (and on demand, and at close)."""

    def __init__(self, recorder: MetricsRecorder, hub, source: str, interval_s: float) -> None:
        self.recorder = recorder
        self.hub = hub
        self.source = source
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mlgate-metrics", daemon=True)
        self._thread.start()

    def push_now(self) -> None:
        self.hub.push(self.source, self.recorder.drain())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.push_now()
            except Exception:  # noqa: BLE001 - metrics must never take serving down
                import logging

                logging.getLogger("mlgate.metrics").exception("metrics push failed")

    def close(self) -> None:
        """The last deltas, then the hub forgets this source (its gauges, its served versions)."""
        self._stop.set()
        self._thread.join(10)
        self.push_now()
        self.hub.forget(self.source)
