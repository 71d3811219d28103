"""``mlgate runs``: training runs (list, show)."""

from __future__ import annotations

import argparse
import json

from mlgate.commands import config_of


def _store(args: argparse.Namespace):
    from training.runs import RunStore

    return RunStore(config_of(args).runs_root)


def _list(args: argparse.Namespace) -> int:
    print("run_id\tstate\tmodel\tdata\tepochs\tversion")
    for run in sorted(_store(args).list(), key=lambda r: r.spec.get("created_at", 0)):
        spec, status = run.spec, run.status
        done = max((e["epoch"] for e in run.epochs()), default=0)
        data = f"{spec['data']['name']}:v{spec['data']['version']}"
        print(f"{run.run_id}\t{status['state']}\t{spec['model']}\t{data}\t"
              f"{done}/{spec['parameters']['epochs']}\t{status.get('version', '-')}")
    return 0


def _show(args: argparse.Namespace) -> int:
    print(json.dumps(_store(args).get(args.run_id).describe(), indent=2))
    return 0


def register(sub) -> None:
    runs = sub.add_parser("runs", help="training runs: list, show")
    rsub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    p = rsub.add_parser("list", help="every run: state, model, dataset, epochs done, registered version")
    p.set_defaults(fn=_list)
    p = rsub.add_parser("show", help="one run: parameters, status, attempts, metrics per epoch, result")
    p.add_argument("run_id")
    p.set_defaults(fn=_show)
