"""``mlgate rollout start|status|pause|resume|abort|list``: a candidate version brought to
traffic in steps by the rollout controller, checked at each step on live evidence.

``start``, ``pause``, ``resume`` and ``abort`` need an admin credential and are audited; they
write the model's rollout history in the registry, which the controller follows (the one
``mlgate up`` runs, or, with ``--address``, the detached actor on that cluster, started
when missing). ``abort`` also clears the traffic policy itself, so it works while no
controller runs.
"""

from __future__ import annotations

import argparse
import json

from contracts.clock import iso_s
from mlgate.commands import acting_flags, config_of


def _steps(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected percentages like 5,25,50,100") from None


def _seconds(text: str) -> float:
    from contracts.errors import InvalidInput
    from mlgate.timeparse import parse_duration_s

    try:
        return float(text)
    except ValueError:
        try:
            return parse_duration_s(text, "duration")
        except InvalidInput:
            raise argparse.ArgumentTypeError(f"{text!r}: expected seconds (600) or a duration (10m)") from None


def _book(cfg):
    from registry import Registry
    from registry.rollouts import RolloutBook

    return RolloutBook(Registry(cfg.registry_root))


_FLAGS = {"steps_pct": "--steps", "step_s": "--step-s", "shadow_first_s": "--shadow-first",
          "sticky_key": "--sticky-key"}


def _spec(args: argparse.Namespace, cfg):
    """The rollout the flags describe; InvalidInput naming the flag when it is not a valid one."""
    from contracts.errors import InvalidInput
    from control.rollout.actions import plan_with

    try:
        return plan_with(_book(cfg).registry, args.name, args.version, cfg.rollout, force=args.force,
                         reason=args.reason or "", steps_pct=args.steps, step_s=args.step_s,
                         shadow_first_s=args.shadow_first, sticky_key=args.sticky_key)
    except InvalidInput as exc:
        field, _, why = str(exc).partition(": ")
        raise InvalidInput(f"{_FLAGS.get(field, field)}: {why}") from None


def _ensure_controller(cfg) -> str:
    """Where the controller runs, starting it on ``ray.address``'s cluster when missing."""
    if not cfg.ray.address:
        return "the controller mlgate up runs picks it up"
    from mlgate import raycluster

    raycluster.prepare_env(cfg.ray)
    raycluster.init(cfg.ray, log_to_driver=False)
    from control.rollout.service import ensure_actor, roots_of

    ensure_actor(cfg.rollout, roots_of(cfg), cfg.monitoring.alerts)
    return f"the controller on {cfg.ray.address} runs it"


def _start(args: argparse.Namespace) -> int:
    from mlgate.credentials import admin_action

    cfg = config_of(args, **{"ray.address": args.address})
    spec = _spec(args, cfg)
    detail = {"version": args.version, "spec": spec.model_dump(mode="json"), "on_behalf_of": args.by}
    with admin_action(cfg, args.token_file, "rollout.start", f"{args.name}/{args.version}", detail) as act:
        event = _book(cfg).start(spec, actor=act.identity.name, actor_id=act.identity.id)
        act.detail["rollout_seq"] = event.seq
    where = _ensure_controller(cfg) if not args.no_controller else "no controller was started (--no-controller)"
    shadow = f"shadow {spec.shadow_first_s:g}s, " if spec.shadow_first_s else ""
    print(f"rollout {spec.rollout_id}: {spec.model} version {spec.candidate} against production {spec.baseline}: "
          f"{shadow}steps {','.join(f'{s:g}' for s in spec.steps_pct)}% every {spec.step_s:g}s; {where}")
    return 0


def _change(args: argparse.Namespace, kind: str) -> int:
    from control.rollout.actions import change
    from mlgate.credentials import admin_action

    cfg = config_of(args)
    book = _book(cfg)
    rollout_id = book.get(args.name, args.id).spec.rollout_id
    detail = {"rollout_id": rollout_id, "reason": args.reason or "", "on_behalf_of": args.by}
    with admin_action(cfg, args.token_file, f"rollout.{kind}", args.name, detail) as act:
        done = change(book, args.name, rollout_id, kind, actor=act.identity.name, actor_id=act.identity.id,
                      reason=args.reason or "")
        act.detail.update(rollout_seq=done.event.seq, traffic_seq=done.traffic_seq)
    print(f"rollout {rollout_id} of {args.name}: {kind}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from control.rollout.actions import evaluations
    from control.rollout.service import roots_of

    cfg = config_of(args)
    state = _book(cfg).get(args.name, args.id)
    records = evaluations(roots_of(cfg).state_root, state, args.last)
    if args.json:
        print(json.dumps({**state.to_dict(), "events": [e.model_dump(mode="json") for e in state.events],
                          "evaluations": records}, indent=2))
        return 0
    s = state.spec
    print(f"rollout {s.rollout_id}: {s.model} version {s.candidate} against {s.baseline}: {state.status}"
          + (f" at {state.phase}" if state.phase and state.active else "") + (f" ({state.reason})" if state.reason
                                                                            else ""))
    for e in state.events:
        what = e.phase if e.kind == "phase" else e.kind
        print(f"  {iso_s(e.at)}  {what:<12} {e.actor}  {e.reason}".rstrip())
    for r in records:
        if r.get("event") != "evaluation":
            continue
        checks = ", ".join(f"{c['name']} {c['verdict']}" + (f" {c['value']:.4g}" if c["value"] is not None else "")
                           for c in r["checks"])
        print(f"  {r['at']}  {r['phase']:<12} {r['action']}: {r['reason']} [{checks}]")
    return 0


def _list(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    book = _book(cfg)
    models = [args.name] if args.name else book.registry.list_models()
    print("model\trollout\tcandidate\tbaseline\tstatus\tphase\tstarted")
    for model in models:
        for st in book.rollouts(model).values():
            if args.active and not st.active:
                continue
            print(f"{model}\t{st.spec.rollout_id}\t{st.spec.candidate}\t{st.spec.baseline}\t{st.status}\t"
                  f"{st.phase or '-'}\t{iso_s(st.started_at)}")
    return 0


def _id_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="MODEL", help="the model")
    p.add_argument("--id", help="a rollout id (default: the active rollout, else the newest)")


def register(sub) -> None:
    r = sub.add_parser("rollout", help="bring a version to traffic in checked steps: shadow, canary, production")
    rsub = r.add_subparsers(dest="rollout_command", required=True, metavar="ACTION")
    p = rsub.add_parser("start", help="start a rollout (needs an admin credential; audited)",
                        description="Start rolling VERSION out against the production version: an optional shadow "
                        "phase, then each canary step for --step-s; each step passes on live evidence (errors, "
                        "latency, prediction divergence, shadow agreement, live accuracy) or the candidate is "
                        "rolled back at once. The last step (100) promotes it.")
    p.add_argument("name", metavar="MODEL", help="the model")
    p.add_argument("version", metavar="VERSION", type=int, help="the candidate version (gated, or --force)")
    p.add_argument("--steps", type=_steps, help="canary shares in percent, ending at 100 (default: rollout.steps_pct)")
    p.add_argument("--step-s", type=_seconds, help="time at each step, seconds or 10m (default: rollout.step_s)")
    p.add_argument("--shadow-first", type=_seconds, metavar="SECONDS",
                   help="a shadow phase this long first: the candidate gets copies of requests and answers none")
    p.add_argument("--sticky-key", metavar="HEADER|param:NAME",
                   help="keep each caller on one version during the canary steps (default: random per request)")
    p.add_argument("--force", action="store_true", help="roll out a version whose gate did not pass (needs --reason)")
    p.add_argument("--reason", help="why (recorded)")
    p.add_argument("--address", help="Ray cluster whose controller runs it (started there when missing; default: "
                   "ray.address, else the controller of mlgate up)")
    p.add_argument("--no-controller", action="store_true", help="only record the rollout")
    acting_flags(p)
    p.set_defaults(fn=_start)
    for name, kind, text in [("pause", "paused", "hold the rollout where it is"),
                             ("resume", "resumed", "go on; the step's evidence window restarts"),
                             ("abort", "aborted", "end it: the candidate is taken out of traffic")]:
        p = rsub.add_parser(name, help=f"{text} (admin; audited)")
        _id_flag(p)
        p.add_argument("--reason", help="why (recorded)")
        acting_flags(p)
        p.set_defaults(fn=lambda a, k=kind: _change(a, k))
    p = rsub.add_parser("status", help="a rollout's steps, decisions and the evidence behind them")
    _id_flag(p)
    p.add_argument("--last", type=int, default=20, help="show this many evaluations (default 20)")
    p.add_argument("--json", action="store_true", help="everything as JSON")
    p.set_defaults(fn=_status)
    p = rsub.add_parser("list", help="rollouts, newest last")
    p.add_argument("name", metavar="MODEL", nargs="?", help="one model (default: all)")
    p.add_argument("--active", action="store_true", help="only those in progress")
    p.set_defaults(fn=_list)
