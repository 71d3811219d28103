"""API keys that mlgate issues: ``mlg_<id>_<secret>``, stored only as a SHA-256 hash.

The store is one JSON file (``serving.auth.keys_file``, mode 0600), rewritten atomically
(temporary file, fsync, rename) under an exclusive lock, so concurrent ``mlgate tokens``
commands never lose each other's writes and replicas never read half a file. Replicas
look at the file's identity (inode, size, mtime) at most every ``reload_interval_s`` and
re-read it when it changed: a revocation reaches every replica within that interval.

A key is 256 random bits, so one SHA-256 is the right hash (a slow password hash guards
low-entropy secrets, not these); the comparison is constant-time.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from access.identity import Identity, parse_scope
from contracts import fs as rfs
from contracts.clock import Clock, iso_s, wall_clock_s
from contracts.errors import ConfigError, InvalidInput, NotFound, Unauthenticated
from contracts.names import check_name

log = logging.getLogger("mlgate.access")
PREFIX = "mlg_"
_ID_HEX = 16  # 64 bits: unique, not secret
_FORMAT_VERSION = 1
INVALID = "authorization: the credential is not valid (unknown, revoked or malformed)"
_DUMMY_HASH = hashlib.sha256(b"mlgate: no such key").hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    scopes: tuple[str, ...]
    hash: str  # sha256 hex of the whole key
    created: str  # ISO 8601 UTC
    expires: str | None = None
    revoked: str | None = None
    rate_limit_per_s: float | None = None
    identity: Identity = field(init=False, compare=False, repr=False)
    expires_s: float | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "identity", Identity(f"key:{self.id}", self.name, "key", frozenset(self.scopes)))
        object.__setattr__(self, "expires_s", _epoch_s(self.expires) if self.expires else None)

    def status(self, now_s: float) -> str:
        if self.revoked:
            return "revoked"
        if self.expires_s is not None and now_s >= self.expires_s:
            return "expired"
        return "active"

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes), "hash": self.hash,
                "created": self.created, "expires": self.expires, "revoked": self.revoked,
                "rate_limit_per_s": self.rate_limit_per_s}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """(key id, the whole key): ``mlg_<16 hex>_<43 url-safe characters>``."""
    key_id = secrets.token_hex(_ID_HEX // 2)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The id part of a well-formed key, else None."""
    if not key.startswith(PREFIX) or len(key) < len(PREFIX) + _ID_HEX + 2 or key[len(PREFIX) + _ID_HEX] != "_":
        return None
    return key[len(PREFIX):len(PREFIX) + _ID_HEX]


