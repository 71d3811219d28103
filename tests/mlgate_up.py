"""``mlgate up`` as a subprocess for e2e tests: started with a demo registry on a free port,
stopped by its PID (SIGTERM, then SIGKILL to its own session)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import free_port
from tests.polling import wait_ready

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def mlgate_up(registry_root: str, work: Path, ready_timeout_s: float = 180.0, **env_vars: str) -> Iterator[int]:
    """Serve ``registry_root`` (logs under ``work``), with extra ``MLGATE_*`` settings; yields the port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_") and k != "RAY_ADDRESS"}
    env.update(MLGATE_REGISTRY_ROOT=registry_root, MLGATE_LOG_ROOT=str(work / "logs"), RAY_ADDRESS="local",
               RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), **env_vars)
    log_path = work / "mlgate.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mlgate", "up", "--port", str(port)], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_ready(port, ready_timeout_s, proc=proc, detail=lambda: log_path.read_text()[-3000:])
            yield port
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: mlgate and the Ray it started
                proc.wait(10)
