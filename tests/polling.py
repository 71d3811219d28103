"""Waiting on something outside the test (a server's readiness, a published segment, a
scrape total), bounded in time: the one helper for it, so no test sleeps to synchronise.

Polling is for processes and servers the test cannot be told about by an event; inside
one process, tests wait on events.
"""

from __future__ import annotations

import http.client
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(condition: Callable[[], T], timeout_s: float, what: str, *, interval_s: float = 0.1,
          proc: subprocess.Popen | None = None, detail: Callable[[], str] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy, and return that. TimeoutError
    after ``timeout_s`` names ``what``; with ``proc``, a process that exits first is an error
    at once (RuntimeError). ``detail()`` adds context to either message (a log tail)."""
    give_up = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        extra = f"\n{detail()}" if detail is not None else ""
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode} first{extra}")
        if time.monotonic() > give_up:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f}s{extra}")
        time.sleep(interval_s)  # bounded polling of another process, not synchronisation


def gateway_ready(port: int, host: str = "127.0.0.1") -> bool:
    """Whether the gateway on ``port`` answers ``GET /v2/health/ready`` with 200."""
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", "/v2/health/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wait_ready(port: int, timeout_s: float = 120.0, *, proc: subprocess.Popen | None = None,
               detail: Callable[[], str] | None = None) -> None:
    """Until the gateway on ``port`` is ready (see :func:`until`)."""
    until(lambda: gateway_ready(port), timeout_s, f"gateway on port {port} ready", proc=proc, detail=detail)
