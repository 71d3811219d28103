"""What each gateway replica holds, as it reports it: one small JSON file per replica.

A replica writes ``{log_root}/.replicas/{source}.json`` whenever its live model table
changes, and at least every ``heartbeat_s``; it removes the file when it stops. Readers
(``mlgate models status``) take a file older than a few heartbeats as a replica that died
without a goodbye. The record::

    {"source": ..., "host": ..., "pid": ..., "updated_at": unix_s, "heartbeat_s": s,
     "models": {name: {"serving": [v...], "draining": [v...],
                       "failed": {"v": {"error": ..., "at": unix_s, "attempts": n}}}}}
"""

from __future__ import annotations

import json

import pyarrow.fs as pafs

from contracts import fs as rfs

DIR = ".replicas"
STALE_HEARTBEATS = 3  # a record not refreshed for this many heartbeats is stale


def _dir(root: str) -> tuple[pafs.FileSystem, str]:
    fs, path = rfs.resolve(root)
    return fs, f"{path}/{DIR}"


def write_status(root: str, source: str, record: dict) -> None:
    fs, folder = _dir(root)
    fs.create_dir(folder, recursive=True)
    rfs.write_atomic(fs, f"{folder}/{source}.json", json.dumps(record, sort_keys=True).encode())


def remove_status(root: str, source: str) -> None:
    fs, folder = _dir(root)
    try:
        fs.delete_file(f"{folder}/{source}.json")
    except (FileNotFoundError, OSError):
        pass


def read_statuses(root: str, now_s: float) -> list[dict]:
    """Every replica's record, each with ``stale`` set; unreadable files are skipped."""
    fs, folder = _dir(root)
    try:
        infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    except OSError:
        return []
    records = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.base_name.endswith(".json"):
            continue
        try:
            record = json.loads(rfs.read_bytes(fs, info.path))
        except (OSError, ValueError):
            continue
        age_s = now_s - float(record.get("updated_at", 0))
        record["stale"] = age_s > STALE_HEARTBEATS * float(record.get("heartbeat_s", 10))
        records.append(record)
    return sorted(records, key=lambda r: r.get("source", ""))


def live_statuses(root: str, now_s: float) -> list[dict]:
    """The records of the replicas that are alive (not stale) at ``now_s``."""
    return [r for r in read_statuses(root, now_s) if not r["stale"]]
