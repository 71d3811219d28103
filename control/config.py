"""Typed configuration of the control plane: the admin API (``serving.admin``) and the
rollout controller (``rollout``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from registry.rollouts import DEFAULT_STEPS_PCT, RolloutChecks, StepsPct


class AdminConfig(BaseModel):
    """Where the admin API listens; TLS comes from ``serving.tls``, credentials from ``serving.auth``."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description="Serve the admin API (mlgate up starts it beside the gateway)")
    host: str = Field(default="127.0.0.1", description="Address the admin API listens on, on the head node "
                      "(loopback by default, like the data plane)")
    port: int = Field(default=8090, ge=1, le=65_535, description="Port of the admin API, apart from the data plane's")


class RolloutConfig(BaseModel):
    """The rollout controller (``mlgate rollout``): how often it evaluates, and the defaults a
    rollout starts with (its flags and ``monitoring.retrain.rollout`` override them)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description="Run the controller (mlgate up starts it beside the gateway)")
    interval_s: float = Field(default=10.0, gt=0, le=3600, description="How often the controller evaluates every "
                              "active rollout; a failed check is rolled back within one interval")
    actor_num_cpus: float = Field(default=0.0, ge=0, description="CPUs reserved by the controller actor (a light "
                                  "loop: by default none, so it starts beside replicas that take every CPU)")
    start_timeout_s: float = Field(default=60.0, gt=0, description="How long starting the controller actor may "
                                   "take before it is an error (it waits for actor_num_cpus to be free)")
    steps_pct: StepsPct = Field(default=DEFAULT_STEPS_PCT, description="Default canary steps in percent, "
                                "increasing, ending at 100 (the promotion)")
    step_s: float = Field(default=600.0, gt=0, description="Default time at each step")
    shadow_first_s: float = Field(default=0.0, ge=0, description="Default shadow phase before the first step")
    checks: RolloutChecks = Field(default_factory=RolloutChecks, description="Default thresholds of the checks")
