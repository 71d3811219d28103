"""One module per command group; each exposes ``register(subparsers)``.

Handlers take the parsed arguments and return an exit status; they only parse and
call library functions.
"""

from __future__ import annotations

import argparse


def config_of(args: argparse.Namespace, **overrides):
    """The typed config for a command: ``--config`` file, environment, then flags."""
    from mlgate.config import load_config

    return load_config(getattr(args, "config", None), overrides)
