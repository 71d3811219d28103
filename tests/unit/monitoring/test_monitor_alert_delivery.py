"""Alerts that arrive: retries with backoff and jitter, a firing alert sent again every
repeat interval (endsAt ahead, as Prometheus does) until it resolves, and receiver URLs
never logged with their secrets. The receiver is a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import json
import logging
import threading

import pytest

from contracts.clock import iso_s
from monitoring import alerts, notify
from monitoring.config import AlertConfig, MonitoringConfig
from tests.unit.monitoring.test_monitor_alerts import _result

T0 = 1_795_176_000.0


class Receiver:
    """Answers ``fail_first`` POSTs with 500, then 200; keeps every body."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list = []
        self.fail_first = fail_first
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.bodies.append(body)
                self.send_response(500 if len(receiver.bodies) <= receiver.fail_first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/api/v2/alerts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(fail_first: int = 0) -> Receiver:
        made.append(Receiver(fail_first))
        return made[-1]

    yield make
    for r in made:
        r.close()


def fired(cfg: MonitoringConfig) -> list[alerts.Transition]:
    return alerts.AlertBook(cfg).observe(alerts.observations(_result(["income", "balance"]), cfg), iso_s(T0), "w")


def test_a_failing_receiver_is_retried_with_growing_jittered_waits(receiver):
    r = receiver(fail_first=2)
    cfg = AlertConfig(webhook_url=r.url, webhook_format="alertmanager_api", retries=3, retry_backoff_s=0.5)
    waits: list[float] = []
    delivered, error, attempts = notify.deliver(fired(MonitoringConfig()), cfg, T0, sleep=waits.append,
                                                jitter=lambda: 0.5)
    assert (delivered, error, attempts) == (True, None, 3) and len(r.bodies) == 3
    assert waits == [0.5, 1.0]  # mean backoff doubles; full jitter at its middle gives the mean
    assert r.bodies[0] == r.bodies[2]  # the same alerts each time


def test_a_receiver_that_never_answers_gives_up_after_the_retries(receiver, caplog):
    r = receiver(fail_first=99)
    secret = r.url.replace("http://", "http://bot:hunter2@") + "/T000/B000/XXXXSECRET?token=abc"
    cfg = AlertConfig(webhook_url=secret, retries=2, retry_backoff_s=0.0)
    with caplog.at_level(logging.WARNING, logger="mlgate.monitoring"):
        delivered, error, attempts = notify.deliver(fired(MonitoringConfig()), cfg, T0, sleep=lambda s: None)
    assert (delivered, attempts) == (False, 3) and error  # credentials in the URL: http.client refuses it
    logged = caplog.text + error
    assert "hunter2" not in logged and "XXXXSECRET" not in logged and "token=abc" not in logged
    assert f"http://127.0.0.1:{r.server.server_port}/..." in caplog.text


def test_a_refusing_receiver_is_named_without_its_path(receiver, caplog):
    r = receiver(fail_first=99)
    cfg = AlertConfig(webhook_url=r.url + "/T000/SECRETPATH", retries=1, retry_backoff_s=0.0)
    with caplog.at_level(logging.WARNING, logger="mlgate.monitoring"):
        delivered, error, attempts = notify.deliver(fired(MonitoringConfig()), cfg, T0, sleep=lambda s: None)
    assert (delivered, error, attempts, len(r.bodies)) == (False, "HTTP 500", 2, 2)
    assert "SECRETPATH" not in caplog.text and f"127.0.0.1:{r.server.server_port}/..." in caplog.text


def test_redaction_keeps_only_scheme_host_and_port():
    assert notify.redact("https://u:p@hooks.example.com/services/T/B/secret?x=1") == "https://hooks.example.com/..."
    assert notify.redact("http://127.0.0.1:9093/api/v2/alerts") == "http://127.0.0.1:9093/..."


def test_firing_alerts_carry_an_end_ahead_and_are_due_again_after_the_repeat_interval():
    cfg = MonitoringConfig(alerts={"webhook_format": "alertmanager_api", "repeat_interval_s": 60})
    book = alerts.AlertBook(cfg)
    out = book.observe(alerts.observations(_result(["income", "balance"]), cfg), iso_s(T0), "w")
    body = notify.api_body(out, cfg.alerts, T0)
    assert {a["endsAt"] for a in body} == {iso_s(T0 + 4 * 60)}
    for state in book.firing():
        state.sent_at_s = T0
    assert book.due(T0 + 59, 60, iso_s(T0 + 59)) == []
    again = book.due(T0 + 60, 60, iso_s(T0 + 60))
    assert len(again) == 3 and {t.status for t in again} == {"firing"}


def test_the_monitor_sends_firing_alerts_again_until_they_resolve(tmp_path, registry_root, receiver):
    from monitoring.monitor import ModelMonitor
    from monitoring.retrain import Roots
    from tests.clock import ManualClock
    from tests.unit.monitoring import logdata as ld

    r = receiver()
    logs = str(tmp_path / "logs")
    ld.traffic(logs, "1", 300, ld.T0_US, 1000, seed=1, shift=1.5)  # drifted: the alerts fire
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=86400, window={"by": "rows",
                           "size_rows": 300}, alerts={"webhook_url": r.url, "webhook_format": "alertmanager_api",
                                                      "repeat_interval_s": 120, "feature_alerts": False})
    clock = ManualClock(ld.T0.timestamp() + 60)
    m = ModelMonitor("demo", cfg, Roots(registry_root, logs, "", ""), clock=clock)
    m.tick()
    assert len(r.bodies) == 1 and "MlgateDatasetDrift" in {a["labels"]["alertname"] for a in r.bodies[0]}
    logged = len(m.store.read("alerts"))
    clock.advance(60)
    m.tick()
    assert len(r.bodies) == 1  # within the repeat interval: nothing new to say
    clock.advance(61)
    m.tick()
    assert len(r.bodies) == 2 and r.bodies[1][0]["endsAt"] == iso_s(clock() + 4 * 120)
    assert len(m.store.read("alerts")) == logged  # a repeat is sent, not logged as a new transition
