"""What time it is, given: the one module of ours that reads the wall clock.

Everything that needs the calendar (windows, horizons, retention, partition listing,
alert hysteresis, cooldowns, the day a label is received, stamps on artifacts) takes a
:data:`Clock` and asks it; the default is :func:`wall_clock_s`. Tests pass their own
clock (``tests/clock.py``), so no test depends on the date it runs on; a unit test
checks that no other module of ours calls ``time.time()``, ``datetime.now()`` and kin.

Durations and deadlines (batch waits, timeouts, service times) are measured with
``time.monotonic()`` / ``time.perf_counter()``: they are intervals, not dates.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds since the Unix epoch (UTC), as ``time.time()``."""


wall_clock_s: Clock = time.time
"""The process's wall clock: the default :data:`Clock` (the C function itself: the request
path asks it once per request)."""


def utc_at(ts_s: float) -> dt.datetime:
    """``ts_s`` (epoch seconds) as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(ts_s, dt.UTC)


def utc_now(clock: Clock = wall_clock_s) -> dt.datetime:
    """The clock's time as an aware UTC datetime."""
    return utc_at(clock())


def utc_today(clock: Clock = wall_clock_s) -> dt.date:
    """The clock's UTC day."""
    return utc_now(clock).date()


def iso_s(ts_s: float) -> str:
    """``ts_s`` as ISO 8601 in UTC, to the second (``2026-11-20T12:00:00+00:00``)."""
    return utc_at(ts_s).isoformat(timespec="seconds")


def stamp(clock: Clock = wall_clock_s) -> str:
    """A compact UTC stamp for names (``20261120-120000``)."""
    return utc_now(clock).strftime("%Y%m%d-%H%M%S")
