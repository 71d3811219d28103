"""Admin actions, audited the same way whoever asks (the CLI, the admin API): a ``refused``
record when the caller is not an admin, ``failed`` when the action raises, else ``ok``.

:func:`admit` decides who acts (or records the refusal), :func:`recorded` runs the action
and records how it ended, and :func:`audited_action` does both for a caller that knows
everything up front (the CLI). The admin API admits before it reads the request body, so
it uses the two halves apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from access.audit import AuditLog
from access.identity import ADMIN, Identity
from access.keys import PREFIX, key_id_of
from contracts.errors import ConfigError, Forbidden, MlgateError


@dataclass
class AdminAction:
    """What the body of :func:`recorded` acts as, and what it adds to the record."""

    identity: Identity
    detail: dict = field(default_factory=dict)


def admit(audit: AuditLog, action: str, target: str, identify: Callable[[], Identity],
          presented: Callable[[], str], detail: dict | None = None) -> Identity:
    """The verified identity ``identify()`` returns when it holds ``admin``; otherwise a
    ``refused`` record (with ``presented()``, what kind of credential came, when no identity
    was verified) and the error raised again."""
    identity = None
    try:
        identity = identify()
        if not identity.allows(ADMIN):
            raise Forbidden(f"forbidden: this credential lacks the scope {ADMIN}")
        return identity
    except MlgateError as exc:
        seen = {} if identity is not None else {"presented": presented()}
        audit.append(identity, action, target, "refused", {**(detail or {}), **seen, "error": exc.message})
        raise


@contextmanager
def recorded(audit: AuditLog, identity: Identity, action: str, target: str,
             detail: dict | None = None) -> Iterator[AdminAction]:
    """Run the body as ``identity`` and record it: ``failed`` (the error raised again) or
    ``ok``, with ``detail`` and what the body put in the yielded ``detail``."""
    act = AdminAction(identity, dict(detail or {}))
    try:
        yield act
    except BaseException as exc:
        why = exc.message if isinstance(exc, MlgateError) else type(exc).__name__
        audit.append(identity, action, target, "failed", {**act.detail, "error": why})
        raise
    try:
        audit.append(identity, action, target, "ok", act.detail)
    except MlgateError as exc:
        raise ConfigError(f"{action} {target} is done, but not recorded: {exc.message}") from None


@contextmanager
def audited_action(audit: AuditLog, action: str, target: str, identify: Callable[[], Identity],
                   presented: Callable[[], str], detail: dict | None = None) -> Iterator[AdminAction]:
    """:func:`admit`, then :func:`recorded`. The trail is opened first: no trail, no action."""
    audit.ensure()
    identity = admit(audit, action, target, identify, presented, detail)
    with recorded(audit, identity, action, target, detail) as act:
        yield act


def describe_token(token: str | None) -> str:
    """What kind of credential ``token`` is, for the record: never the secret (an API key's
    id is not secret)."""
    if not token:
        return "none"
    if token.startswith(PREFIX):
        key_id = key_id_of(token)
        return f"api key {key_id}" if key_id else "a malformed api key"
    return "a jwt" if token.count(".") == 2 else "an unrecognized token"
