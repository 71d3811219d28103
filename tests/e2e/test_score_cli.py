"""``mlgate score`` and ``python -m batch`` as a user runs them (issue 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.unit.batch.batchdata import edge_rows

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def mlgate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlgate", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_score_then_rerun(demo_registry, tmp_path):
    pq.write_table(edge_rows(300), tmp_path / "rows.parquet", row_group_size=100)
    args = ["score", "--model", "demo:1", "--input", str(tmp_path / "rows.parquet"), "--output",
            str(tmp_path / "out"), "--registry", demo_registry, "--concurrency", "1", "--batch-size", "64",
            "--key", "customer_id"]
    env = {"MLGATE_BATCH__FRAGMENT_ROWS": "200", "MLGATE_RAY__NUM_CPUS": "1"}
    first = mlgate(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "rows in 300, scored 298, rejected 2" in first.stdout
    assert "parts: 2 written, 0 already done, 0 failed, 2 in all" in first.stdout
    assert "rows/s" in first.stderr and "ETA" in first.stderr  # the progress line
    out = pq.read_table(tmp_path / "out")
    assert out.num_rows == 298 and out.column_names[0] == "customer_id"

    again = mlgate(*args, env=env)  # finished: nothing to score, Ray not even started
    assert again.returncode == 0, again.stderr
    assert "parts: 0 written, 2 already done" in again.stdout


def test_mistakes_fail_fast_with_the_flag_named(demo_registry, tmp_path):
    pq.write_table(edge_rows(10), tmp_path / "rows.parquet")
    base = ["score", "--input", str(tmp_path / "rows.parquet"), "--output", str(tmp_path / "out"),
            "--registry", demo_registry]
    bad_model = mlgate(*base, "--model", "demo:7")
    assert bad_model.returncode == 2 and "no version 7" in bad_model.stderr
    no_stage = mlgate(*base, "--model", "demo@production")
    assert no_stage.returncode == 2 and "no version in stage 'production'" in no_stage.stderr
    bad_key = mlgate(*base, "--model", "demo", "--key", "nope")
    assert bad_key.returncode == 2 and "--key" in bad_key.stderr


def test_python_m_batch_is_the_score_command():
    helped = subprocess.run([sys.executable, "-m", "batch", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0 and "usage: mlgate score" in helped.stdout and "--model" in helped.stdout
    cli = subprocess.run([sys.executable, "-m", "mlgate", "score", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert cli.returncode == 0 and helped.stdout == cli.stdout  # one set of flags, not two copies


HEAD = """
import signal, sys, threading, time
import ray
from ray.job_submission import JobStatus, JobSubmissionClient
port = int(sys.argv[1])
ray.init(num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", dashboard_port=port,
         _node_ip_address="127.0.0.1", log_to_driver=False)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
client, give_up = JobSubmissionClient(f"http://127.0.0.1:{port}"), time.monotonic() + 120
while True:  # the job agent starts after ray.init returns: ready once a no-op job has run
    try:
        job = client.submit_job(entrypoint="true")
        while client.get_job_status(job) not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            time.sleep(0.2)  # polling for readiness, bounded above
        break
    except RuntimeError:
        if time.monotonic() > give_up:
            raise
        time.sleep(0.5)  # polling for readiness, bounded above
print("ready", flush=True)
stop.wait()
ray.shutdown()
"""


@pytest.mark.slow
def test_ray_job_submit_runs_python_m_batch(demo_registry, tmp_path):
    """The README's ``ray job submit -- python -m batch ...`` against a head this test starts."""
    from tests.conftest import free_port

    pq.write_table(edge_rows(100), tmp_path / "rows.parquet")
    port = free_port()
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    head = subprocess.Popen([sys.executable, "-c", HEAD, str(port)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert head.stdout.readline().strip() == "ready"
        job = subprocess.run(
            [str(Path(sys.executable).with_name("ray")), "job", "submit", "--address", f"http://127.0.0.1:{port}",
             "--", sys.executable, "-m", "batch", "--model", "demo:1", "--input", str(tmp_path / "rows.parquet"),
             "--output", str(tmp_path / "out"), "--registry", demo_registry, "--concurrency", "1"],
            capture_output=True, text=True, timeout=300, env=env)
        assert job.returncode == 0, job.stdout + job.stderr
        assert "rows in 100, scored 98, rejected 2" in job.stdout
        assert pq.read_table(tmp_path / "out").num_rows == 98
    finally:
        head.terminate()
        head.wait(timeout=120)


GCS_HEAD = """
import signal, sys, threading
import ray
ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
print(ray.get_runtime_context().gcs_address, flush=True)
stop.wait()
ray.shutdown()
"""


def test_score_with_address_connects_to_a_token_auth_cluster_without_extra_environment(demo_registry, tmp_path):
    """Ray reads its auth mode when imported: ``--address`` alone must be enough (no RAY_AUTH_MODE set)."""
    pq.write_table(edge_rows(100), tmp_path / "rows.parquet")
    head_env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    head = subprocess.Popen([sys.executable, "-c", GCS_HEAD], stdout=subprocess.PIPE, text=True, env=head_env)
    try:
        address = head.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        user_env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
        done = subprocess.run(
            [sys.executable, "-m", "mlgate", "score", "--model", "demo:1", "--input", str(tmp_path / "rows.parquet"),
             "--output", str(tmp_path / "out"), "--registry", demo_registry, "--concurrency", "1",
             "--address", address],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env=user_env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "rows in 100, scored 98, rejected 2" in done.stdout
        assert pq.read_table(tmp_path / "out").num_rows == 98
    finally:
        head.terminate()
        head.wait(timeout=120)
