"""Admin actions of the CLI as a user runs them: acted as the credential's identity and audited
(``mlgate models promote|rollback``), and ``mlgate audit list|verify``. No Ray."""

from __future__ import annotations

import json

import pytest

from mlgate.cli import main
from tests.cli_env import admin_cli_env, audit_records, key_file


@pytest.fixture
def env(tmp_path, monkeypatch, demo_registry):
    return admin_cli_env(tmp_path, monkeypatch, demo_registry)


def _history(env) -> list[dict]:
    from registry import Registry

    return [e.model_dump() for e in Registry(str(env / "registry")).stage_history("demo")]


def test_promote_acts_as_the_admin_key_and_records_it(env, capsys):
    key_id, token_file = key_file(env, "ana", ["admin"])
    argv = ["models", "promote", "demo", "1", "--force", "--reason", "good", "--by", "bo", "--token-file", token_file]
    assert main(argv) == 0
    assert "demo version 1 is production" in capsys.readouterr().out
    [record] = audit_records(env)
    assert record["identity"] == {"id": f"key:{key_id}", "name": "ana", "kind": "key"}
    assert (record["action"], record["target"], record["outcome"]) == ("models.promote", "demo/1", "ok")
    assert record["detail"]["on_behalf_of"] == "bo" and record["detail"]["reason"] == "good"
    assert record["detail"]["stage_seq"] == 1
    [event] = _history(env)
    assert event["actor"] == "ana"  # the credential's name, never --by
    assert event["actor_id"] == f"key:{key_id}"  # and the identity itself
    assert main(["models", "stages", "demo"]) == 0
    [shown] = json.loads(capsys.readouterr().out)["history"]
    assert (shown["actor"], shown["actor_id"]) == ("ana", f"key:{key_id}")


def test_an_infer_only_key_is_refused_and_recorded(env, monkeypatch, capsys):
    _, token_file = key_file(env, "reader", ["infer:*"])
    monkeypatch.setenv("MLGATE_TOKEN", open(token_file).read().strip())
    assert main(["models", "promote", "demo", "1"]) == 2
    assert "lacks the scope admin" in capsys.readouterr().err
    [record] = audit_records(env)
    assert record["outcome"] == "refused" and record["identity"]["name"] == "reader"
    assert "lacks the scope admin" in record["detail"]["error"]
    assert _history(env) == []


def test_no_credential_is_refused_and_recorded(env, capsys):
    assert main(["models", "rollback", "demo", "--reason", "x"]) == 2
    assert "no credential" in capsys.readouterr().err
    [record] = audit_records(env)
    assert record["outcome"] == "refused" and record["identity"] is None
    assert record["detail"]["presented"] == "none" and record["detail"]["reason"] == "x"


def test_an_unknown_key_is_recorded_by_its_id_never_its_secret(env, monkeypatch, capsys):
    key_file(env, "ana", ["admin"])
    bogus = "mlg_00112233aabbccdd_" + "s" * 43
    monkeypatch.setenv("MLGATE_TOKEN", bogus)
    assert main(["models", "promote", "demo", "1"]) == 2
    [record] = audit_records(env)
    assert record["identity"] is None and record["detail"]["presented"] == "api key 00112233aabbccdd"
    assert "s" * 43 not in (env / "audit" / "audit.jsonl").read_text()


def test_a_failing_action_is_recorded_as_failed(env, capsys):
    _, token_file = key_file(env, "ana", ["admin"])
    assert main(["models", "rollback", "demo", "--reason", "x", "--token-file", token_file]) == 2
    assert "no previous production version" in capsys.readouterr().err
    [record] = audit_records(env)
    assert record["outcome"] == "failed" and record["identity"]["name"] == "ana"
    assert "no previous production version" in record["detail"]["error"]


def test_promoting_an_ungated_version_is_refused_and_recorded_as_failed(env, capsys):
    """``demo`` version 1 was registered without a gate record (training.quickfit)."""
    _, token_file = key_file(env, "ana", ["admin"])
    assert main(["models", "promote", "demo", "1", "--token-file", token_file]) == 2
    err = capsys.readouterr().err
    assert "demo version 1 is ungated" in err and "mlgate models evaluate demo 1 --data DATASET" in err
    assert "--force and a --reason" in err
    [record] = audit_records(env)
    assert record["outcome"] == "failed" and "is ungated" in record["detail"]["error"]
    assert _history(env) == []
    assert main(["models", "promote", "demo", "1", "--force", "--reason", "hand-built", "--token-file",
                 token_file]) == 0
    assert "demo version 1 is production (forced past a missing gate)" in capsys.readouterr().out
    [event] = _history(env)
    assert (event["forced"], event["gate"], event["reason"]) == (True, "ungated", "hand-built")


def test_with_auth_off_the_local_user_acts(env, monkeypatch):
    monkeypatch.setenv("MLGATE_SERVING__AUTH__ENABLED", "false")
    assert main(["models", "promote", "demo", "1", "--force", "--reason", "ungated demo"]) == 0
    [record] = audit_records(env)
    assert record["identity"]["kind"] == "local" and _history(env)[0]["actor"] == record["identity"]["name"]
    assert _history(env)[0]["actor_id"] == record["identity"]["id"]


def test_audit_list_and_verify(env, capsys):
    _, token_file = key_file(env, "ana", ["admin"])
    assert main(["models", "promote", "demo", "1", "--force", "--reason", "r", "--token-file", token_file]) == 0
    assert main(["models", "rollback", "demo", "--reason", "x"]) == 2  # no credential: refused
    capsys.readouterr()
    assert main(["audit", "list", "--token-file", token_file]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["seq", "ts", "identity", "action", "target", "outcome"]
    assert rows[1].split()[2:] == ["ana", "models.promote", "demo/1", "ok"]
    assert rows[2].split()[2:] == ["(none)", "models.rollback", "demo", "refused"]
    assert main(["audit", "list", "--json", "--since", "1h", "--token-file", token_file]) == 0
    assert [json.loads(line)["seq"] for line in capsys.readouterr().out.splitlines()] == [1, 2]
    assert main(["audit", "list", "--since", "2999-01-01", "--token-file", token_file]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # the header
    assert main(["audit", "verify", "--token-file", token_file]) == 0
    assert "audit trail intact: 2 records" in capsys.readouterr().out


def test_audit_verify_names_an_edited_record(env, capsys):
    _, token_file = key_file(env, "ana", ["admin"])
    assert main(["models", "promote", "demo", "1", "--force", "--reason", "r", "--token-file", token_file]) == 0
    path = env / "audit" / "audit.jsonl"
    path.write_text(path.read_text().replace('"ana"', '"eve"'))
    capsys.readouterr()
    assert main(["audit", "verify", "--token-file", token_file]) == 1
    err = capsys.readouterr().err
    assert "broken at line 1" in err and "edited" in err


def test_reading_the_audit_needs_an_admin_credential(env, capsys):
    _, token_file = key_file(env, "reader", ["infer:*"])
    assert main(["audit", "list"]) == 2
    assert "no credential" in capsys.readouterr().err
    assert main(["audit", "verify", "--token-file", token_file]) == 2
    assert "lacks the scope admin" in capsys.readouterr().err
