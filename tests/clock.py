"""A clock tests set: the code under test asks it what time it is (``contracts.clock.Clock``)."""

from __future__ import annotations

import datetime as dt

from contracts.clock import utc_at


class ManualClock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, start: float | dt.datetime) -> None:
        self.now_s = start.timestamp() if isinstance(start, dt.datetime) else float(start)

    def __call__(self) -> float:
        return self.now_s

    def to(self, ts_s: float | dt.datetime) -> ManualClock:
        """Set the time (it may go back, as a restored VM's clock does); returns the clock."""
        self.now_s = ts_s.timestamp() if isinstance(ts_s, dt.datetime) else float(ts_s)
        return self

    def advance(self, seconds: float) -> ManualClock:
        self.now_s += seconds
        return self

    def utc(self) -> dt.datetime:
        return utc_at(self.now_s)
