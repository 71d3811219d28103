"""``mlgate models policy show|set|clear NAME``: which versions of a model the replicas serve,
changed at run time (every replica within ``serving.reload_interval_s``, no restart);
``clear`` returns to the configured ``version_policy``. set and clear need an admin
credential and are audited (``models.policy``)."""

from __future__ import annotations

import argparse
import json

from mlgate.commands import acting_flags, config_of


def _versions(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected version numbers like 1,3") from None


def _book(cfg):
    from registry import Registry
    from registry.version_policies import PolicyBook

    return PolicyBook(Registry(cfg.registry_root))


def _show(args: argparse.Namespace) -> int:
    from serving.selection import version_policy

    cfg = config_of(args)
    book = _book(cfg)
    book.registry.get(args.name)  # NotFound for a typo
    event = book.last(args.name)
    policy = version_policy(book.registry, cfg.serving, args.name)
    out = {"model": args.name, "policy": policy.model_dump(mode="json"),
           "source": "registry" if event and event.policy else "config",
           "serves_now": [mv.version for mv in book.registry.served(args.name, policy)]}
    if event:
        out |= {"seq": event.seq, "set_by": event.actor, "reason": event.reason}
    print(json.dumps(out, indent=2))
    return 0


def _policy(args: argparse.Namespace):
    from contracts.errors import InvalidInput
    from registry.store import VersionPolicy

    prefer = None if args.no_prefer_stage else args.prefer_stage
    if args.specific:
        return VersionPolicy(policy="specific", versions=args.specific, prefer_stage=prefer)
    if args.all:
        return VersionPolicy(policy="all", prefer_stage=prefer)
    if args.latest is None:
        raise InvalidInput("--latest, --all or --specific: set needs one")
    return VersionPolicy(policy="latest", latest_n=args.latest, prefer_stage=prefer)


def _apply(args: argparse.Namespace, policy) -> int:
    from mlgate.credentials import admin_action

    cfg = config_of(args)
    detail = {"policy": policy.model_dump(mode="json") if policy else None, "reason": args.reason or "",
              "on_behalf_of": args.by}
    with admin_action(cfg, args.token_file, "models.policy", args.name, detail) as act:
        event = _book(cfg).set(args.name, policy, actor=act.identity.name, actor_id=act.identity.id,
                               reason=args.reason or "")
        act.detail["policy_seq"] = event.seq
    what = json.dumps(policy.model_dump(mode="json")) if policy else "the configured policy"
    print(f"{args.name} version policy (seq {event.seq}): {what}")
    return 0


def add_policy_command(msub) -> None:
    p = msub.add_parser("policy", help="which versions replicas serve, changed at run time (no restart)")
    psub = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    s = psub.add_parser("show", help="the policy in force, where it comes from, and the versions it admits now")
    s.add_argument("name", metavar="NAME")
    s.set_defaults(fn=_show)
    s = psub.add_parser("set", help="replace the policy (admin; audited)")
    s.add_argument("name", metavar="NAME")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--latest", type=int, metavar="N", help="the newest N versions (of the preferred stage, "
                       "when it has any)")
    which.add_argument("--all", action="store_true", help="every version")
    which.add_argument("--specific", type=_versions, metavar="V,V", help="exactly these versions")
    s.add_argument("--prefer-stage", default="production", help="for --latest: choose among this stage's "
                   "versions when it has any (default production)")
    s.add_argument("--no-prefer-stage", action="store_true", help="for --latest: ignore stages")
    s.add_argument("--reason", help="why (recorded)")
    acting_flags(s)
    s.set_defaults(fn=lambda a: _apply(a, _policy(a)))
    s = psub.add_parser("clear", help="back to the configured version_policy (admin; audited)")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--reason", help="why (recorded)")
    acting_flags(s)
    s.set_defaults(fn=lambda a: _apply(a, None))
