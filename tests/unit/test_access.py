"""Access control without a server: scopes, the key store (hashes only, expiry, revocation,
reload), the authenticator's answers (401/403/429) and its cache of verified keys."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from access.authenticator import Authenticator, bearer
from access.config import AuthConfig
from access.identity import Identity, parse_scope
from access.keys import KeyStore, ensure_admin_key, hash_key
from access.ratelimit import RateLimiter
from contracts.errors import Forbidden, InvalidInput, NotFound, RateLimited, Unauthenticated, classify
from tests.clock import ManualClock

T0 = 1_800_000_000.0


def who(*scopes: str) -> Identity:
    return Identity("key:x", "x", "key", frozenset(scopes))


@pytest.mark.parametrize(("scopes", "scope", "allowed"), [
    (("infer:demo",), "infer:demo", True),
    (("infer:demo",), "infer:other", False),
    (("infer:demo",), "feedback:demo", False),
    (("infer:*",), "infer:anything", True),
    (("infer:*",), "feedback:demo", False),
    (("feedback:*",), "feedback:demo", True),
    (("metrics:read",), "metrics:read", True),
    (("metrics:read",), "infer:demo", False),
    (("admin",), "infer:demo", True),
    (("admin",), "metrics:read", True),
    (("admin",), "feedback:x", True),
    ((), "infer:demo", False),
    (("infer:*",), "metrics:read", False),  # a wildcard covers models, not other scopes
])
def test_scope_matching(scopes, scope, allowed):
    assert who(*scopes).allows(scope) is allowed


@pytest.mark.parametrize("text", ["infer:demo", "infer:*", "feedback:m-1.v2", "feedback:*", "metrics:read", "admin"])
def test_valid_scopes(text):
    assert parse_scope(text) == text


@pytest.mark.parametrize("text", ["infer", "infer:", "infer:../x", "infer:a/b", "metrics:write", "Admin",
                                  "admin:demo", "*", "infer:**", "train:demo"])
def test_invalid_scopes_are_refused_by_name(text):
    with pytest.raises(InvalidInput, match="scope"):
        parse_scope(text)


def store(tmp_path, clock: ManualClock, interval_s: float = 1.0) -> KeyStore:
    return KeyStore(str(tmp_path / "keys.json"), interval_s, clock=clock, monotonic=clock)


def test_the_store_keeps_only_a_hash_with_name_scopes_and_times(tmp_path):
    clock = ManualClock(T0)
    keys = store(tmp_path, clock)
    record, key = keys.create("app", ["infer:demo", "feedback:demo", "infer:demo"], ttl_s=3600)
    raw = (tmp_path / "keys.json").read_text()
    assert key not in raw and key.split("_")[-1] not in raw
    (saved,) = json.loads(raw)["keys"]
    assert saved["hash"] == hash_key(key) and saved["name"] == "app"
    assert saved["scopes"] == ["infer:demo", "feedback:demo"]  # each once
    assert saved["created"] == "2027-01-15T08:00:00+00:00" and saved["expires"] == "2027-01-15T09:00:00+00:00"
    assert os.stat(tmp_path / "keys.json").st_mode & 0o777 == 0o600
    assert key.startswith(f"mlg_{record.id}_") and len(key) >= 60


def test_a_key_verifies_until_it_expires(tmp_path):
    clock = ManualClock(T0)
    keys = store(tmp_path, clock)
    _, key = keys.create("app", ["infer:demo"], ttl_s=60)
    assert keys.verify(key).identity.scopes == {"infer:demo"}
    clock.advance(59.9)
    assert keys.verify(key).name == "app"
    clock.advance(0.1)
    with pytest.raises(Unauthenticated, match="expired"):
        keys.verify(key)


@pytest.mark.parametrize("forge", [
    lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # the secret's last character
    lambda k: "mlg_" + "0" * 16 + k[20:],  # another id, the same secret
    lambda k: k[:30],  # truncated
    lambda k: "mlg_nothex",
    lambda k: k + "x",
])
def test_a_forged_key_gets_the_same_answer_as_an_unknown_one(tmp_path, forge):
    keys = store(tmp_path, ManualClock(T0))
    _, key = keys.create("app", ["admin"])
    with pytest.raises(Unauthenticated) as err:
        keys.verify(forge(key))
    assert err.value.message == "authorization: the credential is not valid (unknown, revoked or malformed)"


def test_a_revocation_reaches_a_reader_within_its_reload_interval(tmp_path):
    clock = ManualClock(T0)
    writer, reader = store(tmp_path, clock), store(tmp_path, clock, interval_s=2.0)
    _, key = writer.create("app", ["infer:demo"])
    assert reader.verify(key).name == "app"
    assert [r.name for r in writer.revoke("app")] == ["app"]
    clock.advance(1.9)
    assert reader.verify(key).name == "app"  # not looked at the file again yet
    clock.advance(0.1)
    with pytest.raises(Unauthenticated):
        reader.verify(key)
    assert [r.status(clock()) for r in reader.records()] == ["revoked"]
    with pytest.raises(NotFound):
        writer.revoke("app")  # nothing active by that name any more


def test_a_torn_key_file_keeps_the_keys_read_before(tmp_path, caplog):
    clock = ManualClock(T0)
    keys = store(tmp_path, clock)
    _, key = keys.create("app", ["infer:demo"])
    assert keys.verify(key)
    (tmp_path / "keys.json").write_text('{"version": 1, "keys": [{"id": ')
    clock.advance(5)
    assert keys.verify(key).name == "app"
    assert "cannot read" in caplog.text


def _create_many(path: str, n: int) -> None:
    keys = KeyStore(path)
    for i in range(n):
        keys.create(f"p{os.getpid()}-{i}", ["infer:*"])


def test_concurrent_writers_lose_no_key(tmp_path):
    path = str(tmp_path / "keys.json")
    procs = [multiprocessing.get_context("fork").Process(target=_create_many, args=(path, 10)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(KeyStore(path).records()) == 40


def test_the_admin_key_file_is_made_once_with_mode_0600(tmp_path):
    keys = store(tmp_path, ManualClock(T0))
    created: list[str] = []
    assert ensure_admin_key(keys, str(tmp_path / "admin.key"), created.append)
    assert not ensure_admin_key(keys, str(tmp_path / "admin.key"), created.append)
    assert created == [str(tmp_path / "admin.key")]
    assert os.stat(tmp_path / "admin.key").st_mode & 0o777 == 0o600
    key = (tmp_path / "admin.key").read_text().strip()
    assert keys.verify(key).identity.admin
    keys.revoke("admin")
    keys.refresh()
    assert ensure_admin_key(keys, str(tmp_path / "admin.key"))  # a revoked one is replaced
    assert (tmp_path / "admin.key").read_text().strip() != key


@pytest.mark.parametrize(("header", "missing"), [
    (None, True), (b"", True), (b"Basic dXNlcjpwdw==", True), (b"Bearer", True), (b"Bearer   ", True),
    (b"Bearer " + b"x" * 9000, False), (b"Bearer \xff\xfe", False),
])
def test_bad_authorization_headers_are_401(header, missing):
    with pytest.raises(Unauthenticated) as err:
        bearer(header)
    kind = classify(err.value)
    assert kind.status == 401 and kind.reason == "unauthenticated"
    challenge = dict(kind.headers)[b"www-authenticate"]
    assert challenge.startswith(b'Bearer realm="mlgate"') and (b"invalid_token" in challenge) is not missing


def authenticator(tmp_path, clock: ManualClock, **rate) -> Authenticator:
    cfg = AuthConfig(keys_file=str(tmp_path / "keys.json"), reload_interval_s=1.0, rate_limit=rate or {})
    return Authenticator(cfg, clock=clock, monotonic=clock)


def test_the_authenticator_answers_401_403_and_the_identity(tmp_path):
    clock = ManualClock(T0)
    auth = authenticator(tmp_path, clock)
    _, key = auth.keys.create("app", ["infer:demo"])
    assert auth.authorize(f"Bearer {key}".encode(), "infer:demo").name == "app"
    with pytest.raises(Forbidden, match="lacks the scope feedback:demo"):
        auth.authorize(f"Bearer {key}", "feedback:demo")
    assert classify(Forbidden("x")).status == 403
    with pytest.raises(Unauthenticated):
        auth.authorize("Bearer mlg_0123456789abcdef_nope", "infer:demo")
    with pytest.raises(Unauthenticated):
        auth.authorize("Bearer a.b.c", "infer:demo")  # a JWT shape, and no JWKS configured


def test_a_cached_key_is_dropped_on_revocation_and_on_expiry(tmp_path):
    clock = ManualClock(T0)
    auth = authenticator(tmp_path, clock)
    writer = store(tmp_path, clock)
    _, revoked = writer.create("a", ["infer:demo"])
    _, expiring = writer.create("b", ["infer:demo"], ttl_s=30)
    for key in (revoked, expiring):
        assert auth.authorize(f"Bearer {key}", "infer:demo")
    writer.revoke("a")
    clock.advance(1.0)  # the reload interval
    with pytest.raises(Unauthenticated):
        auth.authorize(f"Bearer {revoked}", "infer:demo")
    assert auth.authorize(f"Bearer {expiring}", "infer:demo").name == "b"
    clock.advance(29.0)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authorize(f"Bearer {expiring}", "infer:demo")


def test_the_rate_limit_per_identity_is_429_with_retry_after(tmp_path):
    clock = ManualClock(T0)
    auth = authenticator(tmp_path, clock, requests_per_s=2.0, burst=3)
    _, a = auth.keys.create("a", ["infer:*"])
    _, b = auth.keys.create("b", ["infer:*"], rate_limit_per_s=100.0)  # its own limit
    for _ in range(3):
        auth.authorize(f"Bearer {a}", "infer:demo")
    with pytest.raises(RateLimited) as err:
        auth.authorize(f"Bearer {a}", "infer:demo")
    kind = classify(err.value)
    assert kind.status == 429 and dict(kind.headers)[b"retry-after"] == b"1"
    for _ in range(3):
        auth.authorize(f"Bearer {b}", "infer:demo")  # another identity: its own bucket
    clock.advance(0.5)  # one token back at 2/s
    auth.authorize(f"Bearer {a}", "infer:demo")
    with pytest.raises(RateLimited):
        auth.authorize(f"Bearer {a}", "infer:demo")


def test_the_rate_limiter_tells_how_long_to_wait():
    clock = ManualClock(T0)
    limiter = RateLimiter(clock)
    limiter.take("k", 0.1, 1)
    with pytest.raises(RateLimited) as err:
        limiter.take("k", 0.1, 1)
    assert err.value.retry_after_s == pytest.approx(10.0)
    clock.advance(10.0)
    limiter.take("k", 0.1, 1)


def test_keys_are_checked_when_created(tmp_path):
    keys = store(tmp_path, ManualClock(T0))
    with pytest.raises(InvalidInput, match="name"):
        keys.create("../x", ["admin"])
    with pytest.raises(InvalidInput, match="scope"):
        keys.create("ok", [])
    with pytest.raises(InvalidInput, match="scope"):
        keys.create("ok", ["infer:../etc"])
    with pytest.raises(InvalidInput, match="ttl"):
        keys.create("ok", ["admin"], ttl_s=0)
