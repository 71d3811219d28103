"""``mlgate traffic show|history|set|clear``: a model's traffic policy (canary shares, sticky
assignment, shadow copies). ``set`` and ``clear`` need an admin credential and are audited."""

from __future__ import annotations

import argparse
import json
import sys

from contracts.clock import iso_s
from mlgate.commands import acting_flags, config_of

_FLAGS = {"canaries": "--canary", "shadows": "--shadow", "sticky_key": "--sticky-key"}


def _book(args: argparse.Namespace, cfg=None):
    from registry import Registry
    from registry.traffic import TrafficBook

    return TrafficBook(Registry((cfg or config_of(args)).registry_root))


def _reading(args: argparse.Namespace):
    """The book, for a model that exists (a typo is NotFound, not an empty policy)."""
    book = _book(args)
    book.registry.get(args.name)
    return book


def _version_share(text: str) -> tuple[int, float]:
    """``VERSION=SHARE`` with SHARE a fraction (0.1) or a percentage (10%)."""
    version, sep, share = text.partition("=")
    try:
        if not sep:
            raise ValueError
        value = float(share[:-1]) / 100 if share.endswith("%") else float(share)
        return int(version), value
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected VERSION=SHARE, e.g. 2=0.1 or 2=10%") from None


def _shares(pairs: list[tuple[int, float]] | None, flag: str) -> dict[int, float]:
    from contracts.errors import InvalidInput

    shares: dict[int, float] = {}
    for version, share in pairs or []:
        if version in shares:
            raise InvalidInput(f"{flag}: version {version} given twice")
        shares[version] = share
    return shares


def _policy(args: argparse.Namespace):
    """The policy the flags describe; InvalidInput naming the flag when it is not a valid one."""
    from pydantic import ValidationError

    from contracts.errors import InvalidInput
    from registry.traffic import TrafficPolicy

    if not args.canary and not args.shadow:
        raise InvalidInput("--canary or --shadow: set needs at least one (mlgate traffic clear removes the policy)")
    try:
        return TrafficPolicy(canaries=_shares(args.canary, "--canary"), shadows=_shares(args.shadow, "--shadow"),
                             sticky_key=args.sticky_key)
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = _FLAGS.get(err["loc"][0], "--canary/--shadow") if err["loc"] else "--canary/--shadow"
        where = f" version {err['loc'][1]}" if len(err["loc"]) > 1 else ""
        why = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"].lower()
        raise InvalidInput(f"{flag}{where}: {why}") from None


def _pct(share: float) -> str:
    return f"{share * 100:g}%"


def _describe(policy, production: int | None) -> str:
    """One line for people: who gets what."""
    primary = f"production version {production}" if production else "the primary version"
    rest = 1 - sum(policy.canaries.values())
    parts = [f"{primary} answers {_pct(rest)}" if policy.canaries else f"{primary} answers every request"]
    parts += [f"canary {v} {_pct(s)}" for v, s in sorted(policy.canaries.items())]
    parts += [f"shadow {v} copies {_pct(s)}" for v, s in sorted(policy.shadows.items())]
    if policy.canaries:
        parts.append(f"sticky by {policy.sticky_key}" if policy.sticky_key else "random per request")
    return "; ".join(parts)


def _production(book, name: str) -> int | None:
    return book.registry.stages.state(name).production


def _show(args: argparse.Namespace) -> int:
    from registry.traffic import TrafficPolicy

    book = _reading(args)
    event = book.last(args.name)
    policy = event.policy if event else TrafficPolicy()
    out = {"model": args.name, "production": _production(book, args.name), "seq": event.seq if event else 0,
           "policy": policy.model_dump(mode="json")}
    if event:
        out |= {"set_by": event.actor, "at": iso_s(event.at), "reason": event.reason}
    print(json.dumps(out, indent=2))
    return 0


def _history(args: argparse.Namespace) -> int:
    book = _reading(args)
    events = book.history(args.name)
    if args.json:
        sys.stdout.write("".join(e.model_dump_json() + "\n" for e in events))
        return 0
    print("seq\tat\tactor\tpolicy\treason")
    for e in events:
        policy = _describe(e.policy, None) if e.policy.versions() else "(cleared)"
        print(f"{e.seq}\t{iso_s(e.at)}\t{e.actor}\t{policy}\t{e.reason}")
    return 0


def _apply(args: argparse.Namespace, policy, action: str) -> int:
    from mlgate.credentials import admin_action

    cfg = config_of(args)
    detail = {"policy": policy.model_dump(mode="json"), "reason": args.reason or "", "on_behalf_of": args.by}
    with admin_action(cfg, args.token_file, action, args.name, detail) as act:
        book = _book(args, cfg)
        event = book.set(args.name, policy, actor=act.identity.name, actor_id=act.identity.id,
                         reason=args.reason or "")
        act.detail["traffic_seq"] = event.seq
    print(f"{event.model} traffic (seq {event.seq}): {_describe(event.policy, _production(book, event.model))}")
    return 0


def _set(args: argparse.Namespace) -> int:
    return _apply(args, _policy(args), "traffic.set")


def _clear(args: argparse.Namespace) -> int:
    from registry.traffic import TrafficPolicy

    return _apply(args, TrafficPolicy(), "traffic.clear")


def register(sub) -> None:
    traffic = sub.add_parser("traffic", help="a model's traffic policy: canary shares, sticky assignment, shadows")
    tsub = traffic.add_subparsers(dest="traffic_command", required=True, metavar="ACTION")
    p = tsub.add_parser("show", help="the policy in force (JSON), with the production version it splits against")
    p.add_argument("name", metavar="NAME", help="the model")
    p.set_defaults(fn=_show)
    p = tsub.add_parser("history", help="every change of the policy, oldest first")
    p.add_argument("name", metavar="NAME", help="the model")
    p.add_argument("--json", action="store_true", help="whole events as JSON lines")
    p.set_defaults(fn=_history)
    p = tsub.add_parser("set", help="replace the policy (needs an admin credential; audited)",
                        description="Replace the traffic policy: the flags describe all of it; what they leave out "
                        "is gone. Requests that pin a version in their URL are not split.")
    p.add_argument("name", metavar="NAME", help="the model")
    p.add_argument("--canary", action="append", type=_version_share, metavar="V=SHARE",
                   help="version V answers SHARE of the unpinned requests (0.1 or 10%%; repeatable; shares sum "
                   "to at most 1, the production version answers the rest)")
    p.add_argument("--shadow", action="append", type=_version_share, metavar="V=SHARE",
                   help="version V gets a copy of SHARE of the requests, its answers only logged (repeatable)")
    p.add_argument("--sticky-key", metavar="HEADER|param:NAME",
                   help="keep each caller on one version by this header or request parameter (default: a "
                   "random draw per request)")
    p.add_argument("--reason", help="why (recorded)")
    acting_flags(p)
    p.set_defaults(fn=_set)
    p = tsub.add_parser("clear", help="remove canaries and shadows: production answers everything (audited)")
    p.add_argument("name", metavar="NAME", help="the model")
    p.add_argument("--reason", help="why (recorded)")
    acting_flags(p)
    p.set_defaults(fn=_clear)
