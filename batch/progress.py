"""Progress of a batch run (rows/s, time left) and its summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from batch.job import FragmentResult


@dataclass
class ScoreSummary:
    model: str
    version: int
    dest: str
    parts_total: int
    parts_skipped: int  # already written by an earlier run
    rows_in: int = 0  # rows read by this run
    rows_scored: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0  # wall time of the whole call
    startup_seconds: float = 0.0  # run started -> the first scorer had its model loaded
    scoring_seconds: float = 0.0  # first fragment started -> last one finished (actors up)
    peak_actor_rss_bytes: int = 0
    cpu_seconds: float = 0.0  # scorers' CPU time on the fragments
    startup_cpu_seconds: float = 0.0  # scorers' CPU time before they were ready, summed over scorers
    parts_written: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # part -> error
    _scorers: set[int] = field(default_factory=set, repr=False)

    @property
    def rows_per_s(self) -> float:
        return self.rows_in / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def add(self, result: FragmentResult) -> None:
        self.rows_in += result.rows_in
        self.rows_scored += result.rows_scored
        self.rows_rejected += result.rows_rejected
        self.peak_actor_rss_bytes = max(self.peak_actor_rss_bytes, result.max_rss_bytes)
        self.cpu_seconds += result.cpu_seconds
        if result.pid not in self._scorers:
            self._scorers.add(result.pid)
            self.startup_cpu_seconds += result.ready_cpu_seconds
        if result.error:
            self.failed[result.part] = result.error
        else:
            self.parts_written += 1

    def describe(self) -> str:
        lines = [
            f"model {self.model} version {self.version} -> {self.dest}",
            f"rows in {self.rows_in:,}, scored {self.rows_scored:,}, rejected {self.rows_rejected:,}; "
            f"{self.seconds:.1f} s, {self.rows_per_s:,.0f} rows/s",
            f"parts: {self.parts_written} written, {self.parts_skipped} already done, "
            f"{len(self.failed)} failed, {self.parts_total} in all",
        ]
        if self.rows_rejected:
            lines.append(f"rejected rows and reasons: {self.dest}/_rejects/")
        lines += [f"failed {part}: {error}" for part, error in sorted(self.failed.items())]
        if self.failed:
            lines.append("run the same command again to retry the failed parts")
        return "\n".join(lines)


class Progress:
    """One status line: rewritten in place on a terminal, else printed every ``interval_s``."""

    def __init__(self, total_rows: int | None, total_parts: int, stream: TextIO | None = None,
                 interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.total_rows, self.total_parts = total_rows, total_parts
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.interval_s, self.clock = interval_s, clock
        self.started = self.clock()
        self.rows = self.parts = 0
        self._last = float("-inf")

    def update(self, result: FragmentResult) -> None:
        self.rows += result.rows_in
        self.parts += 1
        now = self.clock()
        if self.tty or now - self._last >= self.interval_s or self.parts == self.total_parts:
            self._last = now
            self.stream.write(("\r" if self.tty else "") + self.line(now) + ("" if self.tty else "\n"))
            self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.rows / elapsed
        done = self.rows / self.total_rows if self.total_rows else self.parts / max(self.total_parts, 1)
        left = elapsed * (1 - done) / done if done > 0 else float("inf")
        eta = f"{left:,.0f} s" if left != float("inf") else "?"
        bar = "#" * int(done * 20)
        return (f"[{bar:<20}] {done:4.0%}  {self.rows:,} rows  {rate:,.0f} rows/s  "
                f"ETA {eta}  parts {self.parts}/{self.total_parts}")

    def close(self) -> None:
        if self.tty and self.parts:
            self.stream.write("\n")
            self.stream.flush()
