"""Drift alerts delivered to a real Alertmanager (Debian's ``prometheus-alertmanager``,
started here on loopback) and read back from its API: firing while the monitor re-sends
them, with Alertmanager's own view of their state."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from monitoring.config import MonitoringConfig
from monitoring.monitor import ModelMonitor
from monitoring.retrain import Roots
from tests import debian
from tests.clock import ManualClock
from tests.conftest import free_port
from tests.polling import until
from tests.unit.monitoring import logdata as ld

CONFIG = """
route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
"""


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture
def alertmanager(tmp_path):
    binary, why = debian.find_or_install(("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager")
    if binary is None:
        pytest.skip(why)
    (tmp_path / "am.yml").write_text(CONFIG)
    port = free_port()
    log = open(tmp_path / "alertmanager.log", "wb")
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: ready(url), 60, "Alertmanager ready", proc=proc,
              detail=lambda: (tmp_path / "alertmanager.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_drift_alerts_reach_alertmanager_and_stay_active_while_re_sent(tmp_path, alertmanager):
    registry_root = str(tmp_path / "registry")
    ld.publish_version(registry_root)
    logs = str(tmp_path / "logs")
    # Alertmanager runs on the real clock: the traffic and the monitor's clock are relative to it
    start_s = time.time() - 600
    ld.traffic(logs, "1", 300, int(start_s * 1e6), 1000, seed=1, shift=1.5)
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=3600,
                           window={"by": "rows", "size_rows": 300},
                           alerts={"webhook_url": f"{alertmanager}/api/v2/alerts", "webhook_format": "alertmanager_api",
                                   "repeat_interval_s": 60, "feature_alerts": False, "retries": 1})
    clock = ManualClock(time.time())
    monitor = ModelMonitor("demo", cfg, Roots(registry_root, logs, "", ""), clock=clock)
    out = monitor.tick()
    assert {t["labels"]["alertname"] for t in out.transitions} >= {"MlgateDatasetDrift"}
    assert all(t["delivered"] for t in out.transitions)

    def active() -> list[dict]:
        alerts = get_json(f"{alertmanager}/api/v2/alerts?filter=model%3D%22demo%22")
        return [a for a in alerts if a["status"]["state"] == "active"]

    alerts = until(active, 30, "the alerts active in Alertmanager")
    dataset = next(a for a in alerts if a["labels"]["alertname"] == "MlgateDatasetDrift")
    assert dataset["labels"]["model"] == "demo" and dataset["labels"]["version"] == "1"
    assert dataset["labels"]["severity"] == "warning" and dataset["annotations"]["summary"]
    first_end = dataset["endsAt"]
    clock.advance(61)  # a repeat interval later the monitor sends them again, with a later end
    monitor.tick()

    def extended() -> bool:
        return any(a["labels"]["alertname"] == "MlgateDatasetDrift" and a["endsAt"] > first_end for a in active())

    until(extended, 30, "the re-sent alert's later endsAt")
