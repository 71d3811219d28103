"""Who runs a CLI command: the identity behind its credential (``MLGATE_TOKEN``,
``--token-file``/``MLGATE_TOKEN_FILE``, else the admin key ``mlgate up`` made), verified
like a request's: never a name the caller types. :func:`admin_action` also writes each
admin action, refused, failed or done, to the audit trail (:mod:`access.audit`)."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator
from contextlib import closing, contextmanager

from access.audit import AuditLog
from access.authenticator import Authenticator
from access.identity import ADMIN, Identity
from access.jwks import FETCH_TIMEOUT_S
from contracts.errors import MlgateError, Unauthenticated
from control.audited import AdminAction, audited_action, describe_token
from mlgate.config import MlgateConfig, cli_token


def cli_identity(cfg: MlgateConfig, token_file: str | None = None, scope: str | None = ADMIN) -> Identity:
    """The verified identity of this command's credential, checked for ``scope``. With
    ``serving.auth.enabled: false`` every command may act, as the local user (``user@host``)."""
    auth = cfg.serving.auth
    if not auth.enabled:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
        return Identity(f"local:{who}", who, "local", frozenset({ADMIN}))
    token = cli_token(cfg, token_file)
    if token is None:
        raise Unauthenticated(f"no credential: set MLGATE_TOKEN, pass --token-file, or run mlgate up once to "
                              f"create the admin key {auth.admin_key_file}", invalid=False)
    with closing(Authenticator(auth)) as authenticator:
        if token.count(".") == 2:  # a JWT: the CLI may wait for the provider's keys, a request never does
            authenticator.wait_keys(FETCH_TIMEOUT_S)
        return authenticator.authorize(f"Bearer {token}", scope)


@contextmanager
def admin_action(cfg: MlgateConfig, token_file: str | None, action: str, target: str,
                 detail: dict | None = None) -> Iterator[AdminAction]:
    """Run an admin action as the command's verified admin identity, and audit it
    (:func:`control.audited.audited_action`): a ``refused`` record when the credential is
    missing, invalid or not admin (the error is raised again), ``failed`` when the body
    raises, else ``ok``, with ``detail`` and what the body put in the yielded ``detail``."""
    with audited_action(AuditLog(cfg.audit_root), action, target, lambda: cli_identity(cfg, token_file, scope=None),
                        lambda: presented(cfg, token_file), detail) as act:
        yield act


def presented(cfg: MlgateConfig, token_file: str | None = None) -> str:
    """What kind of credential this command presents, for the record: never the secret."""
    try:
        return describe_token(cli_token(cfg, token_file))
    except MlgateError:
        return "an unreadable token file"
