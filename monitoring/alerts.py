"""Alert rules on window results, with hysteresis on level and on time.

Each rule gives a *level* per window, ``>= 1`` when over its threshold:

* ``MlgateDatasetDrift`` (per version): drifted share / ``drift.drift_share``; its
  annotations name the drifted features;
* ``MlgateFeatureDrift`` (per version and input feature, when ``alerts.feature_alerts``):
  ``alpha / corrected p-value`` for tests, ``value / threshold`` for distances;
* ``MlgatePredictionDrift`` (per version): the highest level among the outputs;
* ``MlgateMultivariateDrift`` (per version, where it has a multivariate reference): the
  reconstruction score's rise over the reference mean / its upper bound's;
* ``MlgateMissingValues`` (per version and feature): rise of the missing share over the
  reference / ``drift.max_missing_increase``;
* ``MlgateLiveQuality`` (per version and metric in ``live.thresholds``): how far the
  live metric is on the bad side of its threshold.

An alert fires after ``fire_after_windows`` consecutive windows at level >= 1 and
resolves only after ``resolve_after_windows`` consecutive windows below
``resolve_ratio``: one drifting feature hovering around its threshold pages once.
Windows with too few rows (no verdict) leave every alert as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from monitoring import quality
from monitoring.config import MonitoringConfig
from monitoring.drift import WindowResult


@dataclass
class AlertState:
    labels: dict
    status: str = "inactive"  # inactive | pending | firing
    over: int = 0
    under: int = 0
    starts_at: str | None = None
    annotations: dict = field(default_factory=dict)
    level: float = 0.0
    sent_at_s: float | None = None  # when it was last delivered while firing (for the repeat interval)

    @property
    def key(self) -> str:
        return key_of(self.labels)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Observation:
    labels: dict
    level: float
    annotations: dict


@dataclass
class Transition:
    status: str  # firing | resolved
    alert: AlertState
    at: str
    window_id: str


def key_of(labels: dict) -> str:
    return "|".join(f"{k}={labels[k]}" for k in sorted(labels))


def step(state: AlertState, level: float, fire_after: int, resolve_after: int, resolve_ratio: float) -> str | None:
    """Advance one alert by one window; returns ``firing``/``resolved`` on a change."""
    state.level = level
    if state.status != "firing":
        state.over = state.over + 1 if level >= 1.0 else 0
        state.status = "pending" if state.over else "inactive"
        if state.over >= fire_after:
            state.status, state.under = "firing", 0
            return "firing"
        return None
    state.under = state.under + 1 if level < resolve_ratio else 0
    if state.under >= resolve_after:
        state.status, state.over, state.under = "inactive", 0, 0
        return "resolved"
    return None


def observations(result: WindowResult, cfg: MonitoringConfig) -> list[Observation]:
    """What each alert rule sees in one window (nothing for a window without verdict)."""
    if not result.judged:
        return []
    base = {"model": result.model, "version": result.version, **cfg.alerts.labels}
    window = {"window_start": result.start, "window_end": result.end, "rows": str(result.rows)}
    inputs = [f for f in result.features if f.role == "input" and f.evaluated]
    drifted = result.drifted_features
    out = [Observation(
        {**base, "alertname": "MlgateDatasetDrift"}, result.drifted_share / cfg.drift.drift_share,
        {**window, "summary": f"{result.model} v{result.version}: {len(drifted)} of {len(inputs)} features drifted",
         "drifted_features": ", ".join(drifted) or "none",
         "description": f"drifted share {result.drifted_share:.2f} (threshold {cfg.drift.drift_share:.2f}; "
                        f"{result.correction} correction at alpha {result.alpha})"})]
    for f in inputs if cfg.alerts.feature_alerts else []:
        stat = f"{f.method} {f.value:.4g}" + (f", corrected p {f.pvalue_adjusted:.3g}" if f.pvalue is not None else "")
        out.append(Observation({**base, "alertname": "MlgateFeatureDrift", "feature": f.feature}, f.level,
                               {**window, "summary": f"{result.model} v{result.version}: {f.feature} drifted",
                                "description": stat}))
    mv = result.multivariate
    if mv is not None and mv["rows"] > 0:
        out.append(Observation({**base, "alertname": "MlgateMultivariateDrift"}, mv["level"],
                               {**window, "summary": f"{result.model} v{result.version}: features move together "
                                                     "differently (multivariate drift)",
                                "description": f"reconstruction error {mv['score']:.4g} (reference "
                                               f"{mv['reference']:.4g}, upper bound {mv['upper']:.4g})"}))
    outputs = [f for f in result.features if f.role == "output" and f.evaluated]
    if outputs:
        top = max(outputs, key=lambda f: f.level)
        out.append(Observation({**base, "alertname": "MlgatePredictionDrift"}, top.level,
                               {**window, "summary": f"{result.model} v{result.version}: predictions drifted",
                                "description": f"{top.feature}: {top.method} {top.value:.4g}"}))
    for f in result.features:
        if f.role == "input" and (f.n_cur > 0 or f.missing_share_cur > 0):
            rise = (f.missing_share_cur - f.missing_share_ref) / cfg.drift.max_missing_increase
            out.append(Observation({**base, "alertname": "MlgateMissingValues", "feature": f.feature}, rise,
                                   {**window, "summary": f"{result.model} v{result.version}: {f.feature} missing",
                                    "description": f"missing share {f.missing_share_cur:.3f} "
                                                   f"(reference {f.missing_share_ref:.3f})"}))
    return out


def live_observations(model: str, version: str, live: dict, cfg: MonitoringConfig, window: dict) -> list[Observation]:
    base = {"model": model, "version": version, **cfg.alerts.labels}
    out = []
    for metric, threshold in cfg.live.thresholds.items():
        if metric in live:
            out.append(Observation(
                {**base, "alertname": "MlgateLiveQuality", "metric": metric},
                quality.level(metric, live[metric], threshold),
                {**window, "summary": f"{model} v{version}: live {metric} {live[metric]:.4f}",
                 "description": f"threshold {threshold}, {live['labelled_rows']} labelled rows"}))
    return out


class AlertBook:
    """The alert states of one model, advanced window by window."""

    def __init__(self, cfg: MonitoringConfig, states: dict[str, AlertState] | None = None) -> None:
        self.cfg = cfg
        self.states = states or {}

    def observe(self, obs: list[Observation], at: str, window_id: str) -> list[Transition]:
        a = self.cfg.alerts
        out = []
        for o in obs:
            state = self.states.setdefault(key_of(o.labels), AlertState(labels=o.labels))
            change = step(state, o.level, a.fire_after_windows, a.resolve_after_windows, a.resolve_ratio)
            if state.status != "inactive" or change:
                state.annotations = o.annotations
            if change == "firing":
                state.starts_at = at
            if change:
                out.append(Transition(change, AlertState(**state.to_dict()), at, window_id))
        return out

    def firing(self) -> list[AlertState]:
        return [s for s in self.states.values() if s.status == "firing"]

    def due(self, now_s: float, repeat_interval_s: float, at: str) -> list[Transition]:
        """Firing alerts not delivered for ``repeat_interval_s``: to be sent again."""
        return [Transition("firing", s, at, "") for s in self.firing()
                if s.sent_at_s is None or now_s - s.sent_at_s >= repeat_interval_s]

    def to_dict(self) -> dict:
        return {k: s.to_dict() for k, s in self.states.items() if s.status != "inactive"}

    @classmethod
    def from_dict(cls, cfg: MonitoringConfig, data: dict) -> AlertBook:
        return cls(cfg, {k: AlertState(**v) for k, v in data.items()})
