"""The retraining policy of one model (pure: window results in, a reason or None out).

Triggers when a version's dataset verdict is drift in ``retrain.drift_windows``
consecutive scored windows, or (``retrain.on_live_metric``) when a window's live
metric is worse than its ``live.thresholds`` entry; where a window has too few labels for a
live metric (``live.use_estimated``), its metric estimated from the probabilities (CBPE)
stands in, as soon as the window is scored. A trigger is allowed only when
retraining is enabled, no earlier job of the model is still running, and
``retrain.cooldown_s`` has passed since the last trigger. Windows without a verdict
(too few rows) neither extend nor break a drift streak.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from monitoring import quality
from monitoring.config import MonitoringConfig


@dataclass
class PolicyState:
    drift_streak: dict[str, int] = field(default_factory=dict)  # version -> consecutive drifted windows
    last_trigger_at: float | None = None
    active: list[dict] = field(default_factory=list)  # triggers whose job has not finished

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> PolicyState:
        return cls(**data) if data else cls()


def on_window(state: PolicyState, result, cfg: MonitoringConfig) -> str | None:
    """Update the drift streak with one scored window; the reason to trigger, if any."""
    if not result.judged:
        return None
    streak = state.drift_streak.get(result.version, 0) + 1 if result.dataset_drift else 0
    state.drift_streak[result.version] = streak
    if streak >= cfg.retrain.drift_windows:
        features = ", ".join(result.drifted_features)
        return f"dataset drift in {streak} consecutive windows of version {result.version} ({features})"
    return None


def on_live(version: str, live: dict, cfg: MonitoringConfig) -> str | None:
    """The reason to trigger on a window's live metrics, if any."""
    if not cfg.retrain.on_live_metric or live.get("labelled_rows", 0) < cfg.live.min_labelled_rows:
        return None
    for metric, threshold in cfg.live.thresholds.items():
        if metric in live and quality.worse_than(metric, live[metric], threshold):
            return f"live {metric} {live[metric]:.4f} worse than {threshold} on version {version}"
    return None


def on_estimated(result, cfg: MonitoringConfig) -> str | None:
    """The reason to trigger on a scored window's CBPE estimates, when it lacks the labels
    for live metrics; None otherwise."""
    live = result.live or {}
    if not (cfg.retrain.on_live_metric and cfg.live.use_estimated and result.judged and result.estimated):
        return None
    if live.get("labelled_rows", 0) >= cfg.live.min_labelled_rows:
        return None  # labels say it: on_live decides
    for metric, threshold in cfg.live.thresholds.items():
        value = result.estimated.get(metric)
        if value is not None and quality.worse_than(metric, value, threshold):
            return (f"estimated {metric} {value:.4f} (CBPE, {live.get('labelled_rows', 0)} labels) worse than "
                    f"{threshold} on version {result.version}")
    return None


def blocked(state: PolicyState, now_s: float, cfg: MonitoringConfig) -> str | None:
    """Why a trigger may not fire now, or None when it may."""
    if not cfg.retrain.enabled:
        return "retraining is disabled (monitoring.retrain.enabled)"
    if state.active:
        return f"job {state.active[0].get('job_id')} is still running"
    if state.last_trigger_at is not None and now_s - state.last_trigger_at < cfg.retrain.cooldown_s:
        return f"cooldown: last trigger {now_s - state.last_trigger_at:.0f}s ago (< {cfg.retrain.cooldown_s:.0f}s)"
    return None
