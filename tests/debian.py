"""Debian packages the tests use as real peers (chromium, Alertmanager, promtool),
installed on demand when the tests run as root with apt-get (as CI does)."""

from __future__ import annotations

import os
import shutil
import subprocess


def find_or_install(commands: tuple[str, ...], package: str) -> tuple[str | None, str]:
    """(path of the first of ``commands`` found, why not): ``apt-get install -y PACKAGE``
    once when none is on PATH (``apt-get update`` first if the install fails)."""
    found = next((shutil.which(c) for c in commands if shutil.which(c)), None)
    if found:
        return found, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, f"{package} is not installed and cannot be installed here (needs root and apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "--no-install-recommends", package], ["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", package]):
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"installing {package} failed: {exc}"
        found = next((shutil.which(c) for c in commands if shutil.which(c)), None)
        if found:
            return found, ""
    return None, f"apt-get could not install {package} (no network or no package)"
