"""``mlgate audit list|verify``: read and check the audit trail of admin actions (admin only)."""

from __future__ import annotations

import argparse
import sys

import orjson

from mlgate.commands import config_of
from mlgate.timeparse import parse_time

_COLUMNS = ("seq", "ts", "identity", "action", "target", "outcome")


def _log(args: argparse.Namespace):
    from access.audit import AuditLog
    from mlgate.credentials import cli_identity

    cfg = config_of(args)
    cli_identity(cfg, args.token_file)  # reading the trail needs an admin credential too
    return AuditLog(cfg.audit_root)


def _row(record: dict) -> list[str]:
    who = record.get("identity")
    name = who["name"] if who else f"({record.get('detail', {}).get('presented', 'unknown')})"
    return [str(record["seq"]), record["ts"], name, record["action"], record["target"], record["outcome"]]


def _list(args: argparse.Namespace) -> int:
    log = _log(args)
    records = log.records(parse_time(args.since, "--since") if args.since else None)
    if args.json:
        sys.stdout.write("".join(orjson.dumps(r).decode() + "\n" for r in records))
        return 0
    rows = [list(_COLUMNS)] + [_row(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _verify(args: argparse.Namespace) -> int:
    report = _log(args).verify()
    if report.ok:
        print(f"audit trail intact: {report.count} records (last hash {report.last_hash})")
        return 0
    print(f"audit trail broken at line {report.line}: {report.problem} "
          f"({report.count} records before it verify)", file=sys.stderr)
    return 1


def _token_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token-file", help="file holding an admin credential (default: MLGATE_TOKEN, "
                   "MLGATE_TOKEN_FILE, then the admin key mlgate up made)")


def register(sub) -> None:
    audit = sub.add_parser("audit", help="the audit trail of admin actions (needs an admin credential)")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = asub.add_parser("list", help="admin actions, oldest first: seq, time, identity, action, target, outcome")
    p.add_argument("--since", help="only records at or after this time (ISO 8601, or 15m, 2h, 1d ago)")
    p.add_argument("--json", action="store_true", help="whole records as JSON lines")
    _token_file(p)
    p.set_defaults(fn=_list)
    p = asub.add_parser("verify", help="check every record's hash and the chain; exit 1 naming the first bad one")
    _token_file(p)
    p.set_defaults(fn=_verify)
