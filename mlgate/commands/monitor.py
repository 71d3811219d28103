"""``mlgate monitor run|stop|check|report|history``: drift monitoring of the prediction logs."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import orjson

from mlgate.commands import config_of


def _setup(args: argparse.Namespace, **overrides):
    """(config, monitoring section with absolute state root, Roots)."""
    from monitoring.retrain import Roots

    cfg = config_of(args, **overrides)
    mon = cfg.monitoring
    if "://" not in mon.state_root:
        mon = mon.model_copy(update={"state_root": str(Path(mon.state_root).expanduser().resolve())})
    return cfg, mon, Roots(cfg.registry_root, cfg.log_root, cfg.data_root, cfg.runs_root)


def _range(args: argparse.Namespace) -> tuple[dt.datetime, dt.datetime]:
    from contracts.clock import utc_now
    from contracts.errors import InvalidInput
    from mlgate.timeparse import parse_time

    until = parse_time(args.until, "--until") if args.until else utc_now()
    since = parse_time(args.since, "--since")
    if since >= until:
        raise InvalidInput("--since: must be before --until")
    return since, until


def _run(args: argparse.Namespace) -> int:
    from contracts.errors import InvalidInput
    from mlgate.timeparse import parse_duration_s

    every = parse_duration_s(args.every, "--every") if args.every else None
    cfg, mon, roots = _setup(args, **{"ray.address": args.address, "monitoring.interval_s": every})
    if args.detach and not cfg.ray.address:
        raise InvalidInput("--detach: needs --address (a local Ray stops with this command)")
    if not cfg.ray.address and mon.retrain.enabled and not mon.retrain.job_address:
        local_api = f"http://127.0.0.1:{cfg.ray.dashboard_port}"
        mon = mon.model_copy(update={"retrain": mon.retrain.model_copy(update={"job_address": local_api})})
    return _serve(cfg, mon, roots, args.model, args.detach)


def _serve(cfg, mon, roots, model: str | None, detach: bool) -> int:
    """Start the actor; unless detached, print its findings until SIGINT/SIGTERM, then stop it."""
    import signal
    import threading

    from mlgate import raycluster

    raycluster.prepare_env(cfg.ray)  # before ray is imported
    import ray

    from monitoring.service import actor_name, start_actor, stop_actor
    from serving.hub_actor import get_or_create_hub  # the CLI layer creates the hub, monitoring never

    raycluster.init(cfg.ray, dashboard=not cfg.ray.address and mon.retrain.enabled, log_to_driver=False)
    get_or_create_hub()
    training = cfg.training.model_dump(mode="json") if hasattr(cfg, "training") else None
    handle = start_actor(mon, roots, model, training, raycluster.auth_token)  # read in the actor, at use
    if mon.retrain.rollout is not None and cfg.rollout.enabled:  # retrained versions go on to the controller
        from control.rollout.service import ACTOR_NAME, ensure_actor, roots_of

        ensure_actor(cfg.rollout, roots_of(cfg), mon.alerts)
        print(f"rollout controller {ACTOR_NAME} running every {cfg.rollout.interval_s:g}s", flush=True)
    print(f"monitor {actor_name(model)} running every {mon.interval_s:g}s; state in {mon.state_root}", flush=True)
    if detach:
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    seen, errors = 0, {}
    try:
        while not stop.wait(1.0):
            status = ray.get(handle.status.remote(seen))
            for number, line in status["lines"]:
                print(line, flush=True)
                seen = number
            for name, error in status["errors"].items():
                if errors.get(name) != error:
                    print(f"{name}: evaluation failed: {error}", file=sys.stderr, flush=True)
            errors = status["errors"]
    finally:
        stop_actor(model)
        if not cfg.ray.address:
            ray.shutdown()
    return 0


def _stop(args: argparse.Namespace) -> int:
    from contracts.errors import InvalidInput
    from mlgate import raycluster
    from monitoring.service import actor_name, stop_actor

    cfg = config_of(args, **{"ray.address": args.address})
    if not cfg.ray.address:
        raise InvalidInput("--address: the Ray cluster the monitor runs on ('auto' or host:port)")
    raycluster.init(cfg.ray, log_to_driver=False)
    stopped = stop_actor(args.model)
    print(f"{actor_name(args.model)}: {'stopped' if stopped else 'not running'}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from monitoring.offline import evaluate_range

    _, mon, roots = _setup(args)
    since, until = _range(args)
    result = evaluate_range(args.model, mon, roots, since, until)
    if args.json:
        doc = {"model": args.model, "since": since.isoformat(), "until": until.isoformat(), "rows": result.rows,
               "segments": result.segments, "versions": {v: r.to_dict() for v, r in result.overall.items()}}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
    else:
        from monitoring.console import check_text

        print(check_text(result))
    drifted = any(r.dataset_drift or r.prediction_drift for r in result.overall.values())
    return 1 if args.fail_on_drift and drifted else 0


def _report(args: argparse.Namespace) -> int:
    from monitoring.report import build_report, write_report

    _, mon, roots = _setup(args)
    since, until = _range(args)
    path = write_report(args.output, build_report(args.model, mon, roots, since, until))
    print(f"wrote {path}")
    return 0


def _history(args: argparse.Namespace) -> int:
    from monitoring.console import history_text
    from monitoring.state import StateStore

    _, mon, _ = _setup(args)
    store = StateStore(mon.state_root, args.model)
    triggers, alerts = store.read("triggers"), store.read("alerts") if args.alerts else []
    if args.json:
        sys.stdout.write(orjson.dumps({"triggers": triggers, "alerts": alerts}).decode() + "\n")
        return 0
    print(history_text(args.model, triggers, alerts, args.limit))
    return 0


def register(sub) -> None:
    mon = sub.add_parser("monitor", help="drift monitoring: run the monitor, check, report, history",
                         description="Windows over the prediction logs compared with each version's "
                                     "reference profile; alerts, live quality from feedback, retraining.")
    msub = mon.add_subparsers(dest="monitor_command", required=True, metavar="ACTION")
    p = msub.add_parser("run", help="run the monitor as a Ray actor until Ctrl-C (or --detach)",
                        description="Starts the detached, named monitor actor (one per --model, or one for all "
                                    "models) on the Ray cluster and prints what each evaluation finds.")
    p.add_argument("--model", help="monitor only this model (default: monitoring.models, or all)")
    p.add_argument("--every", help="evaluation interval, e.g. 30s, 5m (default: monitoring.interval_s)")
    p.add_argument("--address", help="Ray cluster address ('auto' or host:port); default: start Ray locally")
    p.add_argument("--detach", action="store_true", help="leave the actor running and exit (needs --address)")
    p.set_defaults(fn=_run)
    p = msub.add_parser("stop", help="stop the monitor actor")
    p.add_argument("--model", help="the --model the monitor was started with")
    p.add_argument("--address", help="Ray cluster address ('auto' or host:port)")
    p.set_defaults(fn=_stop)
    for name, fn, text in (("check", _check, "evaluate one time range now and print it"),
                           ("report", _report, "write a self-contained HTML drift report")):
        p = msub.add_parser(name, help=text)
        p.add_argument("model")
        p.add_argument("--since", required=True, help="ISO time or duration ago (15m, 2h, 1d)")
        p.add_argument("--until", help="ISO time or duration ago (default: now)")
        if name == "check":
            p.add_argument("--json", action="store_true", help="print the result as JSON")
            p.add_argument("--fail-on-drift", action="store_true", help="exit 1 when drift is found")
        else:
            p.add_argument("--output", required=True, help="HTML file to write")
        p.set_defaults(fn=fn)
    p = msub.add_parser("history", help="retraining triggers, jobs and outcomes (and the alert log)")
    p.add_argument("model")
    p.add_argument("--alerts", action="store_true", help="also show the alert log")
    p.add_argument("--limit", type=int, default=50, help="newest entries shown (default 50)")
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.set_defaults(fn=_history)
    for action in msub.choices.values():
        action.add_argument("--config", default=argparse.SUPPRESS, help="YAML config file")
