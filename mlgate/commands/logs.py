"""``mlgate logs read|tail MODEL``: prediction-log records as JSON lines."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

import orjson

from mlgate.commands import config_of
from mlgate.timeparse import parse_time


def _print(table, limit: int | None = None) -> int:
    rows = table.to_pylist()
    if limit is not None:
        rows = rows[-limit:]
    out = sys.stdout
    for row in rows:
        out.write(orjson.dumps(row, default=str).decode() + "\n")
    out.flush()
    return len(rows)


def _columns(args: argparse.Namespace) -> list[str] | None:
    return args.columns.split(",") if args.columns else None


def _read(args: argparse.Namespace) -> int:
    from contracts.predlog import read_logs

    since = parse_time(args.since, "--since") if args.since else None
    until = parse_time(args.until, "--until") if args.until else None
    table = read_logs(config_of(args).log_root, args.model, since, until, _columns(args))
    _print(table.slice(0, args.limit) if args.limit else table)
    return 0


def _tail(args: argparse.Namespace) -> int:
    from contracts.clock import utc_now
    from contracts.predlog import list_segments, read_segments

    root = config_of(args).log_root
    since = parse_time(args.since, "--since") if args.since else utc_now() - dt.timedelta(days=1)
    seen: set[str] = set()
    first = True
    while True:
        new = [s for s in list_segments(root, args.model, since) if s.path not in seen]
        seen.update(s.path for s in new)
        if new:
            _print(read_segments(root, new, _columns(args), since), args.lines if first else None)
        first = False
        if not args.follow:
            return 0
        time.sleep(args.interval_s)


def register(sub) -> None:
    logs = sub.add_parser("logs", help="read the prediction logs")
    lsub = logs.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    for name, fn, text in (("read", _read, "records of MODEL in a time range, as JSON lines"),
                           ("tail", _tail, "the newest records of MODEL (--follow for new segments)")):
        p = lsub.add_parser(name, help=text)
        p.add_argument("model")
        p.add_argument("--since", help="ISO time or duration ago (15m, 2h, 1d)")
        p.add_argument("--columns", help="comma-separated columns (default: all)")
        if name == "read":
            p.add_argument("--until", help="ISO time or duration ago (end, exclusive)")
            p.add_argument("--limit", type=int, help="at most this many records")
        else:
            p.add_argument("-n", "--lines", type=int, default=20, help="records to show first (default 20)")
            p.add_argument("-f", "--follow", action="store_true", help="keep printing new segments")
            p.add_argument("--interval-s", type=float, default=1.0, help="poll interval with --follow")
        p.set_defaults(fn=fn)
