"""What the admin API acts on and with: the registry, its traffic book, the audit trail,
the authenticator and where replicas report; one per application, built at start."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from access.audit import AuditLog
from access.authenticator import Authenticator, bearer
from access.config import AuthConfig
from access.identity import ADMIN, OPEN, Identity
from contracts.clock import Clock, wall_clock_s
from contracts.errors import MlgateError
from control.audited import admit, describe_token
from control.config import RolloutConfig
from registry import Registry
from registry.rollouts import RolloutBook
from registry.traffic import TrafficBook


class AdminSettings(BaseModel):
    """What an admin API replica needs (no secret: Serve keeps it in the GCS)."""

    model_config = ConfigDict(extra="forbid")
    registry_root: str = Field(description="The model registry (path or pyarrow URI)")
    audit_root: str = Field(description="The audit trail (local path)")
    log_root: str | None = Field(default=None, description="Where gateway replicas report their status")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="Who may call (the admin scope)")
    state_root: str | None = Field(default=None, description="The monitor's state (the controller's rollouts.jsonl)")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="Defaults of a rollout started here")


@dataclass
class AdminContext:
    registry: Registry
    book: TrafficBook
    audit: AuditLog
    authenticator: Authenticator | None  # None: access control is off, every caller acts as OPEN
    log_root: str | None
    rollouts: RolloutBook | None = None
    state_root: str | None = None
    rollout: RolloutConfig | None = None
    clock: Clock = wall_clock_s

    @classmethod
    def build(cls, settings: AdminSettings, clock: Clock = wall_clock_s) -> AdminContext:
        """Opens the audit trail first (ConfigError when it cannot be written: no trail, no API)."""
        audit = AuditLog(settings.audit_root, clock)
        audit.ensure()
        registry = Registry(settings.registry_root, clock)
        authenticator = Authenticator(settings.auth, clock) if settings.auth.enabled else None
        return cls(registry, TrafficBook(registry), audit, authenticator, settings.log_root, RolloutBook(registry),
                   settings.state_root, settings.rollout, clock)

    def authorize(self, authorization: str | None, scope: str | None = ADMIN) -> Identity:
        """The identity behind the header checked for ``scope`` (None: any verified identity)
        and its rate: Unauthenticated, Forbidden or RateLimited otherwise."""
        if self.authenticator is None:
            return OPEN
        return self.authenticator.authorize(authorization, scope)

    def admit(self, authorization: str | None, action: str, target: str, detail: dict) -> Identity:
        """:meth:`authorize` for a write: a refusal is recorded in the audit trail first."""
        return admit(self.audit, action, target, lambda: self.authorize(authorization, None),
                     lambda: presented(authorization), detail)

    def close(self) -> None:
        if self.authenticator is not None:
            self.authenticator.close()


def presented(authorization: str | None) -> str:
    """What kind of credential a request presents, for the record (never the secret)."""
    try:
        return describe_token(bearer(authorization))
    except MlgateError:
        return "none" if not authorization else "a malformed authorization header"
