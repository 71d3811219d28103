"""``mlgate models policy show|set|clear``: a version policy set at run time in the registry,
which replicas follow (serving.selection), audited; clear returns to the configured one."""

from __future__ import annotations

import json

import pytest

from mlgate.cli import main
from mlgate.config import load_config
from registry import Registry
from registry.store import VersionPolicy
from registry.version_policies import PolicyBook
from serving.selection import wanted
from tests.cli_env import admin_cli_env, audit_records, key_file


@pytest.fixture
def env(tmp_path, monkeypatch, demo_registry):
    env = admin_cli_env(tmp_path, monkeypatch, demo_registry)
    reg = Registry(str(env / "registry"))
    v1 = reg.get("demo", 1)
    for _ in range(2):  # versions 2 and 3
        reg.publish("demo", {name: v1.read(name) for name in v1.manifest["files"]})
    reg.promote("demo", 1, actor="t", force=True, reason="the demo")
    return env


def show(capsys) -> dict:
    capsys.readouterr()
    assert main(["models", "policy", "show", "demo"]) == 0
    return json.loads(capsys.readouterr().out)


def test_set_changes_what_replicas_want_and_clear_restores_the_config(env, capsys):
    token = key_file(env, "ana", ["admin"])[1]
    reg, cfg = Registry(str(env / "registry")), load_config(None).serving
    assert show(capsys)["source"] == "config" and show(capsys)["serves_now"] == [1]
    assert main(["models", "policy", "set", "demo", "--specific", "2,3", "--reason", "both", "--token-file",
                 token]) == 0
    assert PolicyBook(reg).current("demo") == VersionPolicy(policy="specific", versions=(2, 3))
    assert wanted(reg, cfg)["demo"].numbers == (2, 3)  # what every replica follows within reload_interval_s
    doc = show(capsys)
    assert (doc["source"], doc["serves_now"], doc["set_by"], doc["reason"]) == ("registry", [2, 3], "ana", "both")
    assert main(["models", "policy", "set", "demo", "--latest", "2", "--no-prefer-stage", "--token-file",
                 token]) == 0
    assert wanted(reg, cfg)["demo"].numbers == (2, 3)
    assert main(["models", "policy", "clear", "demo", "--token-file", token]) == 0
    assert wanted(reg, cfg)["demo"].numbers == (1,) and show(capsys)["source"] == "config"
    assert [(r["action"], r["outcome"]) for r in audit_records(env)][-3:] == [("models.policy", "ok")] * 3


def test_set_needs_a_rule_and_an_admin(env, capsys):
    token = key_file(env, "ana", ["admin"])[1]
    assert main(["models", "policy", "set", "demo", "--token-file", token]) == 2
    assert "--latest, --all or --specific" in capsys.readouterr().err
    reader = key_file(env, "rita", ["infer:demo"])[1]
    assert main(["models", "policy", "set", "demo", "--all", "--token-file", reader]) != 0
    assert PolicyBook(Registry(str(env / "registry"))).current("demo") is None
    assert audit_records(env)[-1]["outcome"] == "refused"
    assert main(["models", "policy", "show", "nope"]) != 0
