"""Times on the command line: ISO 8601 (``2026-11-26T10:00``) or relative (``15m``, ``2h``, ``1d``)."""

from __future__ import annotations

import datetime as dt
import re

from contracts.clock import utc_now
from contracts.errors import InvalidInput

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, flag: str, now: dt.datetime | None = None) -> dt.datetime:
    """``text`` as an aware UTC time; a relative one counts back from ``now`` (default: the wall clock)."""
    now = now or utc_now()
    m = _RELATIVE.match(text.strip())
    if m:
        return now - dt.timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{flag}: expected ISO time or a duration like 15m, 2h, 1d; got {text!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def parse_duration_s(text: str, flag: str) -> float:
    m = _RELATIVE.match(text.strip())
    if not m:
        raise InvalidInput(f"{flag}: expected a duration like 30s, 5m, 1h; got {text!r}")
    return float(m.group(1)) * _UNIT_S[m.group(2)]
