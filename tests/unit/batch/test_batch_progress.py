"""The progress line (rows/s, time left) and the run summary, on a fake clock."""

from __future__ import annotations

import io

from batch.job import FragmentResult
from batch.progress import Progress, ScoreSummary


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_reports_rate_and_time_left_at_most_every_interval():
    clock, stream = Clock(), io.StringIO()
    bar = Progress(total_rows=1000, total_parts=4, stream=stream, interval_s=5.0, clock=clock)
    clock.now += 2.0
    bar.update(FragmentResult("part-00000", rows_in=250))
    clock.now += 1.0
    bar.update(FragmentResult("part-00001", rows_in=250))  # within the interval: not printed
    clock.now += 1.0
    bar.update(FragmentResult("part-00002", rows_in=250))
    clock.now += 4.0
    bar.update(FragmentResult("part-00003", rows_in=250))  # the last part is always printed
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "25%" in lines[0] and "250 rows" in lines[0] and "125 rows/s" in lines[0] and "ETA 6 s" in lines[0]
    assert "100%" in lines[1] and "1,000 rows" in lines[1] and "ETA 0 s" in lines[1] and "parts 4/4" in lines[1]


def test_without_row_counts_progress_goes_by_parts():
    clock, stream = Clock(), io.StringIO()
    bar = Progress(total_rows=None, total_parts=2, stream=stream, interval_s=0.0, clock=clock)
    clock.now += 3.0
    bar.update(FragmentResult("part-00000", rows_in=30))
    assert "50%" in stream.getvalue() and "ETA 3 s" in stream.getvalue()


def test_summary_counts_rows_parts_and_failures():
    s = ScoreSummary("demo", 3, "/out", parts_total=4, parts_skipped=1, seconds=2.0)
    s.add(FragmentResult("part-00001", rows_in=100, rows_scored=98, rows_rejected=2, max_rss_bytes=5))
    s.add(FragmentResult("part-00002", rows_in=50, rows_scored=50, max_rss_bytes=9))
    s.add(FragmentResult("part-00003", rows_in=10, error="ArrowInvalid: bad"))
    assert (s.rows_in, s.rows_scored, s.rows_rejected, s.parts_written) == (160, 148, 2, 2)
    assert s.peak_actor_rss_bytes == 9 and not s.ok and s.rows_per_s == 80.0
    text = s.describe()
    assert "rows in 160, scored 148, rejected 2; 2.0 s, 80 rows/s" in text
    assert "parts: 2 written, 1 already done, 1 failed, 4 in all" in text
    assert "/out/_rejects/" in text and "failed part-00003: ArrowInvalid: bad" in text
