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


def acting_flags(p: argparse.ArgumentParser) -> None:
    """Flags of the commands that act as the credential's identity (recorded as the actor of what
    they change and in the audit trail): ``--token-file`` and ``--by``."""
    p.add_argument("--token-file", help="file holding an admin credential (default: MLGATE_TOKEN, "
                   "MLGATE_TOKEN_FILE, then the admin key mlgate up made)")
    p.add_argument("--by", help="on whose behalf (recorded as on_behalf_of in the audit trail; the actor "
                   "is always the credential's identity)")
