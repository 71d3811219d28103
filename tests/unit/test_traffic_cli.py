"""``mlgate traffic show|history|set|clear`` as a user runs them: set and clear act as the
credential's identity and are audited like ``models promote``; bad flags are named. No Ray."""

from __future__ import annotations

import json

import pytest

from mlgate.cli import main
from registry import Registry
from registry.traffic import TrafficBook
from tests.cli_env import admin_cli_env, audit_records, key_file


@pytest.fixture
def env(tmp_path, monkeypatch, demo_registry):
    env = admin_cli_env(tmp_path, monkeypatch, demo_registry)
    reg = Registry(str(env / "registry"))
    v1 = reg.get("demo", 1)
    for _ in range(2):  # versions 2 and 3, copies of 1
        reg.publish("demo", {name: v1.read(name) for name in v1.manifest["files"]})
    return env


def _book(env) -> TrafficBook:
    return TrafficBook(Registry(str(env / "registry")))


def _admin(env) -> tuple[str, str]:
    return key_file(env, "ana", ["admin"])


def test_set_acts_as_the_admin_key_and_records_it(env, capsys):
    key_id, token_file = _admin(env)
    argv = ["traffic", "set", "demo", "--canary", "2=0.1", "--canary", "3=5%", "--shadow", "1=0.5",
            "--sticky-key", "X-User", "--reason", "try 2 and 3", "--by", "bo", "--token-file", token_file]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == ("demo traffic (seq 1): the primary version answers 85%; canary 2 10%; "
                                               "canary 3 5%; shadow 1 copies 50%; sticky by x-user")
    [event] = _book(env).history("demo")
    assert (event.actor, event.actor_id, event.reason) == ("ana", f"key:{key_id}", "try 2 and 3")
    assert event.policy.canaries == {2: 0.1, 3: 0.05} and event.policy.sticky_key == "x-user"
    [record] = audit_records(env)
    assert (record["action"], record["target"], record["outcome"]) == ("traffic.set", "demo", "ok")
    assert record["identity"]["id"] == f"key:{key_id}" and record["detail"]["on_behalf_of"] == "bo"
    assert record["detail"]["traffic_seq"] == 1 and record["detail"]["policy"]["canaries"] == {"2": 0.1, "3": 0.05}


def test_clear_is_audited_and_show_and_history_tell_the_story(env, capsys):
    _, token_file = _admin(env)
    assert main(["models", "promote", "demo", "1", "--force", "--reason", "ungated demo", "--token-file",
                 token_file]) == 0
    assert main(["traffic", "set", "demo", "--canary", "2=0.25", "--token-file", token_file]) == 0
    assert "production version 1 answers 75%; canary 2 25%; random per request" in capsys.readouterr().out
    assert main(["traffic", "clear", "demo", "--reason", "rolled back", "--token-file", token_file]) == 0
    assert "production version 1 answers every request" in capsys.readouterr().out
    assert [(r["action"], r["outcome"]) for r in audit_records(env)] == \
        [("models.promote", "ok"), ("traffic.set", "ok"), ("traffic.clear", "ok")]
    assert main(["traffic", "show", "demo"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["production"], shown["seq"], shown["set_by"], shown["reason"]) == (1, 2, "ana", "rolled back")
    assert shown["policy"] == {"canaries": {}, "sticky_key": None, "shadows": {}}
    assert main(["traffic", "history", "demo"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["seq", "at", "actor", "policy", "reason"]
    assert [(r[0], r[2], r[3]) for r in rows[1:]] == \
        [("1", "ana", "the primary version answers 75%; canary 2 25%; random per request"), ("2", "ana", "(cleared)")]
    assert main(["traffic", "history", "demo", "--json"]) == 0
    assert [json.loads(line)["seq"] for line in capsys.readouterr().out.splitlines()] == [1, 2]


def test_a_model_without_a_policy_shows_the_empty_one(env, capsys):
    assert main(["traffic", "show", "demo"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {"model": "demo", "production": None, "seq": 0,
                     "policy": {"canaries": {}, "sticky_key": None, "shadows": {}}}


@pytest.mark.parametrize("action", ["show", "history"])
def test_reading_an_unknown_model_is_an_error(env, capsys, action):
    assert main(["traffic", action, "dmeo"]) == 2
    assert "unknown model 'dmeo'" in capsys.readouterr().err


def test_without_an_admin_credential_set_is_refused_and_recorded(env, monkeypatch, capsys):
    _, token_file = key_file(env, "reader", ["infer:*"])
    assert main(["traffic", "set", "demo", "--canary", "2=0.1", "--token-file", token_file]) == 2
    assert "lacks the scope admin" in capsys.readouterr().err
    assert main(["traffic", "clear", "demo"]) == 2  # no credential at all
    assert "no credential" in capsys.readouterr().err
    refused = audit_records(env)
    assert [(r["action"], r["outcome"]) for r in refused] == [("traffic.set", "refused"), ("traffic.clear", "refused")]
    assert refused[0]["identity"]["name"] == "reader" and refused[1]["detail"]["presented"] == "none"
    assert _book(env).history("demo") == []


def test_an_unknown_version_fails_and_is_recorded(env, capsys):
    _, token_file = _admin(env)
    assert main(["traffic", "set", "demo", "--canary", "9=0.1", "--token-file", token_file]) == 2
    assert "model 'demo' has no version 9" in capsys.readouterr().err
    [record] = audit_records(env)
    assert record["outcome"] == "failed" and "no version 9" in record["detail"]["error"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--canary", "2=0.6", "--canary", "3=0.5"], "--canary: canary shares sum to 1.1, more than 1"),
    (["--canary", "2=0"], "--canary version 2: input should be greater than 0"),
    (["--shadow", "2=1.5"], "--shadow version 2: input should be less than or equal to 1"),
    (["--canary", "2=0.1", "--shadow", "2=0.1"], "--canary/--shadow: version 2 cannot be both a canary and a shadow"),
    (["--canary", "2=0.1", "--canary", "2=0.2"], "--canary: version 2 given twice"),
    (["--canary", "2=0.1", "--sticky-key", "a b"], "--sticky-key: 'a b' is not a header name"),
    (["--sticky-key", "x-user"], "--canary or --shadow: set needs at least one"),
])
def test_bad_policies_are_named_by_their_flag(env, capsys, flags, message):
    _, token_file = _admin(env)
    assert main(["traffic", "set", "demo", *flags, "--token-file", token_file]) == 2
    assert message in capsys.readouterr().err
    assert audit_records(env) == [] and _book(env).history("demo") == []  # refused before acting


@pytest.mark.parametrize("value", ["2", "two=0.1", "2=a", "2=%"])
def test_a_malformed_share_is_named_by_argparse(env, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["traffic", "set", "demo", "--canary", value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"argument --canary: {value!r}: expected VERSION=SHARE" in err


@pytest.mark.parametrize("action", ["show", "history", "set", "clear"])
def test_every_action_has_help(capsys, action):
    with pytest.raises(SystemExit) as exc:
        main(["traffic", action, "--help"])
    assert exc.value.code == 0 and "NAME" in capsys.readouterr().out
