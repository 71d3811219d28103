"""Connecting to a cluster: the token auth mode is set before Ray is imported (Ray reads it then)."""

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

CONNECT = """
from mlgate import raycluster
from mlgate.config import RayConfig
raycluster.init(RayConfig(address="127.0.0.1:6379"))
import ray
print(ray.AUTH_MODE_AT_IMPORT, ray.calls[0]["address"])
"""


START_LOCAL = """
from mlgate import raycluster
from mlgate.config import RayConfig
raycluster.init(RayConfig())
import ray
print(ray.AUTH_MODE_AT_IMPORT, ray.calls[0]["address"], ray.calls[0]["dashboard_host"])
"""


def with_fake_ray(tmp_path, script: str, auth_mode: str | None = None) -> list[str]:
    """``script``'s output words, run with a fake ``ray`` that records what it saw when imported
    (``RAY_AUTH_MODE`` set to ``auth_mode``, or unset)."""
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text(FAKE_RAY)
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    if auth_mode is not None:
        env["RAY_AUTH_MODE"] = auth_mode
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_address_turns_token_auth_on_before_ray_is_imported(tmp_path):
    assert with_fake_ray(tmp_path, CONNECT) == ["token", "127.0.0.1:6379"]


@pytest.mark.parametrize("mode", [None, "disabled"])
def test_a_local_start_turns_token_auth_on_before_ray_is_imported(tmp_path, mode):
    """A local Ray that mlgate starts (no --address) has token auth on, whatever the caller's
    environment says (issue 16)."""
    assert with_fake_ray(tmp_path, START_LOCAL, mode) == ["token", "local", "127.0.0.1"]


UP_AND_MONITOR = """
import sys, types
from mlgate.config import load_config
cfg = load_config(overrides={"ray.address": "127.0.0.1:6379"})
seen = []
class Stop(Exception):
    pass
def stop_at_serve(name, *a, **k):
    if name == "ray" or name.startswith("ray."):
        import os
        seen.append(os.environ.get("RAY_AUTH_MODE"))
        raise Stop()
    return real_import(name, *a, **k)
import builtins
real_import = builtins.__import__
builtins.__import__ = stop_at_serve
from mlgate import up
from mlgate.commands import monitor
for call in (lambda: up.run(cfg), lambda: monitor._serve(cfg, None, None, None, False)):
    try:
        call()
    except Stop:
        pass
print(seen)
"""


def test_up_and_monitor_with_an_address_turn_token_auth_on_before_importing_ray():
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    done = subprocess.run([sys.executable, "-c", UP_AND_MONITOR], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['token', 'token']"
