"""Requests per identity: one token bucket per identity, refilled at its rate."""

from __future__ import annotations

import threading
import time

from contracts.clock import Clock
from contracts.errors import RateLimited

_FORGET_AFTER_S = 300.0  # a bucket idle this long is full again: drop it


class RateLimiter:
    """``take(id, rate_per_s, burst)``: one request of identity ``id``, or RateLimited with
    the seconds until the next token as its ``Retry-After``. Thread-safe."""

    def __init__(self, monotonic: Clock = time.monotonic) -> None:
        self.monotonic = monotonic
        self._buckets: dict[str, list[float]] = {}  # id -> [tokens, last refill]
        self._lock = threading.Lock()
        self._next_prune_s = 0.0

    def take(self, identity_id: str, rate_per_s: float, burst: int = 0) -> None:
        capacity = float(burst) if burst > 0 else max(1.0, 2.0 * rate_per_s)
        now = self.monotonic()
        with self._lock:
            bucket = self._buckets.get(identity_id)
            if bucket is None:
                bucket = self._buckets[identity_id] = [capacity, now]
            tokens = min(capacity, bucket[0] + (now - bucket[1]) * rate_per_s)
            bucket[1] = now
            if tokens < 1.0:
                bucket[0] = tokens
                raise RateLimited(f"rate limit: {identity_id.split(':', 1)[0]} identity over {rate_per_s:g} "
                                  f"requests/s", retry_after_s=(1.0 - tokens) / rate_per_s)
            bucket[0] = tokens - 1.0
            if now >= self._next_prune_s:
                self._prune(now)

    def _prune(self, now: float) -> None:
        self._next_prune_s = now + _FORGET_AFTER_S
        for key in [k for k, (_, last) in self._buckets.items() if now - last > _FORGET_AFTER_S]:
            del self._buckets[key]
