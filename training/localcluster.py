"""A private local Ray cluster with the dashboard (so the Job Submission API is there).

``ray start --head --block`` as a child process on 127.0.0.1, every port chosen free,
its own temp dir, token auth on (``RAY_AUTH_MODE=token``: Ray creates
``~/.ray/auth_token`` if there is none). Stopped by signalling that one process, which
takes its Ray processes down with it: never ``ray stop``, which would also stop other
people's clusters on the same machine.

No node draining at stop (no Serve traffic to protect). Jobs inherit the head's environment:
the venv's ``python`` first on ``PATH``, this
checkout on ``PYTHONPATH``, and ``RAY_ADDRESS`` naming this cluster (Ray Train's helper
actors otherwise look for "the" local cluster and find several on a shared machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_PORT_FLAGS = ("port", "dashboard-port", "ray-client-server-port", "dashboard-agent-listen-port",
               "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port",
               "node-manager-port", "object-manager-port")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """``with LocalCluster(num_cpus=4) as c: JobSubmissionClient(c.dashboard_url, ...)``."""

    def __init__(self, num_cpus: int | None = None, num_gpus: int | None = None) -> None:
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.ports = {flag: free_port() for flag in _PORT_FLAGS}
        self.temp_dir = tempfile.mkdtemp(prefix="mlg-ray-")
        self.log_path = os.path.join(self.temp_dir, "head.log")
        self.process: subprocess.Popen | None = None

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['dashboard-port']}"

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.ports['port']}"

    def command(self) -> list[str]:
        ray = os.path.join(os.path.dirname(sys.executable), "ray")
        cmd = [ray if os.path.exists(ray) else "ray", "start", "--head", "--block", "--node-ip-address=127.0.0.1",
               "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--temp-dir={self.temp_dir}",
               "--disable-usage-stats", *(f"--{flag}={port}" for flag, port in self.ports.items())]
        if self.num_cpus is not None:
            cmd.append(f"--num-cpus={self.num_cpus}")
        if self.num_gpus is not None:
            cmd.append(f"--num-gpus={self.num_gpus}")
        return cmd

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="token", RAY_ADDRESS=self.gcs_address,
                   RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",  # nothing to drain: no Serve traffic here
                   PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p))
        return env

    def start(self, timeout_s: float = 180.0) -> LocalCluster:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(), env=self.environment(), stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO_ROOT,
                                            start_new_session=True)  # Ctrl-C is ours to handle
        try:
            self._wait_ready(timeout_s)
        except BaseException:  # Ctrl-C or a failed start: leave nothing running
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        """Until the job API answers (an external process gives no event to wait on)."""
        import urllib.request

        give_up = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.process.returncode}:\n{self.log_tail()}")
            try:  # answers without a token once the dashboard and GCS are up
                with urllib.request.urlopen(f"{self.dashboard_url}/api/gcs_healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > give_up:
                raise TimeoutError(f"the local Ray dashboard did not answer within {timeout_s:.0f}s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.5)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM to our ``ray start`` only; it stops the Ray processes it started."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
