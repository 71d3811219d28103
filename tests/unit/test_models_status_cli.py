"""``mlgate models status``: the registry's wanted versions beside what each replica
reports (its status file), stale replicas marked, ``--check`` failing on a load failure."""

from __future__ import annotations

import json
import time

import pytest

from contracts.replicas import write_status
from mlgate.cli import main
from tests.cli_env import admin_cli_env


@pytest.fixture
def env(tmp_path, monkeypatch, demo_registry):
    env = admin_cli_env(tmp_path, monkeypatch, demo_registry)
    monkeypatch.setenv("MLGATE_LOG_ROOT", str(env / "logs"))
    return env


def record(source: str, updated_at: float, failed: dict | None = None) -> dict:
    return {"source": source, "address": "127.0.0.1:8000", "updated_at": updated_at, "heartbeat_s": 10.0,
            "models": {"demo": {"serving": [1], "draining": [], "failed": failed or {}}}}


def test_each_replica_is_shown_beside_what_the_registry_wants(env, capsys):
    now = time.time()
    write_status(str(env / "logs"), "a", record("a", now))
    write_status(str(env / "logs"), "b", record("b", now - 1000))  # silent for 100 heartbeats
    assert main(["models", "status", "demo"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "demo" and doc["wanted"] == [1] and doc["production"] is None
    assert [(r["source"], r["stale"], r["serving"]) for r in doc["replicas"]] == [("a", False, [1]), ("b", True, [1])]


def test_check_fails_while_a_live_replica_reports_a_failed_load(env, capsys):
    failed = {"2": {"error": "RegistryError: model.pt does not match its manifest", "at": 1.0, "attempts": 3}}
    write_status(str(env / "logs"), "b", record("b", time.time() - 1000, failed))  # stale: does not count
    assert main(["models", "status", "--check"]) == 0
    write_status(str(env / "logs"), "a", record("a", time.time(), failed))
    capsys.readouterr()
    assert main(["models", "status", "--check"]) == 1
    (demo,) = json.loads(capsys.readouterr().out)
    assert [r["failed"]["2"]["attempts"] for r in demo["replicas"]] == [3, 3]


def test_without_any_replica_the_list_is_empty(env, capsys):
    assert main(["models", "status", "demo"]) == 0
    assert json.loads(capsys.readouterr().out)["replicas"] == []


def test_wanted_counts_the_traffic_policy_s_versions_as_a_replica_does(env, capsys):
    from registry import Registry
    from registry.traffic import TrafficBook, TrafficPolicy
    from tests.models import publish_copy

    reg = Registry(str(env / "registry"))
    publish_copy(reg, reg.get("demo", 1), "demo")  # version 2: the newest, the policy's primary
    TrafficBook(reg).set("demo", TrafficPolicy(canaries={1: 0.1}), actor="test")
    assert main(["models", "status", "demo"]) == 0
    assert json.loads(capsys.readouterr().out)["wanted"] == [1, 2]
