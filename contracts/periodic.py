"""A function run every ``interval_s`` on a daemon thread until stopped: the loop of the
long-lived services (the monitor, the rollout controller)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Periodic:
    def __init__(self, fn: Callable[[], object], interval_s: float, name: str) -> None:
        """``fn``: one pass (it handles its own errors); passes start ``interval_s`` apart, or at
        once when one took longer."""
        self.fn, self.interval_s, self.name = fn, interval_s, name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.fn()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def start(self) -> bool:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        return True

    def stop(self, timeout_s: float) -> bool:
        """Ask the loop to end and wait up to ``timeout_s`` for the pass in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        return True
