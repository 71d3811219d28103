"""The monitor's files for one model (a local or shared directory)::

    {state_root}/model={name}/
        state.json          cursor, window positions, alert states, policy state (atomic)
        state.prev.json     the state saved before it: read when state.json is missing or torn
        windows.jsonl       every scored window: per-feature statistics and verdicts
        live.jsonl          live metrics per window, appended whenever new labels change them
        alerts.jsonl        the alert log: every firing/resolved transition and its delivery
        triggers.jsonl      retraining triggers, submissions and outcomes
        rollouts.jsonl      the rollout controller's evaluations (evidence, checks, decision) and steps
        keys/date=D/*.arrow       join keys of the predictions read (for late labels)
        labels/date=D/*.arrow     feedback labels joined to their predictions
        orphans.arrow             labels whose prediction was not read yet

JSON-lines files are append-only; a record repeated after a crash (same ``window_id``)
is read back once, the last copy winning. Tables are Arrow IPC files (lz4): written
once per segment read, they must cost far less than reading the segment.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.fs as pafs

from contracts.fs import publish
from contracts.names import check_name

log = logging.getLogger("mlgate.monitoring")
LOGS = ("windows", "live", "alerts", "triggers", "rollouts")
_LOCAL = pafs.LocalFileSystem()  # the state directory is a local or mounted path
STATE_FILE = "state.json"
PREVIOUS_STATE_FILE = "state.prev.json"


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(record) -> str:
    """JSON without NaN/inf (written as null)."""
    return json.dumps(_finite(record), default=_json_default, separators=(",", ":"))


def _finite(value):
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class StateStore:
    def __init__(self, state_root: str, model: str) -> None:
        self.path = Path(state_root).expanduser() / f"model={check_name(model, 'model name')}"
        self.model = model
        self.quarantined: list[str] = []  # unreadable state files moved aside by load()

    def load(self) -> dict | None:
        """The last saved state, or the one before it when the last is missing or unreadable
        (torn, not JSON): such a file is moved aside as ``state.json.bad-*``, logged and
        listed in :attr:`quarantined`; None when there is none to read."""
        for name in (STATE_FILE, PREVIOUS_STATE_FILE):
            f = self.path / name
            if not f.exists():
                continue
            try:
                state = json.loads(f.read_text(encoding="utf-8"))
                if isinstance(state, dict):
                    return state
                raise ValueError(f"expected a JSON object, got {type(state).__name__}")
            except (ValueError, UnicodeDecodeError) as exc:
                bad = f.with_name(f"{name}.bad-{uuid.uuid4().hex[:8]}")
                os.replace(f, bad)
                self.quarantined.append(str(bad))
                log.warning("%s: state file %s is unreadable (%s); moved to %s", self.model, f, exc, bad.name)
        return None

    def save(self, state: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".state.json.{uuid.uuid4().hex}"
        tmp.write_text(dumps(state))
        current = self.path / STATE_FILE
        if current.exists():  # the last good state stays beside it until this one is down
            os.replace(current, self.path / PREVIOUS_STATE_FILE)
        publish(_LOCAL, str(tmp), str(current))

    def append(self, log: str, records: list[dict]) -> None:
        if log not in LOGS:
            raise ValueError(f"unknown log {log!r}")
        if not records:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / f"{log}.jsonl", "a", encoding="utf-8") as f:
            f.write("".join(dumps(r) + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())

    def read(self, log: str) -> list[dict]:
        f = self.path / f"{log}.jsonl"
        if not f.exists():
            return []
        out = []
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line after a crash
                continue
        return out

    def write_table(self, area: str, day: dt.date | None, name: str, table: pa.Table,
                    compression: str = "lz4") -> None:
        """Write ``{area}/date={day}/{name}.arrow`` (or ``{name}.arrow`` without a day) atomically."""
        directory = self.path / area / f"date={day.isoformat()}" if day is not None else self.path
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{name}.{uuid.uuid4().hex}"
        feather.write_feather(table, tmp, compression=compression)
        publish(_LOCAL, str(tmp), str(directory / f"{name}.arrow"))

    def read_table(self, name: str) -> pa.Table | None:
        path = self.path / f"{name}.arrow"
        return feather.read_table(path) if path.exists() else None

    def read_tables(self, area: str, oldest: dt.date | None = None) -> list[pa.Table]:
        base = self.path / area
        if not base.exists():
            return []
        out = []
        for directory in sorted(base.glob("date=*")):
            if oldest is None or dt.date.fromisoformat(directory.name[5:]) >= oldest:
                out.extend(feather.read_table(f) for f in sorted(directory.glob("*.arrow")))
        return out

    def drop_before(self, area: str, oldest: dt.date) -> None:
        base = self.path / area
        for directory in base.glob("date=*") if base.exists() else ():
            if dt.date.fromisoformat(directory.name[5:]) < oldest:
                shutil.rmtree(directory, ignore_errors=True)


def latest_by(records: list[dict], key: str) -> list[dict]:
    """Records deduplicated on ``key`` (the last copy wins), in first-seen order."""
    seen: dict = {}
    for r in records:
        seen[r.get(key)] = r
    return list(seen.values())
