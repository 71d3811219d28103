"""Prometheus series of the monitor, pushed to the cluster-wide hub serving renders at /metrics.

Gauges hold the latest scored window of each model version; counters add up. The hub
is the named Ray actor ``contracts.prometheus.HUB_NAME``; when it is absent (no gateway
running, or Ray not used) the monitor keeps its recorder and pushes nothing.
"""

from __future__ import annotations

import logging

from contracts.predlog import QUARANTINED_METRIC
from contracts.prometheus import HUB_NAME, HUB_NAMESPACE, SERVING_METRICS, MetricDef, MetricsRecorder

log = logging.getLogger("mlgate.monitoring")
_MV = ("model", "version")
MONITOR_METRICS = {m.name: m for m in (
    MetricDef("mlgate_drift_feature_statistic", "gauge",
              "Drift statistic of a feature in the latest window (ks_statistic, ks_pvalue, wasserstein_norm, "
              "psi, jensen_shannon, chi2, chi2_pvalue, pvalue_adjusted, missing_share, ...).",
              ("model", "version", "feature", "statistic")),
    MetricDef("mlgate_drift_feature_drifted", "gauge", "1 when the feature drifted in the latest window.",
              ("model", "version", "feature", "role")),
    MetricDef("mlgate_drift_feature_level", "gauge",
              "Drift severity of the feature's deciding method (>= 1: over its threshold).",
              ("model", "version", "feature", "role")),
    MetricDef("mlgate_drift_dataset_drifted", "gauge", "1 when the latest window's dataset verdict is drift.", _MV),
    MetricDef("mlgate_drift_drifted_share", "gauge", "Share of input features drifted in the latest window.", _MV),
    MetricDef("mlgate_drift_prediction_drifted", "gauge", "1 when the model's outputs drifted.", _MV),
    MetricDef("mlgate_drift_multivariate_score", "gauge",
              "Mean PCA reconstruction error of the latest window's preprocessed inputs (multivariate drift).", _MV),
    MetricDef("mlgate_drift_multivariate_upper", "gauge",
              "Upper bound of that score for the window's rows (reference mean + 3 std); above it: drift.", _MV),
    MetricDef("mlgate_drift_multivariate_drifted", "gauge", "1 when the latest window's multivariate score drifted.",
              _MV),
    MetricDef("mlgate_drift_window_rows", "gauge", "Rows in the latest scored window.", _MV),
    MetricDef("mlgate_drift_window_end_timestamp_seconds", "gauge", "End of the latest scored window.", _MV),
    MetricDef("mlgate_drift_windows_total", "counter", "Windows scored, by verdict.", (*_MV, "verdict")),
    MetricDef("mlgate_drift_rows_total", "counter", "Log rows read into windows.", ("model",)),
    MetricDef("mlgate_drift_segments_total", "counter", "Prediction-log segments read.", ("model",)),
    MetricDef("mlgate_drift_rows_skipped_total", "counter", "Log rows not windowed, by reason.",
              ("model", "reason")),
    MetricDef("mlgate_drift_alerts_firing", "gauge", "Alerts firing now.", (*_MV, "alertname")),
    MetricDef("mlgate_drift_alert_notifications_total", "counter", "Alert transitions sent, by outcome.",
              ("model", "status", "delivered")),
    MetricDef("mlgate_live_metric", "gauge", "Live task metric of the latest window with enough labels.",
              (*_MV, "metric")),
    MetricDef("mlgate_estimated_metric", "gauge",
              "Task metric of the latest window estimated from the predicted probabilities alone (CBPE), "
              "before labels arrive.", (*_MV, "metric")),
    MetricDef("mlgate_live_labelled_rows", "gauge", "Labelled rows in that window.", _MV),
    MetricDef("mlgate_live_labels_total", "counter", "Feedback labels joined to predictions.", ("model",)),
    MetricDef("mlgate_retrain_triggers_total", "counter", "Retraining triggers, by reason.", ("model", "reason")),
    SERVING_METRICS[QUARANTINED_METRIC],  # defined once: the feedback route counts it too
)}


def recorder() -> MetricsRecorder:
    return MetricsRecorder(MONITOR_METRICS)


def record_window(rec: MetricsRecorder, result) -> None:
    """Gauges of the latest window of ``result.version`` (a drift.WindowResult)."""
    mv = (result.model, result.version)
    for f in result.features:
        labels = (*mv, f.feature)
        for name, value in {**f.stats, "value": f.value, "missing_share": f.missing_share_cur}.items():
            if value is not None and value == value:
                rec.set_gauge("mlgate_drift_feature_statistic", (*labels, name), float(value))
        if f.pvalue_adjusted is not None:
            rec.set_gauge("mlgate_drift_feature_statistic", (*labels, "pvalue_adjusted"), f.pvalue_adjusted)
        rec.set_gauge("mlgate_drift_feature_drifted", (*labels, f.role), float(f.drifted))
        rec.set_gauge("mlgate_drift_feature_level", (*labels, f.role), f.level)
    rec.set_gauge("mlgate_drift_dataset_drifted", mv, float(result.dataset_drift))
    rec.set_gauge("mlgate_drift_drifted_share", mv, result.drifted_share)
    rec.set_gauge("mlgate_drift_prediction_drifted", mv, float(result.prediction_drift))
    if result.multivariate is not None:
        rec.set_gauge("mlgate_drift_multivariate_score", mv, float(result.multivariate["score"]))
        rec.set_gauge("mlgate_drift_multivariate_upper", mv, float(result.multivariate["upper"]))
        rec.set_gauge("mlgate_drift_multivariate_drifted", mv, float(result.multivariate_drift))
    for metric, value in (result.estimated or {}).items():
        if metric != "scored_rows" and value is not None:
            rec.set_gauge("mlgate_estimated_metric", (*mv, metric), float(value))
    rec.set_gauge("mlgate_drift_window_rows", mv, float(result.rows))
    rec.set_gauge("mlgate_drift_window_end_timestamp_seconds", mv, result.end_us / 1e6)
    verdict = "drift" if result.dataset_drift else ("no_drift" if result.judged else "too_few_rows")
    rec.inc("mlgate_drift_windows_total", (*mv, verdict))


def record_live(rec: MetricsRecorder, model: str, version: str, live: dict) -> None:
    for metric, value in live.items():
        if metric != "labelled_rows" and value == value:
            rec.set_gauge("mlgate_live_metric", (model, version, metric), float(value))
    rec.set_gauge("mlgate_live_labelled_rows", (model, version), float(live.get("labelled_rows", 0)))


def record_alerts(rec: MetricsRecorder, model: str, firing_by: dict[tuple[str, str], int]) -> None:
    """``firing_by[(version, alertname)]``: count of firing alerts (0 clears a series)."""
    for (version, name), count in firing_by.items():
        rec.set_gauge("mlgate_drift_alerts_firing", (model, version, name), float(count))


class HubPusher:
    """Pushes the recorder's snapshot to the Ray hub actor, if there is one."""

    def __init__(self, rec: MetricsRecorder, source: str) -> None:
        self.rec = rec
        self.source = source

    def push(self) -> bool:
        try:
            import ray

            if not ray.is_initialized():
                return False
            hub = ray.get_actor(HUB_NAME, namespace=HUB_NAMESPACE)
        except (ImportError, ValueError):
            return False
        hub.push.remote(self.source, self.rec.drain())
        return True
