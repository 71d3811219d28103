"""Typed configuration of the drift monitor (composed into ``mlgate.config`` as ``monitoring``).

Plain pydantic models: no environment reading here (``mlgate.config`` does that), no Ray.
The monitor actor receives the resolved section as a plain dict.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from registry.rollouts import DEFAULT_STEPS_PCT, RolloutChecks, StepsPct

NumericMethod = Literal["auto", "ks", "wasserstein_norm", "psi", "jensen_shannon"]
CategoricalMethod = Literal["auto", "chi2", "psi", "jensen_shannon"]
Method = Literal["ks", "chi2", "wasserstein_norm", "psi", "jensen_shannon"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WindowConfig(_Strict):
    """Windows over the prediction log, per model version: by time or by rows.

    A window is ``size / slide`` consecutive buckets; ``slide`` unset (or equal to
    ``size``) gives tumbling windows, a smaller ``slide`` sliding ones.
    """

    by: Literal["time", "rows"] = Field(default="time", description="Window by log timestamp or by row count")
    size_s: float = Field(default=3600.0, gt=0, description="Window length in seconds (by=time)")
    slide_s: float | None = Field(default=None, gt=0, description="Step between windows (by=time); None: size_s")
    size_rows: int = Field(default=10_000, ge=1, description="Rows per window (by=rows)")
    slide_rows: int | None = Field(default=None, ge=1, description="Rows between windows (by=rows); None: size_rows")
    grace_s: float = Field(default=30.0, ge=0,
                           description="Wait after a time window ends for late segments before scoring it")
    min_rows: int = Field(default=100, ge=1, description="Smaller windows are recorded but get no verdict")

    @model_validator(mode="after")
    def _check(self) -> WindowConfig:
        if self.by == "time" and self.slide_s is not None:
            ratio = self.size_s / self.slide_s
            if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
                raise ValueError("size_s must be a whole multiple of slide_s")
        if self.by == "rows" and self.slide_rows is not None and self.size_rows % self.slide_rows:
            raise ValueError("size_rows must be a whole multiple of slide_rows")
        return self


class DriftConfig(_Strict):
    """Per-feature tests and the dataset verdict (see monitoring/methods.py for the rule)."""

    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level of the p-value tests")
    correction: Literal["bh", "bonferroni", "none"] = Field(
        default="bh", description="Multiple-testing correction across features (Benjamini-Hochberg by default)")
    drift_share: float = Field(default=0.5, gt=0, le=1,
                               description="The dataset drifts when at least this share of features drifts")
    large_sample_rows: int = Field(
        default=50_000, ge=1,
        description="Above this effective sample size (n_ref*n_cur/(n_ref+n_cur)) 'auto' uses distances, not tests")
    numeric_method: NumericMethod = Field(default="auto", description="Method for numeric features")
    categorical_method: CategoricalMethod = Field(default="auto", description="Method for categorical features")
    methods: dict[str, Method] = Field(default_factory=dict, description="Per-feature method overrides")
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {"wasserstein_norm": 0.1, "psi": 0.2, "jensen_shannon": 0.1},
        description="Drift thresholds of the distance methods")
    max_missing_increase: float = Field(
        default=0.1, gt=0, le=1, description="Flag a feature whose missing share rises this much over the reference")
    js_base: float = Field(default=2.0, gt=1, description="Log base of the Jensen-Shannon distance")
    exclude: tuple[str, ...] = Field(default=(), description="Features never tested (personal data always is)")
    outputs: bool = Field(default=True, description="Also test the predictions' distribution, when referenced")


class AlertConfig(_Strict):
    """Alerts on window results, with hysteresis on level and on time."""

    webhook_url: str | None = Field(default=None, description="POST alerts here (None: alert log only)")
    webhook_format: Literal["alertmanager_webhook", "alertmanager_api"] = Field(
        default="alertmanager_webhook",
        description="Body of Alertmanager's webhook receiver (v4), or a list for Alertmanager's /api/v2/alerts")
    timeout_s: float = Field(default=5.0, gt=0, le=120, description="Webhook request timeout")
    retries: int = Field(default=3, ge=0, le=10, description="Attempts after a failed delivery, with backoff")
    retry_backoff_s: float = Field(default=0.5, ge=0, le=60, description="First retry's mean wait; it doubles "
                                   "with each retry, with full jitter")
    repeat_interval_s: float = Field(default=300.0, gt=0, description="A firing alert is sent again this often "
                                     "until it resolves (with alertmanager_api, its endsAt is 4 intervals ahead, "
                                     "so Alertmanager resolves it by itself if the monitor goes away)")
    fire_after_windows: int = Field(default=1, ge=1, description="Consecutive windows over threshold to fire")
    resolve_after_windows: int = Field(default=3, ge=1, description="Consecutive clear windows to resolve")
    resolve_ratio: float = Field(default=0.8, gt=0, le=1,
                                 description="A firing alert clears only below this fraction of its threshold")
    feature_alerts: bool = Field(default=True, description="One alert per drifting feature besides the dataset")
    labels: dict[str, str] = Field(default_factory=lambda: {"severity": "warning"},
                                   description="Extra labels on every alert")
    external_url: str = Field(default="", description="externalURL / generatorURL in the payload")


class LiveConfig(_Strict):
    """Live task metrics from feedback labels joined to predictions."""

    enabled: bool = Field(default=True, description="Join feedback labels: keeps the request id of every "
                                                    "prediction read (off: no live metrics, cheaper reading)")
    horizon_s: float = Field(default=7 * 86400.0, gt=0,
                             description="Labels may arrive this long after their prediction")
    min_labelled_rows: int = Field(default=30, ge=1, description="Fewer labelled rows: no live metric")
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Alert (and retrain) when a live metric is worse than this, e.g. {'accuracy': 0.75}")
    use_estimated: bool = Field(default=True, description="Where a window has fewer than min_labelled_rows "
                                "labels, the retraining policy compares its CBPE estimate with thresholds instead")


class RetrainRollout(_Strict):
    """How a retrained version that passed its gate is rolled out, without a person: the
    rollout controller then takes it through shadow and canary steps to production, or
    rolls it back at the first failed check."""

    steps: StepsPct = Field(default=DEFAULT_STEPS_PCT, description="Canary shares in percent, increasing, "
                            "ending at 100 (the promotion)")
    step_s: float = Field(default=600.0, gt=0, description="Time at each step")
    shadow_first_s: float = Field(default=600.0, ge=0, description="Shadow phase before the first step (0: none)")
    sticky_key: str | None = Field(default=None, description="Header (or param:NAME) keeping a caller on one "
                                   "version during the canary steps")
    checks: RolloutChecks = Field(default_factory=RolloutChecks, description="Thresholds of the checks")


class RetrainConfig(_Strict):
    """When and how the monitor submits a training job."""

    enabled: bool = Field(default=False, description="Submit training jobs when the policy says so")
    drift_windows: int = Field(default=3, ge=1, description="Dataset drift in this many consecutive windows")
    on_live_metric: bool = Field(default=True, description="Also trigger on a live metric worse than its threshold")
    cooldown_s: float = Field(default=86400.0, ge=0, description="At most one trigger per model in this time")
    job_address: str | None = Field(default=None,
                                    description="Ray dashboard URL of the Job Submission API (None: local)")
    data: str | None = Field(default=None,
                             description="Dataset name to train on (None: the served version's training data)")
    include_live_labels: bool = Field(default=True,
                                      description="Add the labelled live rows as a new dataset version")
    max_live_rows: int = Field(default=100_000, ge=0, description="At most this many labelled live rows")
    training_overrides: dict[str, Any] = Field(
        default_factory=dict, description="Fields of the `training` section changed for these jobs, e.g. epochs")
    rollout: RetrainRollout | None = Field(default=None, description="Start a rollout of each retrained version "
                                           "that passed its gate (None: it stays a candidate for a person)")


class MonitoringConfig(_Strict):
    state_root: str = Field(default="var/monitoring",
                            description="Monitor state, window history, alert log, triggers (local or shared path)")
    interval_s: float = Field(default=60.0, gt=0, le=86400, description="How often `monitor run` evaluates")
    models: tuple[str, ...] | None = Field(default=None, description="Models to monitor; None: all in the registry")
    backfill_s: float = Field(default=3600.0, ge=0,
                              description="A monitor without state starts with records this recent")
    cursor_retention_days: int = Field(default=3, ge=1,
                                       description="Date partitions older than this are never listed again")
    max_segments_per_tick: int = Field(default=10_000, ge=1,
                                       description="Read at most this many new segments per evaluation")
    actor_num_cpus: float = Field(default=1.0, ge=0, description="CPUs reserved by the monitor actor")
    window: WindowConfig = Field(default_factory=WindowConfig, description="Windows")
    drift: DriftConfig = Field(default_factory=DriftConfig, description="Drift statistics and verdict")
    alerts: AlertConfig = Field(default_factory=AlertConfig, description="Alerts")
    live: LiveConfig = Field(default_factory=LiveConfig, description="Live quality from feedback")
    retrain: RetrainConfig = Field(default_factory=RetrainConfig, description="Retraining trigger")
