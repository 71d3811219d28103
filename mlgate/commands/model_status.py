"""``mlgate models status``: what the registry says each model should serve, and what every
gateway replica actually serves, drains, or failed to load (from the replicas' own reports)."""

from __future__ import annotations

import argparse
import json

from mlgate.commands import config_of


def _status(args: argparse.Namespace) -> int:
    from contracts.clock import wall_clock_s
    from contracts.replicas import read_statuses
    from registry import Registry
    from serving.selection import model_names

    cfg = config_of(args)
    reg = Registry(cfg.registry_root)
    names = [args.name] if args.name else model_names(reg, cfg.serving)
    replicas = read_statuses(cfg.log_root, wall_clock_s())
    report = [_model(reg, cfg.serving, name, replicas) for name in names]
    print(json.dumps(report if not args.name else report[0], indent=2))
    failing = any(r["failed"] for m in report for r in m["replicas"] if not r["stale"])
    return 1 if failing and args.check else 0


def _model(reg, serving_cfg, name: str, replicas: list[dict]) -> dict:
    from registry.traffic import TrafficBook
    from serving.selection import select

    # what a replica would hold: the version policy's versions and the traffic policy's
    wanted = list(select(reg, serving_cfg, TrafficBook(reg), name).numbers)
    return {
        "model": name,
        "production": reg.stages.state(name).production,
        "wanted": wanted,
        "replicas": [{"source": r.get("source"), "address": r.get("address"), "updated_at": r.get("updated_at"),
                      "stale": r["stale"], **r["models"].get(name, {"serving": [], "draining": [], "failed": {}})}
                     for r in replicas],
    }


def add_status_command(msub) -> None:
    p = msub.add_parser("status", help="what each model should serve and what every gateway replica serves, "
                        "drains or failed to load")
    p.add_argument("name", nargs="?", help="one model (default: every served model)")
    p.add_argument("--check", action="store_true", help="exit 1 when a live replica reports a version that "
                   "failed to load or warm up")
    p.set_defaults(fn=_status)
