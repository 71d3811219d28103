"""``mlgate tokens create|list|revoke``: the API keys mlgate issues (each action needs an
``admin`` credential and is recorded in the audit trail)."""

from __future__ import annotations

import argparse
import sys

import orjson

from mlgate.commands import config_of


def _store(cfg):
    from access.keys import KeyStore

    return KeyStore(cfg.serving.auth.keys_file, cfg.serving.auth.reload_interval_s)


def _create(args: argparse.Namespace) -> int:
    from mlgate.credentials import admin_action
    from mlgate.timeparse import parse_duration_s

    cfg = config_of(args)
    ttl_s = parse_duration_s(args.ttl, "--ttl") if args.ttl else None
    detail = {"name": args.name, "scopes": args.scope, "ttl": args.ttl, "rate_limit_per_s": args.rate_limit}
    with admin_action(cfg, args.token_file, "token.create", args.name, detail) as action:
        record, key = _store(cfg).create(args.name, args.scope or [], ttl_s, args.rate_limit)
        action.detail["key_id"] = record.id
    expires = f", expires {record.expires}" if record.expires else ""
    print(f"created key {record.id} ({record.name}: {' '.join(record.scopes)}{expires}); it is shown only "
          f"once:", file=sys.stderr)
    print(key)
    return 0


def _list(args: argparse.Namespace) -> int:
    from contracts.clock import wall_clock_s
    from mlgate.credentials import cli_identity

    cfg = config_of(args)
    cli_identity(cfg, args.token_file)
    now_s = wall_clock_s()
    records = _store(cfg).records()
    if args.json:
        print(orjson.dumps([{k: v for k, v in r.to_json().items() if k != "hash"} | {"status": r.status(now_s)}
                            for r in records], option=orjson.OPT_INDENT_2).decode())
        return 0
    print("id\tname\tstatus\tscopes\tcreated\texpires")
    for r in records:
        print(f"{r.id}\t{r.name}\t{r.status(now_s)}\t{','.join(r.scopes)}\t{r.created}\t{r.expires or '-'}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from mlgate.credentials import admin_action

    cfg = config_of(args)
    with admin_action(cfg, args.token_file, "token.revoke", args.key) as action:
        revoked = _store(cfg).revoke(args.key)
        action.detail["key_ids"] = [r.id for r in revoked]
    for r in revoked:
        print(f"revoked key {r.id} ({r.name}); replicas refuse it within "
              f"{cfg.serving.auth.reload_interval_s:g}s")
    return 0


def register(sub) -> None:
    tokens = sub.add_parser("tokens", help="API keys: create, list, revoke (needs an admin credential)")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    p = tsub.add_parser("create", help="issue a key and print it (once: only its hash is stored)")
    p.add_argument("--name", required=True, help="who or what the key is for (a name: letters, digits, . _ -)")
    p.add_argument("--scope", action="append", metavar="SCOPE",
                   help="infer:MODEL, infer:*, feedback:MODEL, feedback:*, metrics:read or admin (repeatable)")
    p.add_argument("--ttl", help="lifetime, e.g. 30d, 12h (default: no expiry)")
    p.add_argument("--rate-limit", type=float, metavar="PER_S", help="requests per second on each replica")
    p.set_defaults(fn=_create)
    p = tsub.add_parser("list", help="keys with their names, scopes, status and expiry (never the keys)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(fn=_list)
    p = tsub.add_parser("revoke", help="revoke a key by its id, or every active key with a name")
    p.add_argument("key", metavar="ID_OR_NAME")
    p.set_defaults(fn=_revoke)
    for action in (tsub.choices["create"], tsub.choices["list"], tsub.choices["revoke"]):
        action.add_argument("--token-file", help="file holding the admin credential (default: MLGATE_TOKEN, "
                            "MLGATE_TOKEN_FILE, then serving.auth.admin_key_file)")
