"""JWTs from an OAuth2/OIDC provider, verified against its JWKS (issue 16).

PyJWT checks the signature, ``iss`` and ``aud``; ``exp`` (required), ``nbf`` and ``iat`` are
checked here against the injected clock with ``leeway_s`` (PyJWT would read the wall clock).
The key is the JWKS entry the token's ``kid`` names (no kid: only when the JWKS holds one
key); ``alg`` must be accepted by the config and fit that key's type: never ``none`` nor
HMAC, so a public key never serves as an HMAC secret. The JWKS comes from ``jwks_file`` or
``jwks_url`` (:mod:`access.jwks`: a URL is fetched by a thread of its own, so verifying never
waits for the network).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import jwt

from access.config import JwtConfig
from access.identity import Identity, parse_scope
from access.jwks import KEY_TYPES, FileJwks, UrlJwks, fetch_url
from contracts.clock import Clock, wall_clock_s
from contracts.errors import ConfigError, InvalidInput, Unauthenticated

_OPTIONS = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "require": ["exp", "iss", "aud"],
            "enforce_minimum_key_length": True}
_REASONS = ((jwt.InvalidAudienceError, "wrong audience"), (jwt.InvalidIssuerError, "wrong issuer"),
            (jwt.InvalidSignatureError, "bad signature"), (jwt.DecodeError, "malformed token"),
            (jwt.InvalidKeyError, "the signing key is not usable (too short, or another curve)"),
            (jwt.InvalidAlgorithmError, "the signing key does not fit the algorithm"))


class JwtVerifier:
    """Turns a provider's JWT into an :class:`Identity` (``jwt:ISSUER:SUBJECT``)."""

    def __init__(self, cfg: JwtConfig, clock: Clock = wall_clock_s, monotonic: Clock = time.monotonic,
                 fetch: Callable[[str], bytes] | None = None) -> None:
        """``clock``: wall time of the token's claims; ``monotonic``: when to look at the JWKS
        again; ``fetch``: how ``jwks_url`` is read, in the JWKS thread (default: an HTTP(S) GET
        with a timeout). With ``jwks_url``, :meth:`close` stops that thread."""
        if not cfg.enabled:
            raise ConfigError("serving.auth.jwt: set jwks_file or jwks_url")
        self.cfg = cfg
        self.clock = clock
        self.jwks = UrlJwks(cfg, monotonic, fetch or fetch_url) if cfg.jwks_url else \
            FileJwks(cfg.jwks_file, cfg.algorithms, monotonic)

    def wait_keys(self, timeout_s: float) -> bool:
        """Until the JWKS was looked at once (False after ``timeout_s``): for a caller that may
        block, such as the CLI; the request path never waits (an unknown key is refused)."""
        return self.jwks.wait_fetches(1, timeout_s)

    def close(self) -> None:
        """Stop refreshing the JWKS."""
        self.jwks.close()

    def verify(self, token: str) -> Identity:
        """The identity a valid token proves; Unauthenticated saying what is wrong otherwise."""
        return self.verify_until(token)[0]

    def verify_until(self, token: str) -> tuple[Identity, float]:
        """The identity, and the wall time until which this verification may be reused: the
        token's expiry (with the leeway), or sooner, when the JWKS is next looked at (a key
        the provider withdrew stops working as soon as it would without reuse)."""
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, TypeError, ValueError):
            raise _refused("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.cfg.algorithms or alg[:2] not in KEY_TYPES:
            raise _refused(f"algorithm {str(alg)[:16]!r} not accepted")
        by_alg = self.jwks.find(header.get("kid"))
        if by_alg is None:
            raise _refused("unknown signing key")
        if alg not in by_alg:  # an RSA key for ES256, or a JWK that pins another "alg"
            raise _refused("the signing key does not fit the algorithm")
        claims = self._decode(token, by_alg[alg], alg)
        now_s = self.clock()
        exp_s = self._check_times(claims, now_s)
        return self._identity(claims), min(exp_s + self.cfg.leeway_s, now_s + self.jwks.unchanged_s())

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict:
        try:
            return jwt.decode(token, key, algorithms=[alg], audience=self.cfg.audience, issuer=self.cfg.issuer,
                              options=_OPTIONS)
        except jwt.MissingRequiredClaimError as exc:
            raise _refused(f"the token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), "the token is not valid")
            raise _refused(reason) from None

    def _check_times(self, claims: dict, now_s: float) -> float:
        """``exp``, after checking it, ``nbf`` and ``iat`` against ``now_s`` with the leeway."""
        leeway_s = self.cfg.leeway_s
        exp, nbf, iat = (_time_claim(claims, name) for name in ("exp", "nbf", "iat"))
        if exp <= now_s - leeway_s:
            raise _refused("the token expired")
        if nbf is not None and nbf > now_s + leeway_s:
            raise _refused("the token is not valid yet (nbf)")
        if iat is not None and iat > now_s + leeway_s:
            raise _refused("the token was issued in the future (iat)")
        return exp

    def _identity(self, claims: dict) -> Identity:
        subject = _claim(claims, self.cfg.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise _refused(f"the token has no {self.cfg.subject_claim!r} claim")
        return Identity(f"jwt:{self.cfg.issuer}:{subject}", subject, "jwt",
                        _scopes(_claim(claims, self.cfg.scopes_claim)))


def _refused(reason: str) -> Unauthenticated:
    return Unauthenticated(f"authorization: JWT refused: {reason}")


def _time_claim(claims: dict, name: str) -> float | None:
    """A NumericDate claim (None when absent); Unauthenticated unless a finite number."""
    value = claims.get(name)
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or (isinstance(value, float) and not math.isfinite(value)):
        raise _refused(f"malformed token ({name!r} is not a number of seconds)")
    return value


def _claim(claims: dict, path: str) -> object:
    """The claim named ``path``, or the nested one its dots lead to (``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: object = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _scopes(value: object) -> frozenset[str]:
    """The mlgate scopes of a claim (a space-separated string or a list)."""
    items = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    return frozenset(item for item in items if isinstance(item, str) and _is_scope(item))


def _is_scope(text: str) -> bool:
    try:
        parse_scope(text)
    except InvalidInput:  # openid, profile and other provider scopes: not ours, not an error
        return False
    return True
