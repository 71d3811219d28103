"""``mlgate up`` as a subprocess for e2e tests: started with a demo registry on a free port,
with access control on and its keys under the test's directory (the admin key ``mlgate up``
creates is the test's credential, as it is a user's), stopped by its PID (SIGTERM, then
SIGKILL to its own session)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port
from tests.polling import until, wait_ready

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Served:
    port: int
    admin_key: str  # "" with serving.auth.enabled false
    keys_file: Path
    log_path: Path

    @property
    def headers(self) -> dict[str, str]:
        """The admin key as a request header."""
        return {"Authorization": f"Bearer {self.admin_key}"} if self.admin_key else {}


def auth_env(work: Path) -> dict[str, str]:
    """``MLGATE_*`` settings that keep a server's keys (and the CLI's) under ``work/auth``."""
    return {"MLGATE_SERVING__AUTH__KEYS_FILE": str(work / "auth" / "keys.json"),
            "MLGATE_SERVING__AUTH__ADMIN_KEY_FILE": str(work / "auth" / "admin.key"),
            "MLGATE_AUDIT_ROOT": str(work / "audit")}


@contextlib.contextmanager
def mlgate_up(registry_root: str, work: Path, ready_timeout_s: float = 180.0, ready=None,
              **env_vars: str) -> Iterator[Served]:
    """Serve ``registry_root`` (logs and keys under ``work``), with extra ``MLGATE_*`` settings;
    ``ready(port)``: whether it serves (default: plain HTTP readiness)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_") and k != "RAY_ADDRESS"}
    env.update(auth_env(work))
    env.update(MLGATE_REGISTRY_ROOT=registry_root, MLGATE_LOG_ROOT=str(work / "logs"), RAY_ADDRESS="local",
               RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), **env_vars)
    log_path = work / "mlgate.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mlgate", "up", "--port", str(port),
                                 "--admin-port", str(free_port())], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            detail = lambda: log_path.read_text()[-3000:]  # noqa: E731
            if ready is None:
                wait_ready(port, ready_timeout_s, proc=proc, detail=detail)
            else:
                until(lambda: ready(port), ready_timeout_s, f"mlgate on port {port} ready", proc=proc, detail=detail)
            admin_file = Path(env["MLGATE_SERVING__AUTH__ADMIN_KEY_FILE"])
            key = admin_file.read_text().strip() if admin_file.exists() else ""
            yield Served(port, key, Path(env["MLGATE_SERVING__AUTH__KEYS_FILE"]), log_path)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: mlgate and the Ray it started
                proc.wait(10)
