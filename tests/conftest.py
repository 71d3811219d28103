"""Shared fixtures. Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER at import time: set first."""

from __future__ import annotations

import os
import socket

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep Ray on loopback
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import pytest  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo_registry(tmp_path_factory) -> str:
    """A registry root holding ``demo`` version 1, fitted once per session."""
    from registry import Registry
    from training.quickfit import fit_demo

    root = str(tmp_path_factory.mktemp("registry"))
    fit_demo(Registry(root))
    return root


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole session (integration tier)."""
    import ray

    ray.init(address="local", num_cpus=4, include_dashboard=False, _node_ip_address="127.0.0.1",
             namespace="mlgate-tests", log_to_driver=False)
    yield ray
    try:
        from ray import serve

        serve.shutdown()
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """A key store with an admin key (``keys.admin``); ``keys.auth`` is its ``serving.auth``."""
    from tests.keys import make_keys

    return make_keys(tmp_path_factory.mktemp("auth"))
