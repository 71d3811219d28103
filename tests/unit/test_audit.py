"""The audit trail (access.audit): a hash chain that finds edited, removed, reordered and torn records."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import stat

import pytest

from access.audit import GENESIS, AuditLog
from access.identity import ADMIN, Identity
from contracts.errors import ConfigError
from tests.clock import ManualClock

ANA = Identity("key:0123456789abcdef", "ana", "key", frozenset({ADMIN}))
T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def _fill(root, n: int = 4) -> AuditLog:
    log = AuditLog(str(root), ManualClock(T0))
    for i in range(n):
        log.append(ANA, "models.promote", f"demo/{i + 1}", "ok", {"reason": f"r{i}"})
    return log


def _lines(log: AuditLog) -> list[str]:
    with open(log.path) as f:
        return f.read().splitlines(keepends=True)


def _write(log: AuditLog, lines: list[str]) -> None:
    with open(log.path, "w") as f:
        f.write("".join(lines))


def test_append_writes_a_chained_private_record(tmp_path):
    log = AuditLog(str(tmp_path / "audit"), ManualClock(T0))
    first = log.append(ANA, "models.promote", "demo/1", "ok", {"on_behalf_of": "bo"})
    second = log.append(None, "models.rollback", "demo", "refused", {"presented": "none"})
    assert first["seq"] == 1 and first["prev"] == GENESIS and first["ts"] == "2026-11-20T12:00:00.000+00:00"
    assert first["identity"] == {"id": "key:0123456789abcdef", "name": "ana", "kind": "key"}
    assert second["seq"] == 2 and second["identity"] is None and second["prev"] != GENESIS
    assert log.records() == [first, second]
    assert stat.S_IMODE((tmp_path / "audit").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "audit" / "audit.jsonl").stat().st_mode) == 0o600
    report = log.verify()
    assert report.ok and report.count == 2 and report.problem is None


def test_an_unknown_outcome_is_refused(tmp_path):
    with pytest.raises(Exception, match="outcome"):
        AuditLog(str(tmp_path)).append(ANA, "x", "y", "maybe")


def test_an_empty_or_missing_trail_verifies(tmp_path):
    log = AuditLog(str(tmp_path / "none"))
    assert log.records() == [] and log.verify().ok and log.verify().count == 0


def test_the_chain_continues_across_instances(tmp_path):
    _fill(tmp_path, 2)
    again = AuditLog(str(tmp_path), ManualClock(T0))
    assert again.append(ANA, "models.rollback", "demo", "failed", {"error": "no previous"})["seq"] == 3
    assert again.verify().ok and again.verify().count == 3


def test_the_tail_is_found_past_a_long_record(tmp_path):
    log = AuditLog(str(tmp_path))
    log.append(ANA, "a", "t", "ok", {"blob": "x" * 20_000})
    log.append(ANA, "b", "t", "ok", {"blob": "y" * 9_000})
    assert log.append(ANA, "c", "t", "ok")["seq"] == 3 and log.verify().ok


def _append_many(root: str, worker: int, n: int) -> None:
    log = AuditLog(root)
    for i in range(n):
        log.append(ANA, "models.promote", f"w{worker}/{i}", "ok")


def test_concurrent_appends_from_processes_keep_one_chain(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    report = AuditLog(str(tmp_path)).verify()
    assert report.ok and report.count == 100, report
    targets = {r["target"] for r in AuditLog(str(tmp_path)).records()}
    assert len(targets) == 100


def test_an_edited_record_is_found(tmp_path):
    log = _fill(tmp_path)
    lines = _lines(log)
    lines[1] = lines[1].replace('"ana"', '"eve"')
    _write(log, lines)
    report = log.verify()
    assert not report.ok and report.line == 2 and report.count == 1 and "edited" in report.problem


def test_a_reformatted_record_is_found(tmp_path):
    log = _fill(tmp_path)
    lines = _lines(log)
    lines[2] = json.dumps(json.loads(lines[2]), indent=1).replace("\n", " ") + "\n"
    _write(log, lines)
    report = log.verify()
    assert not report.ok and report.line == 3 and "rewritten" in report.problem


def test_a_removed_record_is_found(tmp_path):
    log = _fill(tmp_path)
    lines = _lines(log)
    _write(log, lines[:1] + lines[2:])
    report = log.verify()
    assert not report.ok and report.line == 2 and "seq 3 where 2 was expected" in report.problem
    assert "removed" in report.problem


def test_a_removed_first_record_is_found(tmp_path):
    log = _fill(tmp_path)
    _write(log, _lines(log)[1:])
    report = log.verify()
    assert not report.ok and report.line == 1 and report.count == 0


def test_reordered_records_are_found(tmp_path):
    log = _fill(tmp_path)
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    _write(log, lines)
    report = log.verify()
    assert not report.ok and report.line == 2 and "seq 3 where 2 was expected" in report.problem


def test_a_replaced_record_breaks_the_prev_chain(tmp_path):
    """A record with the right seq and a valid hash of its own, taken from another trail:
    its ``prev`` names another record before it."""
    log = _fill(tmp_path)
    foreign = AuditLog(str(tmp_path / "other"), ManualClock(T0))
    for target in ("x", "y", "z"):
        foreign.append(ANA, "models.promote", target, "ok")
    lines = _lines(log)
    lines[2] = _lines(foreign)[2]
    _write(log, lines)
    report = log.verify()
    assert not report.ok and report.line == 3 and "does not chain" in report.problem


def test_an_unparsable_line_is_found(tmp_path):
    log = _fill(tmp_path)
    lines = _lines(log)
    lines.insert(2, "not json\n")
    _write(log, lines)
    report = log.verify()
    assert not report.ok and report.line == 3 and "not a record" in report.problem
    with pytest.raises(ConfigError, match="line 3 is not a record"):
        log.records()


def test_a_torn_last_line_is_reported_and_blocks_appends(tmp_path):
    log = _fill(tmp_path, 3)
    lines = _lines(log)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    _write(log, lines)
    report = log.verify()
    assert not report.ok and report.line == 3 and report.count == 2 and "partial record" in report.problem
    with pytest.raises(ConfigError, match="partial record"):
        log.append(ANA, "models.promote", "demo/9", "ok")
    assert _lines(log)[-1] == lines[-1]  # nothing appended after the torn line


def test_since_filters_by_the_injected_clock(tmp_path):
    clock = ManualClock(T0)
    log = AuditLog(str(tmp_path), clock)
    log.append(ANA, "a", "old", "ok")
    clock.advance(3600)
    log.append(ANA, "b", "new", "ok")
    assert [r["target"] for r in log.records(since=T0 + dt.timedelta(minutes=30))] == ["new"]
    assert [r["target"] for r in log.records(since=T0)] == ["old", "new"]
    assert log.records(since=T0 + dt.timedelta(hours=2)) == []
