"""Fixtures of the monitoring unit tests: a registry holding ``demo`` v1 with its references."""

from __future__ import annotations

import pytest

from tests.unit.monitoring import logdata


@pytest.fixture(scope="session")
def registry_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("monitoring-registry"))
    assert logdata.publish_version(root) == 1
    return root
