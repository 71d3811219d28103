"""A short headless locust run of the mixed scenario against ``mlgate up``, as
``make loadtest`` runs it: exit code 0 with a generous SLO, expected 400s not failures,
CSV and summary written."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.polling import wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlgate_url(tmp_path, demo_registry):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_") and k != "RAY_ADDRESS"}
    env.update(MLGATE_REGISTRY_ROOT=demo_registry, MLGATE_LOG_ROOT=str(tmp_path / "logs"),
               RAY_ADDRESS="local", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    log = open(tmp_path / "mlgate.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "mlgate", "up", "--port", str(port)], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(port, 180, proc=proc)  # about 20 s on an idle 2-core machine
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: mlgate and the Ray it started
            proc.wait(10)
        log.close()


def test_mixed_scenario_passes_and_counts_bad_inputs_as_expected(mlgate_url, tmp_path):
    prefix = tmp_path / "loadtest" / "mixed"
    prefix.parent.mkdir()
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "benchmarks" / "locustfile.py"), "--headless",
           "-H", mlgate_url, "-u", "4", "-r", "4", "-t", "8s", "--scenario", "mixed", "--model", "demo",
           "--bad-share", "0.2", "--slo-p99-ms", "5000", "--csv", str(prefix), "--html", f"{prefix}.html",
           "--only-summary"]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert Path(f"{prefix}_stats.csv").exists()
    summary = json.loads(Path(f"{prefix}_summary.json").read_text())
    assert summary["passed"] and summary["requests"] > 0
    assert summary["expected_400"] > 0  # bad inputs were sent, answered 400, and not failures
    assert summary["unexpected_failures"] == 0
