"""``mlgate tokens create|list|revoke`` as a user runs them: the key is printed once and works,
only its hash is stored, revocation refuses it, every action needs an admin credential and
is audited. No Ray."""

from __future__ import annotations

import json

import pytest

from access.audit import AuditLog
from access.authenticator import Authenticator
from access.config import AuthConfig
from access.keys import KeyStore
from contracts.errors import Unauthenticated
from mlgate.cli import main


@pytest.fixture
def env(tmp_path, monkeypatch):
    for name, value in {"AUDIT_ROOT": tmp_path / "audit", "SERVING__AUTH__KEYS_FILE": tmp_path / "keys.json",
                        "SERVING__AUTH__ADMIN_KEY_FILE": tmp_path / "admin.key"}.items():
        monkeypatch.setenv(f"MLGATE_{name}", str(value))
    for name in ("MLGATE_CONFIG", "MLGATE_TOKEN", "MLGATE_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    _, admin = KeyStore(str(tmp_path / "keys.json")).create("ops", ["admin"])
    monkeypatch.setenv("MLGATE_TOKEN", admin)
    return tmp_path


def authorize(env, key: str, scope: str):
    return Authenticator(AuthConfig(keys_file=str(env / "keys.json"))).authorize(f"Bearer {key}", scope)


def test_create_prints_the_key_once_and_it_works(env, capsys):
    argv = ["tokens", "create", "--name", "shop", "--scope", "infer:demo", "--scope", "feedback:demo", "--ttl", "30d"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("mlg_") and "shown only once" in err and "infer:demo feedback:demo" in err
    assert authorize(env, key, "feedback:demo").name == "shop"
    assert key not in (env / "keys.json").read_text()
    [record] = [r for r in AuditLog(str(env / "audit")).records() if r["action"] == "token.create"]
    assert record["identity"]["name"] == "ops" and record["outcome"] == "ok" and key not in json.dumps(record)


def test_list_shows_names_scopes_and_status_never_keys_or_hashes(env, capsys):
    main(["tokens", "create", "--name", "shop", "--scope", "infer:*"])
    key = capsys.readouterr().out.strip()
    assert main(["tokens", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["name"], k["status"], k["scopes"]) for k in listed] == [("ops", "active", ["admin"]),
                                                                       ("shop", "active", ["infer:*"])]
    assert all("hash" not in k for k in listed) and key not in json.dumps(listed)
    assert main(["tokens", "list"]) == 0
    assert "shop\tactive\tinfer:*" in capsys.readouterr().out


def test_revoke_refuses_the_key_and_is_audited(env, capsys):
    main(["tokens", "create", "--name", "shop", "--scope", "infer:demo"])
    key = capsys.readouterr().out.strip()
    assert main(["tokens", "revoke", "shop"]) == 0
    assert "revoked key" in capsys.readouterr().out
    with pytest.raises(Unauthenticated):
        authorize(env, key, "infer:demo")
    assert main(["tokens", "revoke", "shop"]) == 2  # nothing active by that name
    outcomes = [(r["action"], r["outcome"]) for r in AuditLog(str(env / "audit")).records()]
    assert outcomes == [("token.create", "ok"), ("token.revoke", "ok"), ("token.revoke", "failed")]


def test_a_key_without_admin_cannot_make_keys(env, capsys, monkeypatch):
    _, narrow = KeyStore(str(env / "keys.json")).create("shop", ["infer:*"])
    monkeypatch.setenv("MLGATE_TOKEN", narrow)
    assert main(["tokens", "create", "--name", "mine", "--scope", "admin"]) == 2
    assert "lacks the scope admin" in capsys.readouterr().err
    assert [r.name for r in KeyStore(str(env / "keys.json")).records()] == ["ops", "shop"]  # no new key
    [record] = AuditLog(str(env / "audit")).records()
    assert (record["action"], record["outcome"]) == ("token.create", "refused")


@pytest.mark.parametrize(("argv", "message"), [
    (["tokens", "create", "--name", "x", "--scope", "infer:../etc"], "scope"),
    (["tokens", "create", "--name", "x"], "scope"),
    (["tokens", "create", "--name", "a/b", "--scope", "admin"], "name"),
    (["tokens", "create", "--name", "x", "--scope", "admin", "--ttl", "soon"], "--ttl"),
])
def test_bad_arguments_are_named(env, capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
