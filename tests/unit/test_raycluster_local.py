"""A local Ray that mlgate starts (no --address) has token auth on, whatever the caller's
environment says (issue 16). A fake ``ray`` records the mode it saw when imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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

START_LOCAL = """
from mlgate import raycluster
from mlgate.config import RayConfig
raycluster.init(RayConfig())
import ray
print(ray.AUTH_MODE_AT_IMPORT, ray.calls[0]["address"], ray.calls[0]["dashboard_host"])
"""


@pytest.mark.parametrize("mode", [None, "disabled"])
def test_a_local_start_turns_token_auth_on_before_ray_is_imported(tmp_path, mode):
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text(FAKE_RAY)
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    if mode is not None:
        env["RAY_AUTH_MODE"] = mode
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", START_LOCAL], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["token", "local", "127.0.0.1"]
