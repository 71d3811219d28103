"""The audit trail of admin actions: one append-only, hash-chained JSON-lines file.

Each record names who acted (the verified identity, never a typed name), what, on
what, and how it ended (``ok``, ``refused``, ``failed``). ``hash`` is the SHA-256 of the
record's canonical JSON without ``hash``; ``prev`` is the SHA-256 of the previous
record's canonical line (:data:`GENESIS` for the first), so an edited, removed or
reordered record breaks the chain where it happened. Without an outside anchor the chain
cannot tell a removed *last* record, nor a file rewritten whole: keep the last hash that
``mlgate audit verify`` prints somewhere else to catch those.

Appends from any number of processes are serialized by ``flock`` on the file; each is
one ``os.write`` of the whole line followed by ``fsync``, chained to the last line,
which is read under the lock from the file's tail.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
from dataclasses import dataclass

import orjson

from access.identity import Identity
from contracts import fs as rfs
from contracts.clock import Clock, utc_at, wall_clock_s
from contracts.errors import ConfigError, InvalidInput

FILE = "audit.jsonl"
GENESIS = "0" * 64
OUTCOMES = ("ok", "refused", "failed")
_TAIL_BLOCK = 4096
_TORN = "ends in a partial record (a crash mid-write?)"


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    count: int  # records that verified (all of them when ok)
    line: int | None = None  # the first bad line, from 1
    problem: str | None = None
    last_hash: str = GENESIS  # of the last good record's line: the value to keep elsewhere


def canonical(record: dict) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class AuditLog:
    def __init__(self, root: str, clock: Clock = wall_clock_s) -> None:
        """``root``: a local directory (made with mode 0700); ``clock``: each record's ``ts``."""
        self.root = root
        self.path = os.path.join(root, FILE)
        self.clock = clock

    def ensure(self) -> None:
        """Create the directory and the file if missing; ConfigError when it cannot be written."""
        os.close(self._open())

    def append(self, identity: Identity | None, action: str, target: str, outcome: str,
               detail: dict | None = None) -> dict:
        """Write one record (durable when this returns) and return it."""
        if outcome not in OUTCOMES:
            raise InvalidInput(f"outcome: expected one of {', '.join(OUTCOMES)}; got {outcome!r}")
        who = None if identity is None else {"id": identity.id, "name": identity.name, "kind": identity.kind}
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._tail(fd)
            record = {"seq": seq + 1, "ts": utc_at(self.clock()).isoformat(timespec="milliseconds"),
                      "identity": who, "action": action, "target": target, "outcome": outcome,
                      "detail": detail or {}, "prev": prev}
            record["hash"] = _sha(canonical(record))
            self._write(fd, canonical(record) + b"\n")
            return record
        except OSError as exc:
            raise ConfigError(f"audit trail {self.path}: cannot append ({exc.strerror})") from None
        finally:
            os.close(fd)  # releases the lock

    def records(self, since: dt.datetime | None = None) -> list[dict]:
        """Every record (at or after ``since``), in order; ConfigError on a line that does not parse."""
        out = []
        for n, line in enumerate(self._lines(), 1):
            try:
                record = orjson.loads(line)
                at = dt.datetime.fromisoformat(record["ts"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                raise ConfigError(f"audit trail {self.path}: line {n} is not a record (see mlgate audit verify)") \
                    from None
            if since is None or at >= since:
                out.append(record)
        return out

    def verify(self) -> VerifyReport:
        """Check every record's hash, and the ``seq`` and ``prev`` chain; report the first problem."""
        raw = self._read()
        lines = raw.split(b"\n")
        torn = lines.pop() != b""  # a complete file ends with a newline
        prev, count = GENESIS, 0
        for n, line in enumerate(lines, 1):
            problem = _check(line, count + 1, prev)
            if problem:
                return VerifyReport(False, count, n, problem, prev)
            prev, count = _sha(line), count + 1
        if torn:
            return VerifyReport(False, count, len(lines) + 1, f"the file {_TORN}", prev)
        return VerifyReport(True, count, last_hash=prev)

    # -- the file -------------------------------------------------------------------
    def _open(self) -> int:
        try:
            if not os.path.isdir(self.root):
                os.makedirs(self.root, mode=0o700, exist_ok=True)
            created = not os.path.exists(self.path)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            if created:
                rfs.fsync_local(self.root)
            return fd
        except OSError as exc:
            raise ConfigError(f"audit trail {self.path}: cannot open ({exc.strerror}); see audit_root") from None

    def _tail(self, fd: int) -> tuple[int, str]:
        """(seq, sha256 of the line) of the last record: only the end of the file is read."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS
        if os.pread(fd, 1, size - 1) != b"\n":
            raise ConfigError(f"audit trail {self.path} {_TORN}: refusing to append; "
                              "run mlgate audit verify and repair the last line")
        end, data = size - 1, b""
        while b"\n" not in data and end > 0:
            start = max(0, end - _TAIL_BLOCK)
            data = os.pread(fd, end - start, start) + data
            end = start
        line = data.rsplit(b"\n", 1)[-1]
        try:
            return int(orjson.loads(line)["seq"]), _sha(line)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ConfigError(f"audit trail {self.path}: the last line is not a record; refusing to append") \
                from None

    @staticmethod
    def _write(fd: int, line: bytes) -> None:
        size = os.fstat(fd).st_size
        written = os.write(fd, line)
        if written != len(line):  # disk full: leave no partial record behind
            os.ftruncate(fd, size)
            raise OSError(28, f"short write ({written} of {len(line)} bytes)")
        os.fsync(fd)

    def _read(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise ConfigError(f"audit trail {self.path}: cannot read ({exc.strerror})") from None

    def _lines(self) -> list[bytes]:
        return [line for line in self._read().split(b"\n") if line]


def _check(line: bytes, seq: int, prev: str) -> str | None:
    """What is wrong with ``line`` as record ``seq`` following a line hashed ``prev``; None: nothing."""
    try:
        record = orjson.loads(line)
        claimed, got_seq, got_prev = record.pop("hash"), record["seq"], record["prev"]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "not a record (does not parse as one)"
    if claimed != _sha(canonical(record)):
        return f"record seq {got_seq} was edited (its hash does not match its content)"
    if canonical({**record, "hash": claimed}) != line:
        return f"record seq {got_seq} was rewritten (its line is not the canonical one)"
    if got_seq != seq:
        what = "removed before it" if isinstance(got_seq, int) and got_seq > seq else "out of order"
        return f"seq {got_seq} where {seq} was expected (a record {what})"
    if got_prev != prev:
        return f"record seq {got_seq} does not chain to the line before it (a record removed, replaced or reordered)"
    return None
