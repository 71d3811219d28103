"""A model's traffic policy: canary versions with shares, sticky assignment, shadow copies.

The policy is stored with the model, as an append-only history of :class:`TrafficEvent`
records in a :class:`~registry.journal.Journal` (``{root}/{model}/.traffic/{seq:08d}/``):
every change is atomic, numbered and says who made it and why; the current policy is
the newest record's (no record: the empty policy, every request to the primary version).

The primary version (the production version, or the one the version policy serves) is
not part of the policy: it gets what the canaries leave. Replicas route with
``serving.traffic.Router`` and poll :meth:`TrafficBook.latest_seq` to see a change.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.errors import NotFound
from registry.journal import Journal

if TYPE_CHECKING:
    from registry.store import Registry

PARAM_PREFIX = "param:"
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
_SHARE_SLACK = 1e-9  # shares summing to 1 within float rounding are a full split

Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Version = Annotated[int, Field(ge=1)]


class TrafficPolicy(BaseModel):
    """How a model's unpinned requests are split between its versions (empty: all to the primary)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    canaries: dict[Version, Share] = Field(
        default_factory=dict, description="Version -> share of the model's unpinned requests it answers, each in "
        "(0, 1], summing to at most 1; the primary version answers the rest")
    sticky_key: str | None = Field(
        default=None, description="What keeps one caller on one version: a request header's name (any case, "
        "stored lowercase) or 'param:NAME' for a request parameter; unset: a random draw per request")
    shadows: dict[Version, Share] = Field(
        default_factory=dict, description="Version -> share of requests copied to it, each in (0, 1]; a shadow "
        "answers into the prediction log only, never to the caller")

    @field_validator("canaries")
    @classmethod
    def _shares_fit(cls, canaries: dict[int, float]) -> dict[int, float]:
        total = sum(canaries.values())
        if total > 1 + _SHARE_SLACK:
            raise ValueError(f"canary shares sum to {total:g}, more than 1")
        return canaries

    @field_validator("sticky_key")
    @classmethod
    def _sticky_key_form(cls, key: str | None) -> str | None:
        if key is None:
            return None
        if key.startswith(PARAM_PREFIX):
            if not key[len(PARAM_PREFIX):]:
                raise ValueError("'param:' needs a parameter name, e.g. param:user_id")
            return key
        if not _HEADER.fullmatch(key):
            raise ValueError(f"{key!r} is not a header name (or param:NAME for a request parameter)")
        return key.lower()

    @model_validator(mode="after")
    def _canary_or_shadow(self) -> TrafficPolicy:
        both = sorted(set(self.canaries) & set(self.shadows))
        if both:
            raise ValueError(f"version {', '.join(map(str, both))} cannot be both a canary and a shadow")
        return self

    @property
    def sticky_source(self) -> tuple[Literal["header", "param"], str] | None:
        """``("header", name)`` or ``("param", name)`` for :attr:`sticky_key`; None when unset."""
        if self.sticky_key is None:
            return None
        if self.sticky_key.startswith(PARAM_PREFIX):
            return "param", self.sticky_key[len(PARAM_PREFIX):]
        return "header", self.sticky_key

    def versions(self) -> set[int]:
        """Every version the policy names (canaries and shadows)."""
        return set(self.canaries) | set(self.shadows)


class TrafficEvent(BaseModel):
    """One change of a model's traffic policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seq: int = Field(ge=1, description="Position in the model's traffic history, from 1")
    model: str = Field(description="The model whose traffic this policy splits")
    policy: TrafficPolicy = Field(description="The policy from this event on (empty: cleared)")
    actor: str = Field(description="Who made the change: the name of the CLI credential's verified identity "
                       "(an API key's name, a JWT's subject; user@host with auth off), or the program that changed it")
    actor_id: str | None = Field(default=None, description="The stable id of that identity (key:ID, a JWT's "
                                 "issuer and subject, local:user@host with auth off), when there is one")
    reason: str = Field(default="", description="Why")
    at: float = Field(description="Unix time of the change")


class TrafficBook:
    """The traffic policies of the models of one registry, with their history."""

    def __init__(self, registry: Registry) -> None:
        """``registry``: where the policies are kept, which versions exist, and its clock stamps each event."""
        self.registry = registry
        self.journal = Journal(registry.fs, registry.path, ".traffic", TrafficEvent, what="traffic change")

    def current(self, model: str) -> TrafficPolicy:
        """The policy in force (reads one record); the empty policy when none was ever set."""
        event = self.last(model)
        return event.policy if event else TrafficPolicy()

    def last(self, model: str) -> TrafficEvent | None:
        """The change that set the policy in force; None when none was ever set."""
        return self.journal.last(model)

    def history(self, model: str) -> list[TrafficEvent]:
        """Every change, oldest first."""
        return self.journal.history(model)

    def latest_seq(self, model: str) -> int:
        """A change stamp for polling: the newest event's ``seq``, 0 when there is none."""
        return self.journal.latest_seq(model)

    def set(self, model: str, policy: TrafficPolicy, *, actor: str, actor_id: str | None = None,
            reason: str = "") -> TrafficEvent:
        """Make ``policy`` the model's policy (the empty policy clears it). NotFound when the model, or a
        version the policy names, does not exist."""
        available = self.registry.list_versions(model)
        if not available:
            raise NotFound(f"unknown model {model!r}")
        missing = sorted(policy.versions() - set(available))
        if missing:
            raise NotFound(f"model {model!r} has no version {', '.join(map(str, missing))}")
        clock = self.registry.clock
        return self.journal.commit(model, lambda seq, _: TrafficEvent(
            seq=seq, model=model, policy=policy, actor=actor, actor_id=actor_id, reason=reason, at=clock()))
