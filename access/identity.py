"""Identities and scopes.

Scopes: ``infer:MODEL`` (or ``infer:*``), ``feedback:MODEL`` (or ``feedback:*``),
``metrics:read`` and ``admin`` (model lifecycle, tokens; implies every other scope).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from contracts.errors import InvalidInput
from contracts.names import NAME_PATTERN

ADMIN = "admin"
METRICS_READ = "metrics:read"
MODEL_SCOPES = ("infer", "feedback")
_MODEL_SCOPE = re.compile(rf"({'|'.join(MODEL_SCOPES)}):(\*|{NAME_PATTERN.pattern})")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from: ``id`` is stable (a key's id, a JWT's issuer and subject),
    ``name`` is what people read (a key's name, the subject), ``kind`` how it was proven
    (``key``, ``jwt``, or ``open`` when access control is off)."""

    id: str
    name: str
    kind: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """Whether this identity holds ``scope`` (``admin`` holds all; ``infer:*`` every model)."""
        scopes = self.scopes
        if scope in scopes or ADMIN in scopes:
            return True
        kind, _, model = scope.partition(":")
        return bool(model) and kind in MODEL_SCOPES and f"{kind}:*" in scopes

    @property
    def admin(self) -> bool:
        return ADMIN in self.scopes


# Every request when ``serving.auth.enabled`` is false: it may do anything.
OPEN = Identity("open", "open", "open", frozenset({ADMIN}))


def parse_scope(text: str) -> str:
    """A scope as written on the command line or in a JWT claim; InvalidInput names it."""
    if text in (ADMIN, METRICS_READ) or _MODEL_SCOPE.fullmatch(text):
        return text
    raise InvalidInput(f"scope {text!r}: expected infer:MODEL, infer:*, feedback:MODEL, feedback:*, "
                       f"{METRICS_READ} or {ADMIN}")