class KeyStore:
    """The key file: read by replicas (:meth:`verify`), written by ``mlgate tokens``."""

    def __init__(self, path: str, reload_interval_s: float = 1.0, clock: Clock = wall_clock_s,
                 monotonic: Clock = time.monotonic) -> None:
        """``clock``: wall time for creation and expiry; ``monotonic``: when to look for changes."""
        self.path = Path(path)
        self.reload_interval_s = reload_interval_s
        self.clock = clock
        self.monotonic = monotonic
        self._records: dict[str, KeyRecord] = {}
        self._stamp: tuple | None = None
        self.next_look_s = float("-inf")  # when to look at the file again (monotonic)
        self.generation = 0  # counts the reads of a changed file: what was verified before may be revoked
        self._lock = threading.Lock()

    # -- reading (every replica) --------------------------------------------------------
    def verify(self, key: str) -> KeyRecord:
        """The active record of ``key``; Unauthenticated otherwise (one message for unknown,
        revoked and malformed keys; an expired key is told so, after its hash matched)."""
        if self.monotonic() >= self.next_look_s:
            self.refresh()
        key_id = key_id_of(key)
        record = self._records.get(key_id) if key_id else None
        digest = hash_key(key)
        if not hmac.compare_digest(digest, record.hash if record is not None else _DUMMY_HASH) or record is None:
            raise Unauthenticated(INVALID)
        if record.revoked:
            raise Unauthenticated(INVALID)
        if record.expires_s is not None and self.clock() >= record.expires_s:
            raise Unauthenticated(f"authorization: the key expired at {record.expires}")
        return record

    def refresh(self) -> None:
        """Re-read the file if it changed since the last look (a missing file: no keys)."""
        with self._lock:
            self.next_look_s = self.monotonic() + self.reload_interval_s
            stamp = _stamp(self.path)
            if stamp == self._stamp:
                return
            try:
                records = _parse(self.path.read_bytes(), self.path) if stamp is not None else {}
            except (OSError, ConfigError) as exc:  # keep the last good keys; say why
                log.error("API keys: cannot read %s (%s); keeping the %d keys read before",
                          self.path, exc, len(self._records))
                return
            self._records, self._stamp = records, stamp
            self.generation += 1

    def records(self) -> list[KeyRecord]:
        self.refresh()
        return sorted(self._records.values(), key=lambda r: r.created)

    # -- writing (mlgate tokens, mlgate up) ---------------------------------------------
    def create(self, name: str, scopes: list[str], ttl_s: float | None = None,
               rate_limit_per_s: float | None = None) -> tuple[KeyRecord, str]:
        """A new key: its record and the key itself (shown once, never stored)."""
        check_name(name, "name")
        if not scopes:
            raise InvalidInput("scope: at least one (--scope infer:MODEL, feedback:MODEL, metrics:read, admin)")
        scopes = tuple(dict.fromkeys(parse_scope(s) for s in scopes))
        if ttl_s is not None and ttl_s <= 0:
            raise InvalidInput("ttl: must be positive")
        if rate_limit_per_s is not None and rate_limit_per_s <= 0:
            raise InvalidInput("rate-limit: must be positive")
        now_s = self.clock()
        key_id, key = new_key()
        record = KeyRecord(key_id, name, scopes, hash_key(key), iso_s(now_s),
                           iso_s(now_s + ttl_s) if ttl_s is not None else None, None, rate_limit_per_s)
        with self._editing() as records:
            records[key_id] = record
        return record, key

    def revoke(self, id_or_name: str) -> list[KeyRecord]:
        """Revoke the key with this id, or every active key with this name."""
        now = iso_s(self.clock())
        with self._editing() as records:
            hits = [r for r in records.values() if not r.revoked and id_or_name in (r.id, r.name)]
            if not hits:
                raise NotFound(f"no active key with id or name {id_or_name!r}")
            for r in hits:
                records[r.id] = replace(r, revoked=now)
        return [replace(r, revoked=now) for r in hits]

    @contextmanager
    def _editing(self):
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            records = _parse(self.path.read_bytes(), self.path) if self.path.exists() else {}
            yield records
            body = orjson.dumps({"version": _FORMAT_VERSION, "keys": [r.to_json() for r in records.values()]},
                                option=orjson.OPT_INDENT_2)
            write_private(self.path, body)
        finally:
            os.close(fd)
        self.next_look_s = float("-inf")


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` atomically with mode 0600 (temporary file, fsync, rename, fsync dir)."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    fs, _ = rfs.resolve(str(path))
    rfs.publish(fs, str(tmp), str(path))


def _parse(raw: bytes, path: Path) -> dict[str, KeyRecord]:
    try:
        doc = orjson.loads(raw)
        if doc.get("version") != _FORMAT_VERSION:
            raise ValueError(f"unknown format version {doc.get('version')!r}")
        return {k["id"]: KeyRecord(k["id"], k["name"], tuple(k["scopes"]), k["hash"], k["created"],
                                   k.get("expires"), k.get("revoked"), k.get("rate_limit_per_s"))
                for k in doc["keys"]}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a valid key file ({exc})") from None


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _epoch_s(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def read_key_file(path: str) -> str:
    """A key kept in a file (``admin.key``, ``--token-file``): its first line."""
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the key ({exc.strerror})") from None


def ensure_admin_key(store: KeyStore, key_file: str, on_create: Callable[[str], None] | None = None) -> bool:
    """Make sure ``key_file`` holds an active admin key of ``store``; create both when not
    (the file with mode 0600). Returns whether a key was created."""
    path = Path(key_file)
    if path.exists():
        try:
            if store.verify(read_key_file(key_file)).identity.admin:
                return False
        except Unauthenticated:
            pass
    _, key = store.create("admin", ["admin"])
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, (key + "\n").encode())
    if on_create is not None:
        on_create(key_file)
    return True
