"""``mlgate rollout start|pause|resume|abort|status|list`` as a user runs them (no Ray: the
rollout is recorded with --no-controller, and the controller is driven by hand)."""

from __future__ import annotations

import json

import pytest

from control.rollout.controller import RolloutController
from control.rollout.service import roots_of
from mlgate.cli import main
from mlgate.config import load_config
from registry import Registry
from registry.rollouts import RolloutBook
from registry.traffic import TrafficBook, TrafficPolicy
from tests.cli_env import admin_cli_env, audit_records, key_file


@pytest.fixture
def env(tmp_path, monkeypatch, demo_registry):
    env = admin_cli_env(tmp_path, monkeypatch, demo_registry)
    reg = Registry(str(env / "registry"))
    v1 = reg.get("demo", 1)
    reg.publish("demo", {name: v1.read(name) for name in v1.manifest["files"]})  # v2: ungated
    reg.promote("demo", 1, actor="test", force=True, reason="the demo, never evaluated")
    return env


def _admin(env) -> str:
    return key_file(env, "ana", ["admin"])[1]


def test_start_refuses_an_ungated_version_then_records_a_forced_one(env, capsys):
    token = _admin(env)
    assert main(["rollout", "start", "demo", "2", "--no-controller", "--token-file", token]) == 2
    assert "ungated" in capsys.readouterr().err and RolloutBook(Registry(str(env / "registry"))).history("demo") == []
    assert main(["rollout", "start", "demo", "2", "--steps", "10,100", "--step-s", "2m", "--shadow-first", "30",
                 "--sticky-key", "X-User", "--force", "--reason", "hotfix", "--no-controller", "--token-file",
                 token]) == 0
    out = capsys.readouterr().out
    assert "version 2 against production 1: shadow 30s, steps 10,100% every 120s" in out
    state = RolloutBook(Registry(str(env / "registry"))).get("demo")
    assert (state.status, state.spec.forced, state.spec.sticky_key, state.events[0].actor) == (
        "pending", True, "x-user", "ana")
    (record,) = [r for r in audit_records(env) if r["action"] == "rollout.start"]
    assert record["outcome"] == "ok" and record["detail"]["spec"]["steps_pct"] == [10, 100]


@pytest.mark.parametrize(("flags", "named"), [(["--steps", "10,50"], "--steps"), (["--steps", "x"], "--steps"),
                                              (["--step-s", "-3"], "--step-s"), (["--sticky-key", "a b"],
                                                                                 "--sticky-key")])
def test_bad_flags_are_named(env, capsys, flags, named):
    argv = ["rollout", "start", "demo", "2", *flags, "--force", "--reason", "r", "--no-controller",
            "--token-file", _admin(env)]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusal of a value its type rejects
        code = exc.code
    assert code == 2 and named in capsys.readouterr().err


def test_pause_resume_abort_and_status_tell_the_story(env, capsys):
    token = _admin(env)
    cfg = load_config(None)
    assert main(["rollout", "start", "demo", "2", "--force", "--reason", "r", "--no-controller",
                 "--token-file", token]) == 0
    RolloutController(roots_of(cfg)).tick()  # enters the first step
    reg = Registry(str(env / "registry"))
    assert TrafficBook(reg).current("demo") == TrafficPolicy(canaries={2: 0.05})
    assert main(["rollout", "pause", "demo", "--reason", "lunch", "--token-file", token]) == 0
    assert main(["rollout", "pause", "demo", "--token-file", token]) == 2
    assert "is paused" in capsys.readouterr().err
    assert main(["rollout", "resume", "demo", "--token-file", token]) == 0
    RolloutController(roots_of(cfg)).tick()  # an evaluation: no traffic yet, it holds
    assert main(["rollout", "abort", "demo", "--reason", "changed my mind", "--token-file", token]) == 0
    assert TrafficBook(reg).current("demo") == TrafficPolicy()  # aborted without a controller running
    capsys.readouterr()
    assert main(["rollout", "status", "demo"]) == 0
    out = capsys.readouterr().out
    assert "demo version 2 against 1: aborted (changed my mind)" in out
    for line in ("canary:5", "paused", "resumed", "aborted", "hold: canary:5"):
        assert line in out
    assert main(["rollout", "status", "demo", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in doc["events"]] == ["started", "phase", "paused", "resumed", "aborted"]
    assert doc["evaluations"][-1]["evidence"]["candidate"]["requests"] == 0
    assert main(["rollout", "list"]) == 0
    assert f"demo\t{doc['rollout_id']}\t2\t1\taborted" in capsys.readouterr().out
    assert [r["action"] for r in audit_records(env) if r["action"].startswith("rollout.")] == [
        "rollout.start", "rollout.paused", "rollout.paused", "rollout.resumed", "rollout.aborted"]
    assert main(["rollout", "resume", "demo", "--token-file", token]) == 2  # ended


def test_change_without_an_admin_credential_is_refused_and_audited(env, capsys):
    token = _admin(env)
    assert main(["rollout", "start", "demo", "2", "--force", "--reason", "r", "--no-controller",
                 "--token-file", token]) == 0
    _, reader = key_file(env, "rita", ["infer:demo"])
    assert main(["rollout", "abort", "demo", "--token-file", reader]) != 0
    assert RolloutBook(Registry(str(env / "registry"))).get("demo").status == "pending"
    assert [r["outcome"] for r in audit_records(env) if r["action"] == "rollout.aborted"] == ["refused"]
