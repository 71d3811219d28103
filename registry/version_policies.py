"""A model's version policy set at run time, kept with the model in the registry.

``serving.models.<name>.version_policy`` (or ``serving.default_model``) is where a policy
starts; one set here (``mlgate models policy set``, the admin API) overrides it on every
replica within ``serving.reload_interval_s``, without a restart, and ``clear`` returns to
the configured one. The history is a :class:`~registry.journal.Journal` of
:class:`PolicyEvent` records under ``{root}/{model}/.version-policy/``: atomic, numbered,
each saying who and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from contracts.errors import NotFound
from registry.journal import Journal
from registry.store import VersionPolicy

if TYPE_CHECKING:
    from registry.store import Registry


class PolicyEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seq: int = Field(ge=1, description="Position in the model's policy history, from 1")
    model: str
    policy: VersionPolicy | None = Field(description="The policy from this event on; None: the configured one")
    actor: str = Field(description="Who: the credential's identity name")
    actor_id: str | None = Field(default=None, description="The stable id of that identity, when there is one")
    reason: str = Field(default="")
    at: float = Field(description="Unix time of the change")


class PolicyBook:
    """The run-time version policies of the models of one registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.journal = Journal(registry.fs, registry.path, ".version-policy", PolicyEvent, what="policy change")

    def current(self, model: str) -> VersionPolicy | None:
        """The policy set at run time, or None (the configured policy applies)."""
        event = self.journal.last(model)
        return event.policy if event else None

    def last(self, model: str) -> PolicyEvent | None:
        return self.journal.last(model)

    def history(self, model: str) -> list[PolicyEvent]:
        return self.journal.history(model)

    def set(self, model: str, policy: VersionPolicy | None, *, actor: str, actor_id: str | None = None,
            reason: str = "") -> PolicyEvent:
        """Make ``policy`` the model's (None: back to the configured one); NotFound for an unknown model."""
        if not self.registry.list_versions(model):
            raise NotFound(f"unknown model {model!r}")
        clock = self.registry.clock
        return self.journal.commit(model, lambda seq, _: PolicyEvent(
            seq=seq, model=model, policy=policy, actor=actor, actor_id=actor_id, reason=reason, at=clock()))
