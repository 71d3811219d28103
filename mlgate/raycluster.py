"""Connecting to a Ray cluster, or starting a local one, with token auth handled."""

from __future__ import annotations

import os
from pathlib import Path

from mlgate.config import RayConfig

TOKEN_FILE = Path("~/.ray/auth_token").expanduser()


def loopback_env() -> None:
    """Keep a local Ray's traffic on 127.0.0.1 (see README: networking)."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def auth_token() -> str | None:
    """The cluster token: ``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token``."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    if token:
        return token.strip()
    return TOKEN_FILE.read_text().strip() if TOKEN_FILE.exists() else None


def prepare_env(cfg: RayConfig) -> None:
    """The environment Ray reads when it is imported: call before anything imports ``ray``
    (a command that imports Ray-based modules first, then connects). Token auth either way:
    with an address, unless ``RAY_AUTH_MODE`` says otherwise (the clusters we connect to
    have it on); without one, always -- the local Ray we start (``ray.init`` then takes
    ``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token``, and writes a new token there when neither
    exists) never accepts a client without the token."""
    loopback_env()
    if cfg.address:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    else:
        os.environ["RAY_AUTH_MODE"] = "token"


def init(cfg: RayConfig, *, dashboard: bool = False, log_to_driver: bool = True) -> None:
    """``ray.init`` against ``cfg.address``, or a new local instance on loopback."""
    prepare_env(cfg)
    import ray

    if ray.is_initialized():
        return
    if cfg.address:
        ray.init(address=cfg.address, namespace=cfg.namespace, log_to_driver=log_to_driver)
        return
    ray.init(
        address="local",  # a new instance: never RAY_ADDRESS or a `ray start` cluster found on this machine
        num_cpus=cfg.num_cpus,
        include_dashboard=dashboard,
        dashboard_host="127.0.0.1",
        dashboard_port=cfg.dashboard_port,
        _node_ip_address="127.0.0.1",
        namespace=cfg.namespace,
        log_to_driver=log_to_driver,
    )


def cluster_gpus() -> float:
    import ray

    return float(ray.cluster_resources().get("GPU", 0.0))
