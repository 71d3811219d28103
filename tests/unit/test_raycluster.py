"""Connecting to a cluster: the token auth mode is set before Ray is imported (Ray reads it then)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

FAKE_RAY = """
import os
AUTH_MODE_AT_IMPORT = os.environ.get("RAY_AUTH_MODE")
calls = []
def is_initialized():
    return False
def init(**kwargs):
    calls.append(kwargs)
"""

CONNECT = """
from mlgate import raycluster
from mlgate.config import RayConfig
raycluster.init(RayConfig(address="127.0.0.1:6379"))
import ray
print(ray.AUTH_MODE_AT_IMPORT, ray.calls[0]["address"])
"""


def test_address_turns_token_auth_on_before_ray_is_imported(tmp_path):
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text(FAKE_RAY)
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    env["PYTHONPATH"] = str(tmp_path)  # this fake ``ray`` records what it saw when imported
    done = subprocess.run([sys.executable, "-c", CONNECT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["token", "127.0.0.1:6379"]
