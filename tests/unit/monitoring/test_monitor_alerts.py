"""Hysteresis on level and time, the alert rules, the Alertmanager-compatible bodies."""

from __future__ import annotations

from monitoring import alerts, notify
from monitoring.config import AlertConfig, MonitoringConfig
from monitoring.drift import FeatureResult, WindowResult


def run(levels: list[float], fire_after: int = 2, resolve_after: int = 3, ratio: float = 0.8) -> list[str | None]:
    state = alerts.AlertState(labels={"alertname": "X"})
    return [alerts.step(state, lv, fire_after, resolve_after, ratio) for lv in levels]


def test_fires_after_consecutive_windows_only():
    assert run([1.2, 0.5, 1.1, 0.9, 1.5]) == [None] * 5
    assert run([1.2, 1.5]) == [None, "firing"]


def test_hovering_around_the_threshold_pages_once():
    # over, over (fires), then hovering between 0.8 and 1.0 and back over: never resolves
    assert run([1.1, 1.2, 0.95, 0.85, 1.05, 0.9, 0.81, 0.99]).count("firing") == 1
    assert "resolved" not in run([1.1, 1.2, 0.95, 0.85, 1.05, 0.9, 0.81, 0.99])


def test_resolves_after_consecutive_clear_windows_below_the_ratio():
    out = run([2, 2, 0.5, 0.5, 0.9, 0.5, 0.5, 0.5, 1.5, 1.5])
    assert out == [None, "firing", None, None, None, None, None, "resolved", None, "firing"]


def _result(drifted: list[str], judged: bool = True) -> WindowResult:
    feats = [FeatureResult(feature=n, role="input", kind="numeric", method="ks", rule="auto", value=0.3,
                           pvalue=1e-9 if n in drifted else 0.5, pvalue_adjusted=1e-8 if n in drifted else 0.6,
                           threshold=0.05, evaluated=True, drifted=n in drifted,
                           level=0.05 / 1e-8 if n in drifted else 0.05 / 0.6, missing_share_ref=0.0,
                           missing_share_cur=0.0, missing_drifted=False, n_cur=100)
             for n in ("income", "balance", "age_band", "score")]
    return WindowResult(model="demo", version="1", window_id="1:rows:0", by="rows", start_us=0, end_us=10**6,
                        rows=100, judged=judged, features=feats, drifted_share=len(drifted) / 4,
                        dataset_drift=len(drifted) >= 2, prediction_drift=False, alpha=0.05, correction="bh")


def test_window_observations_name_the_drifted_features():
    cfg = MonitoringConfig()
    book = alerts.AlertBook(cfg)
    out = book.observe(alerts.observations(_result(["income", "balance"]), cfg), "2026-11-20T12:00:00+00:00", "w1")
    fired = {(t.alert.labels["alertname"], t.alert.labels.get("feature")) for t in out}
    assert fired == {("MlgateDatasetDrift", None), ("MlgateFeatureDrift", "income"),
                     ("MlgateFeatureDrift", "balance")}
    dataset = next(t for t in out if t.alert.labels["alertname"] == "MlgateDatasetDrift")
    assert dataset.alert.annotations["drifted_features"] == "income, balance"
    assert book.observe(alerts.observations(_result([], judged=False), cfg), "t", "w2") == []  # no verdict
    assert len(book.firing()) == 3


def test_webhook_body_is_alertmanager_v4():
    cfg = MonitoringConfig()
    book = alerts.AlertBook(cfg)
    fired = book.observe(alerts.observations(_result(["income", "balance"]), cfg), "2026-11-20T12:00:00+00:00", "w")
    body = notify.webhook_body(fired, AlertConfig(external_url="http://monitor"))
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"]
    assert body["groupLabels"] == {"model": "demo"} and body["commonLabels"]["version"] == "1"
    for a in body["alerts"]:
        assert set(a) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
        assert a["endsAt"] == notify.ZERO_TIME and a["startsAt"] == "2026-11-20T12:00:00+00:00"
        assert all(isinstance(v, str) for v in (*a["labels"].values(), *a["annotations"].values()))
    api = notify.api_body(fired, AlertConfig())
    assert isinstance(api, list) and set(api[0]) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}


def test_delivery_without_url_is_logged_not_sent():
    assert notify.deliver([], AlertConfig(webhook_url="http://127.0.0.1:9")) == (False, None, 0)
    entries = notify.log_entries([], False, None)
    assert entries == []
