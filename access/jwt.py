"""JWTs from an OAuth2/OIDC provider, verified against its JWKS (issue 16).

PyJWT checks the signature, ``iss`` and ``aud``; ``exp`` (required), ``nbf`` and ``iat`` are
checked here against the injected clock with ``leeway_s`` (PyJWT would read the wall clock).
The key is the JWKS entry the token's ``kid`` names (no kid: only when the JWKS holds one
key); ``alg`` must be accepted by the config and fit that key's type: never ``none`` nor
HMAC, so a public key never serves as an HMAC secret. The JWKS comes from ``jwks_file``
(re-read when its inode, size or mtime change, looked at every :data:`FILE_LOOK_S` at most)
or ``jwks_url`` (cached ``jwks_cache_s``; an unknown ``kid`` fetches it again, at most once
per ``jwks_min_refetch_s``). A failed read or fetch keeps the last good keys.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable

import jwt

from access.config import JwtConfig
from access.identity import Identity, parse_scope
from contracts.clock import Clock, wall_clock_s
from contracts.errors import ConfigError, InvalidInput, Unauthenticated

log = logging.getLogger("mlgate.access")
FILE_LOOK_S = 1.0
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 1 << 20
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}  # algorithm prefix -> JWK kty
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
        again; ``fetch``: how ``jwks_url`` is read (default: an HTTP(S) GET with a timeout)."""
        if not cfg.enabled:
            raise ConfigError("serving.auth.jwt: set jwks_file or jwks_url")
        self.cfg = cfg
        self.clock = clock
        self.jwks = Jwks(cfg, monotonic, fetch or fetch_url)

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
        if not isinstance(alg, str) or alg not in self.cfg.algorithms or alg[:2] not in _KEY_TYPES:
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


Keys = dict[str | None, dict[str, jwt.PyJWK]]  # kid (None: none) -> the key for each algorithm it fits


class Jwks:
    """The provider's signing keys, kept fresh."""

    def __init__(self, cfg: JwtConfig, monotonic: Clock, fetch: Callable[[str], bytes]) -> None:
        if cfg.jwks_url and urllib.parse.urlsplit(cfg.jwks_url).scheme not in ("http", "https"):
            raise ConfigError("serving.auth.jwt.jwks_url: expected an http:// or https:// URL")
        self.cfg, self.monotonic, self.fetch = cfg, monotonic, fetch
        self.keys: Keys = {}
        self._stamp: tuple | None = ()  # () unread; None missing
        self._next_look_s = float("-inf")
        self._fetched_s = float("-inf")
        self._lock = threading.Lock()

    def find(self, kid: str | None) -> dict[str, jwt.PyJWK] | None:
        """The key a token's ``kid`` names, by algorithm (no kid: the only key, if one)."""
        now_s = self.monotonic()
        if now_s >= self._next_look_s:
            self._reload(now_s, None)
        key = self._pick(kid)
        if key is None and kid is not None and self.cfg.jwks_url and self._may_fetch(now_s):
            self._reload(now_s, kid)
            key = self._pick(kid)
        return key

    def unchanged_s(self) -> float:
        """Seconds until the JWKS is next looked at (only an unknown kid may fetch it sooner)."""
        return max(0.0, self._next_look_s - self.monotonic())

    def _pick(self, kid: str | None) -> dict[str, jwt.PyJWK] | None:
        keys = self.keys  # PyJWT refused a kid that is not a string
        return keys.get(kid) if kid is not None else next(iter(keys.values())) if len(keys) == 1 else None

    def _may_fetch(self, now_s: float) -> bool:
        return now_s - self._fetched_s >= self.cfg.jwks_min_refetch_s

    def _reload(self, now_s: float, kid: str | None) -> None:
        """Read the JWKS again: when it is due, or (``kid``) for a key it lacks."""
        with self._lock:  # another thread may have done it meanwhile
            if (now_s < self._next_look_s) if kid is None else (kid in self.keys or not self._may_fetch(now_s)):
                return
            source = self.cfg.jwks_url or self.cfg.jwks_file
            try:
                data = self._fetch_url(now_s) if self.cfg.jwks_url else self._read_file(now_s)
                if data is not None:
                    self.keys = parse_jwks(data, self.cfg.algorithms)
                if self.cfg.jwks_url:  # fetched and parsed: good for jwks_cache_s
                    self._next_look_s = now_s + max(self.cfg.jwks_cache_s, self.cfg.jwks_min_refetch_s)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                log.error("JWKS: cannot read %s (%s); keeping the %d keys read before", source, exc, len(self.keys))

    def _fetch_url(self, now_s: float) -> bytes:
        self._fetched_s = now_s
        self._next_look_s = now_s + max(self.cfg.jwks_min_refetch_s, FILE_LOOK_S)  # retried after a failure
        return self.fetch(self.cfg.jwks_url)

    def _read_file(self, now_s: float) -> bytes | None:
        """The file's bytes when it changed since the last look, else None."""
        self._next_look_s = now_s + FILE_LOOK_S
        try:
            st = os.stat(self.cfg.jwks_file)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return None
        self._stamp = stamp  # a bad or missing file is reported once, and read again when it changes
        if stamp is None:
            raise FileNotFoundError("no such file")
        with open(self.cfg.jwks_file, "rb") as f:
            return f.read(MAX_JWKS_BYTES + 1)


def fetch_url(url: str) -> bytes:
    """GET ``url`` within :data:`FETCH_TIMEOUT_S`; ValueError past :data:`MAX_JWKS_BYTES`."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "mlgate"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as response:
        return response.read(MAX_JWKS_BYTES + 1)


def parse_jwks(data: bytes, algorithms: tuple[str, ...]) -> Keys:
    """The signing keys of a JWKS document, each for the ``algorithms`` it fits; ValueError
    if it is not a JWKS. Symmetric keys and keys that do not load are left out."""
    if len(data) > MAX_JWKS_BYTES:
        raise ValueError(f"over {MAX_JWKS_BYTES} bytes")
    doc = json.loads(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("not a JWKS (an object with a 'keys' list)")
    keys: Keys = {}
    for jwk in doc["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or jwk.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        fits = [a for a in algorithms if _KEY_TYPES.get(a[:2]) == jwk["kty"] and jwk.get("alg", a) == a]
        try:
            keys[jwk["kid"] if isinstance(jwk.get("kid"), str) else None] = {a: jwt.PyJWK(jwk, a) for a in fits}
        except jwt.PyJWTError as exc:
            log.warning("JWKS: skipping the key %r (%s)", jwk.get("kid"), type(exc).__name__)
    return keys


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
