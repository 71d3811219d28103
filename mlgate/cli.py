"""The ``mlgate`` command line: parses arguments and calls library functions."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from contracts.errors import MlgateError
from mlgate.process import exit_promptly

# Command groups, one module each under mlgate/commands/ (each has register(subparsers)).
COMMANDS = ("up", "models", "demo", "logs", "score", "data", "train", "runs", "monitor", "tokens", "audit", "traffic",
            "rollout")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlgate", description="Model-serving gateway on Ray.")
    p.add_argument("--config", help="YAML config file (also MLGATE_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"mlgate.commands.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from mlgate.raycluster import loopback_env

    loopback_env()  # before anything imports ray: it reads this at import time
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except MlgateError as exc:
        print(f"mlgate: error: {exc.message}", file=sys.stderr)
        return 2


def run() -> NoReturn:
    """The ``mlgate`` program (console script and ``python -m mlgate``)."""
    exit_promptly(main())


if __name__ == "__main__":  # pragma: no cover
    run()
