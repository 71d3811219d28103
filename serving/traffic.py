"""Per-request routing by a model's traffic policy (``registry.traffic.TrafficPolicy``).

Pure and cheap (no I/O, no Ray): a replica builds one :class:`Router` per model whenever
the primary version or the policy changes, and asks it on every request that does not
pin a version in its URL.

Assignment: a draw ``u`` in [0, 1) is laid onto the canaries' cumulative shares, in
version order, and past them onto the primary. Without a sticky value ``u`` comes from
the injected random source; with one it is a hash of the model's name and that value
(BLAKE2b), so one caller always lands on one version while the shares hold across
callers, and a caller in a canary stays there when the canary's share grows. Shadows
are drawn independently per request, each with its own share.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Mapping
from itertools import accumulate
from typing import Any, Protocol

from registry.traffic import TrafficPolicy

_TO_UNIT = 2.0 ** -53  # 53 hash bits, as a float in [0, 1)


class RandomSource(Protocol):
    def random(self) -> float:
        """A float in [0, 1), as ``random.Random.random``."""
        ...


class Router:
    """Which version answers a request, and which versions get a copy of it."""

    __slots__ = ("model", "primary", "policy", "_rng", "_canaries", "_bounds", "_shadows", "_hash", "_sticky")

    def __init__(self, model: str, primary: int, policy: TrafficPolicy, rng: RandomSource | None = None) -> None:
        """``primary``: the version that gets what the canaries leave; ``rng``: the source of per-request
        draws (default: a fresh ``random.Random``; tests pass a seeded one). A shadow that is the primary
        is ignored (it answers anyway)."""
        self.model = model
        self.primary = primary
        self.policy = policy
        self._rng = rng if rng is not None else random.Random()
        canaries = sorted(policy.canaries.items())
        self._canaries = tuple(v for v, _ in canaries)
        self._bounds = tuple(accumulate(s for _, s in canaries))
        self._shadows = tuple((v, s) for v, s in sorted(policy.shadows.items()) if v != primary)
        self._hash = hashlib.blake2b(model.encode() + b"\0", digest_size=8)
        self._sticky = policy.sticky_source

    def choose(self, sticky: str | bytes | None = None) -> int:
        """The version that answers: by ``sticky`` (a caller's key; None or empty: a random draw)."""
        if not self._canaries:
            return self.primary
        if sticky:
            h = self._hash.copy()
            h.update(sticky.encode() if isinstance(sticky, str) else sticky)
            u = (int.from_bytes(h.digest(), "big") >> 11) * _TO_UNIT
        else:
            u = self._rng.random()
        i = bisect_right(self._bounds, u)
        return self._canaries[i] if i < len(self._canaries) else self.primary

    def shadow_targets(self) -> tuple[int, ...]:
        """The versions that get a copy of this request (each drawn with its share), in version order."""
        if not self._shadows:
            return ()
        rng = self._rng
        return tuple(v for v, share in self._shadows if rng.random() < share)

    def versions_needed(self) -> tuple[int, ...]:
        """Every version this router can send a request or a copy to: the primary, canaries and shadows."""
        return tuple(sorted({self.primary, *self._canaries, *(v for v, _ in self._shadows)}))

    def sticky_value(self, headers: Mapping[str, str], parameters: Mapping[str, Any] | None = None) -> str | None:
        """The request's sticky value by the policy's ``sticky_key``: the header (``headers`` keyed by
        lowercase names, str or bytes) or the request parameter (a non-string value as ``str()``); None when the policy
        has no sticky key or the request lacks it."""
        source = self._sticky
        if source is None:
            return None
        kind, name = source
        if kind == "header":
            value = headers.get(name)
            if value is None:  # the gateway's own header maps are keyed by bytes
                raw = headers.get(name.encode())
                value = None if raw is None else raw.decode("latin-1")
            return value
        value = parameters.get(name) if parameters else None
        return None if value is None else value if isinstance(value, str) else str(value)
