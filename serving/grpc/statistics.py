"""Triton's model statistics (``ModelStatistics``), tallied on this replica from what the data
plane's observers hear: per model version, successes and failures with their durations, queue
wait and compute time, rows inferred and batches executed, the last inference's time, and a
count and compute time per batch size.

Counts are this replica's since it started (a call reaches one replica; the cluster-wide
numbers are the Prometheus metrics). Requests that never reached a version (an unknown model,
a body refused before decoding) are not a version's.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from serving.outcomes import BatchOutcome, Outcome


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.count += count
        self.ns += int(seconds * 1e9)


@dataclass
class VersionStats:
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute: Duration = field(default_factory=Duration)
    inference_count: int = 0  # rows
    execution_count: int = 0  # batches
    last_inference_ms: int = 0  # epoch milliseconds
    batches: dict[int, Duration] = field(default_factory=lambda: defaultdict(Duration))


class StatisticsObserver:
    """An observer of the data plane (appends under a lock, as the others do)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, int], VersionStats] = defaultdict(VersionStats)

    def observe_batch(self, b: BatchOutcome) -> None:
        stats = b.stats
        with self._lock:
            s = self._stats[(b.model.name, b.model.version)]
            s.execution_count += 1
            s.compute.add(stats.compute_s)
            s.batches[stats.rows].add(stats.compute_s)
            for wait_s in stats.queue_wait_s:
                s.queue.add(wait_s)
            for latency_s in b.latency_s:
                s.success.add(latency_s)
            s.inference_count += sum(b.rows)
            if b.wall_start_s:
                s.last_inference_ms = max(s.last_inference_ms, int(max(b.wall_start_s) * 1000))

    def observe(self, o: Outcome) -> None:
        if o.model is None:
            return
        with self._lock:
            s = self._stats[(o.model.name, o.model.version)]
            (s.fail if o.error is not None else s.success).add(o.latency_s)
            if o.error is None and o.prepared is not None:
                s.inference_count += o.prepared.rows
            s.last_inference_ms = max(s.last_inference_ms, int(o.wall_start_s * 1000))

    def snapshot(self) -> dict[tuple[str, int], VersionStats]:
        """A copy of the tallies by (model, version)."""
        with self._lock:
            return {key: VersionStats(Duration(s.success.count, s.success.ns), Duration(s.fail.count, s.fail.ns),
                                      Duration(s.queue.count, s.queue.ns), Duration(s.compute.count, s.compute.ns),
                                      s.inference_count, s.execution_count, s.last_inference_ms,
                                      {k: Duration(d.count, d.ns) for k, d in s.batches.items()})
                    for key, s in self._stats.items()}
