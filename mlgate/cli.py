"""The ``mlgate`` command line: parses arguments and calls library functions."""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
import threading
from typing import NoReturn

from contracts.errors import MlgateError

# Command groups, one module each under mlgate/commands/ (each has register(subparsers)).
COMMANDS = ("up", "models", "demo", "logs", "score", "data", "train", "runs", "monitor")


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


def exit_promptly(code: int) -> NoReturn:
    """End the program: exit handlers run and output is flushed, but the interpreter does not
    tear its modules down one by one (0.2-0.4 s once Ray Data is imported). A program with
    threads still running exits the ordinary way, which waits for them."""
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run() -> NoReturn:
    """The ``mlgate`` program (console script and ``python -m mlgate``)."""
    exit_promptly(main())


if __name__ == "__main__":  # pragma: no cover
    run()
