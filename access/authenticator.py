"""Who sent a request, and whether it may do what it asks: the one entry point the
transports call (HTTP now, gRPC's ``authorization`` metadata later) and the CLI too.

Credentials come as ``Authorization: Bearer <token>``: an API key mlgate issued
(``mlg_...``, :mod:`access.keys`) or a JWT from the configured OIDC provider
(:mod:`access.jwt`). 401 when missing or not valid, 403 without the scope, 429 over the
identity's rate.
"""

from __future__ import annotations

import time

from access.config import AuthConfig
from access.identity import Identity
from access.keys import PREFIX, KeyStore
from access.ratelimit import RateLimiter
from contracts.clock import Clock, wall_clock_s
from contracts.errors import Forbidden, Unauthenticated

MISSING = "authorization: credentials required (send 'Authorization: Bearer <key or token>')"
MAX_TOKEN_BYTES = 8192
MAX_VERIFIED = 10_000  # verified credentials remembered (then forgotten all at once)


class _Verified:
    """A key verified once: reused while the key file is unchanged and the key unexpired."""

    __slots__ = ("identity", "rate_per_s", "expires_s", "generation", "allowed")

    def __init__(self, identity: Identity, rate_per_s: float, expires_s: float | None, generation: int) -> None:
        self.identity, self.rate_per_s, self.expires_s, self.generation = identity, rate_per_s, expires_s, generation
        self.allowed: dict[str, bool] = {}  # scope -> Identity.allows(scope), asked once


class Authenticator:
    """The request path enters this module only: a key verified before (its hash compared in
    constant time by :class:`access.keys.KeyStore`) is found again by the whole header value,
    and dropped when the key file changes (a revocation) or the key expires."""

    def __init__(self, cfg: AuthConfig, clock: Clock = wall_clock_s, monotonic: Clock = time.monotonic,
                 jwt=None) -> None:
        """``jwt``: a verifier like :class:`access.jwt.JwtVerifier` (``verify_until``,
        ``wait_keys``, ``close``; default: one built from ``cfg.jwt`` when it names a JWKS);
        ``clock``: wall time of key expiry and JWT claims. With a ``jwks_url``, a thread keeps
        the provider's keys fresh until :meth:`close`."""
        self.cfg = cfg
        self.clock = clock
        self.monotonic = monotonic
        self.keys = KeyStore(cfg.keys_file, cfg.reload_interval_s, clock, monotonic)
        if jwt is None and cfg.jwt.enabled:
            from access.jwt import JwtVerifier

            jwt = JwtVerifier(cfg.jwt, clock, monotonic)
        self.jwt = jwt
        self.limiter = RateLimiter(monotonic)
        self._default_rate_s = cfg.rate_limit.requests_per_s
        self._burst = cfg.rate_limit.burst
        self._verified: dict[bytes | str, _Verified] = {}  # by the Authorization header's value

    def authorize(self, authorization: bytes | str | None, scope: str | None) -> Identity:
        """The identity behind ``authorization`` (the header's value), checked for ``scope``
        (None: any valid identity) and its request rate."""
        entry = self._entry(authorization)
        identity = entry.identity
        if scope is not None:
            allowed = entry.allowed.get(scope)
            if allowed is None:
                allowed = entry.allowed[scope] = identity.allows(scope)
            if not allowed:
                raise Forbidden(f"forbidden: this credential lacks the scope {scope}")
        if entry.rate_per_s:
            self.limiter.take(identity.id, entry.rate_per_s, self._burst)
        return identity

    def wait_keys(self, timeout_s: float) -> bool:
        """Until the JWT provider's keys were fetched once (True at once without a JWKS): for
        a caller that may block, such as the CLI; a request never waits for them."""
        return self.jwt is None or self.jwt.wait_keys(timeout_s)

    def close(self) -> None:
        """Stop what runs in the background (the JWKS refresh); whoever built this calls it."""
        if self.jwt is not None:
            self.jwt.close()

    def identify(self, authorization: bytes | str | None) -> Identity:
        return self._entry(authorization).identity

    def _entry(self, authorization: bytes | str | None) -> _Verified:
        """The verified credential of this header value: found again by the value itself, so
        a request with a known credential is not parsed again (only verified ones are kept)."""
        keys = self.keys
        if self.monotonic() >= keys.next_look_s:
            keys.refresh()
        entry = self._verified.get(authorization)
        if entry is not None and entry.generation == keys.generation and \
                (entry.expires_s is None or self.clock() < entry.expires_s):
            return entry
        entry = self._verify(bearer(authorization))
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.clear()
        self._verified[authorization] = entry
        return entry

    def _verify(self, token: str) -> _Verified:
        if token.startswith(PREFIX):
            record = self.keys.verify(token)
            return _Verified(record.identity, record.rate_limit_per_s or self._default_rate_s, record.expires_s,
                             self.keys.generation)
        if self.jwt is not None and token.count(".") == 2:
            identity, expires_s = self.jwt.verify_until(token)
            return _Verified(identity, self._default_rate_s, expires_s, self.keys.generation)
        raise Unauthenticated("authorization: the credential is not valid (unknown, revoked or malformed)")


def bearer(authorization: bytes | str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` value; Unauthenticated otherwise."""
    if not authorization:
        raise Unauthenticated(MISSING, invalid=False)
    if isinstance(authorization, bytes):
        try:
            authorization = authorization.decode("ascii")
        except UnicodeDecodeError:
            raise Unauthenticated("authorization: not ASCII") from None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("authorization: expected the Bearer scheme ('Authorization: Bearer <token>')",
                              invalid=False)
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated(f"authorization: the token is over {MAX_TOKEN_BYTES} bytes")
    return token
