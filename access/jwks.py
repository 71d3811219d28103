"""The provider's signing keys (its JWKS), kept fresh for :class:`access.jwt.JwtVerifier`.

``find`` never waits for the network: the gateway verifies tokens on its event loop.

- :class:`UrlJwks` (``jwks_url``): a daemon thread of its own fetches the JWKS at start, every
  ``jwks_cache_s``, and soon after a token names a ``kid`` the keys lack, at most once per
  ``jwks_min_refetch_s`` (so random kids cannot make mlgate hammer the provider). That token is
  refused at once; a retry succeeds once the new key has arrived.
- :class:`FileJwks` (``jwks_file``): re-read when its inode, size or mtime change, looked at
  (a stat) every :data:`FILE_LOOK_S` at most, by the verifying thread.

A failed read or fetch keeps the last good keys.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable

import jwt

from access.config import JwtConfig
from contracts.clock import Clock
from contracts.errors import ConfigError

log = logging.getLogger("mlgate.access")
FILE_LOOK_S = 1.0
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 1 << 20
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}  # algorithm prefix -> JWK kty

Keys = dict[str | None, dict[str, jwt.PyJWK]]  # kid (None: none) -> the key for each algorithm it fits


class UrlJwks:
    """The keys of ``cfg.jwks_url``, fetched by a background thread; :meth:`close` stops it."""

    def __init__(self, cfg: JwtConfig, monotonic: Clock, fetch: Callable[[str], bytes]) -> None:
        """``monotonic``: when the JWKS is due again; ``fetch``: how the URL is read (blocking)."""
        if urllib.parse.urlsplit(cfg.jwks_url or "").scheme not in ("http", "https"):
            raise ConfigError("serving.auth.jwt.jwks_url: expected an http:// or https:// URL")
        self.cfg, self.monotonic, self.fetch = cfg, monotonic, fetch
        self.keys: Keys = {}
        self.fetches = 0  # fetches done (failed ones too)
        self._next_look_s = float("-inf")
        self._fetched_s = float("-inf")
        self._done = threading.Condition()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mlgate-jwks", daemon=True)
        self._thread.start()

    def find(self, kid: str | None) -> dict[str, jwt.PyJWK] | None:
        """The cached key ``kid`` names, by algorithm (no kid: the only key, if one). An
        unknown kid asks the thread to fetch the JWKS again (when the rate limit allows)."""
        key = pick(self.keys, kid)
        now_s = self.monotonic()
        if (key is None and kid is not None and now_s - self._fetched_s >= self.cfg.jwks_min_refetch_s) \
                or now_s >= self._next_look_s:  # due: the thread may be waiting on another clock
            self._wake.set()
        return key

    def unchanged_s(self) -> float:
        """Seconds until the JWKS is next fetched (only an unknown kid may fetch it sooner)."""
        return max(0.0, self._next_look_s - self.monotonic())

    @property
    def running(self) -> bool:
        """Whether the thread still refreshes the keys (until :meth:`close`)."""
        return self._thread.is_alive()

    def wait_fetches(self, count: int, timeout_s: float) -> bool:
        """Until ``count`` fetches are done, for a caller that may block (the CLI, tests)."""
        with self._done:
            return self._done.wait_for(lambda: self.fetches >= count, timeout_s)

    def close(self) -> None:
        """Stop the thread (waits for a fetch in progress, within its timeout); the keys stay."""
        self._closed = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(FETCH_TIMEOUT_S + 1.0)

    def _run(self) -> None:
        woken = False
        while not self._closed:
            now_s = self.monotonic()
            if now_s >= self._next_look_s or (woken and now_s - self._fetched_s >= self.cfg.jwks_min_refetch_s):
                self._fetch(now_s)
            woken = self._wake.wait(self.unchanged_s())
            if woken:  # a wake after this clear is seen by the next wait
                self._wake.clear()

    def _fetch(self, now_s: float) -> None:
        self._fetched_s = now_s
        self._next_look_s = now_s + max(self.cfg.jwks_min_refetch_s, FILE_LOOK_S)  # retried after a failure
        try:
            self.keys = parse_jwks(self.fetch(self.cfg.jwks_url), self.cfg.algorithms)
            self._next_look_s = now_s + max(self.cfg.jwks_cache_s, self.cfg.jwks_min_refetch_s)
        except Exception as exc:  # noqa: BLE001 - whatever the provider sends, the thread lives
            log.error("JWKS: cannot fetch %s (%s: %s); keeping the %d keys fetched before", self.cfg.jwks_url,
                      type(exc).__name__, exc, len(self.keys))
        with self._done:
            self.fetches += 1
            self._done.notify_all()


class FileJwks:
    """The keys of a local JWKS file, looked at by the verifying thread (a stat at most
    every :data:`FILE_LOOK_S`)."""

    def __init__(self, path: str, algorithms: tuple[str, ...], monotonic: Clock) -> None:
        self.path, self.algorithms, self.monotonic = path, algorithms, monotonic
        self.keys: Keys = {}
        self._stamp: tuple | None = ()  # () unread; None missing
        self._next_look_s = float("-inf")
        self._lock = threading.Lock()

    def find(self, kid: str | None) -> dict[str, jwt.PyJWK] | None:
        """The key ``kid`` names, by algorithm (no kid: the only key, if one)."""
        now_s = self.monotonic()
        if now_s >= self._next_look_s:
            self._reload(now_s)
        return pick(self.keys, kid)

    def unchanged_s(self) -> float:
        """Seconds until the file is next looked at."""
        return max(0.0, self._next_look_s - self.monotonic())

    def wait_fetches(self, count: int, timeout_s: float) -> bool:
        """Nothing to wait for: the file is read when a token needs it."""
        return True

    def close(self) -> None:
        pass

    def _reload(self, now_s: float) -> None:
        with self._lock:  # another thread may have done it meanwhile
            if now_s < self._next_look_s:
                return
            self._next_look_s = now_s + FILE_LOOK_S
            try:
                data = self._read_if_changed()
                if data is not None:
                    self.keys = parse_jwks(data, self.algorithms)
            except (OSError, ValueError) as exc:
                log.error("JWKS: cannot read %s (%s); keeping the %d keys read before", self.path, exc,
                          len(self.keys))

    def _read_if_changed(self) -> bytes | None:
        """The file's bytes when it changed since the last look, else None."""
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return None
        self._stamp = stamp  # a bad or missing file is reported once, and read again when it changes
        if stamp is None:
            raise FileNotFoundError("no such file")
        with open(self.path, "rb") as f:
            return f.read(MAX_JWKS_BYTES + 1)


def pick(keys: Keys, kid: str | None) -> dict[str, jwt.PyJWK] | None:
    """The key ``kid`` names (PyJWT refused a kid that is not a string); no kid: the only one."""
    return keys.get(kid) if kid is not None else next(iter(keys.values())) if len(keys) == 1 else None


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
        fits = [a for a in algorithms if KEY_TYPES.get(a[:2]) == jwk["kty"] and jwk.get("alg", a) == a]
        try:
            keys[jwk["kid"] if isinstance(jwk.get("kid"), str) else None] = {a: jwt.PyJWK(jwk, a) for a in fits}
        except jwt.PyJWTError as exc:
            log.warning("JWKS: skipping the key %r (%s)", jwk.get("kid"), type(exc).__name__)
    return keys
