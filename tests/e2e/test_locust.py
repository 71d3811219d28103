"""A short headless locust run of the mixed scenario against ``mlgate up``, as
``make loadtest`` runs it: exit code 0 with a generous SLO, expected 400s not failures,
CSV and summary written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mlgate_up import mlgate_up

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mlgate_url(tmp_path, demo_registry):
    with mlgate_up(demo_registry, tmp_path) as served:  # about 20 s on an idle 2-core machine
        yield served


def test_mixed_scenario_passes_and_counts_bad_inputs_as_expected(mlgate_url, tmp_path):
    prefix = tmp_path / "loadtest" / "mixed"
    prefix.parent.mkdir()
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "benchmarks" / "locustfile.py"), "--headless",
           "-H", f"http://127.0.0.1:{mlgate_url.port}", "--token", mlgate_url.admin_key,
           "-u", "4", "-r", "4", "-t", "8s", "--scenario", "mixed", "--model", "demo",
           "--bad-share", "0.2", "--slo-p99-ms", "5000", "--csv", str(prefix), "--html", f"{prefix}.html",
           "--only-summary"]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert Path(f"{prefix}_stats.csv").exists()
    summary = json.loads(Path(f"{prefix}_summary.json").read_text())
    assert summary["passed"] and summary["requests"] > 0
    assert summary["expected_400"] > 0  # bad inputs were sent, answered 400, and not failures
    assert summary["unexpected_failures"] == 0
