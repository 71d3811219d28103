"""JWT verification (issue 16): real RSA and EC keys, a JWKS from a file or served by a local
HTTP server, and clocks the tests set (the wall clock of the claims and the monotonic clock
of the JWKS cache). The JWKS thread's fetches are waited for by count (``wait_fetches``) or
with events, so no test sleeps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from access.authenticator import Authenticator
from access.config import AuthConfig, JwtConfig
from access.jwks import UrlJwks
from access.jwt import JwtVerifier
from contracts.errors import Unauthenticated
from tests.clock import ManualClock

ISS = "https://id.example.test/realms/ml"
AUD = "mlgate"
NOW_S = 1_800_000_000.0
WAIT_S = 30.0  # bound on waiting for the JWKS thread (never reached when it works)
_OPENED: list[JwtVerifier] = []


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key2():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def jwk_of(private_key, kid: str | None, **extra) -> dict:
    public = private_key.public_key()
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else jwt.algorithms.ECAlgorithm
    jwk = algorithm.to_jwk(public, as_dict=True)
    return {**jwk, **({"kid": kid} if kid is not None else {}), "use": "sig", **extra}


def jwks_of(*jwks: dict) -> bytes:
    return json.dumps({"keys": list(jwks)}).encode()


def claims(**over) -> dict:
    base = {"iss": ISS, "aud": AUD, "sub": "alice", "exp": NOW_S + 300, "iat": NOW_S - 10,
            "scope": "openid profile infer:demo metrics:read"}
    return {k: v for k, v in {**base, **over}.items() if v is not None}


def sign(private_key, kid: str | None = "k1", alg: str = "RS256", **over) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**over), private_key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, payload: dict, signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


class Server:
    """A JWKS provider on 127.0.0.1: serves ``body`` (or ``status``), counts the GETs."""

    def __init__(self, body: bytes) -> None:
        self.body, self.status, self.requests = body, 200, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server name)
                server.requests += 1
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if not self.thread.is_alive():
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def clocks():
    return ManualClock(NOW_S), ManualClock(1000.0)  # wall clock of the claims, monotonic clock


@pytest.fixture(scope="module")
def _server():
    server = Server(b"")
    yield server
    server.close()


@pytest.fixture
def provider(_server, rsa_key, ec_key):
    """The module's JWKS server, serving k1 (RSA) and e1 (EC P-256), its count at 0."""
    _server.body, _server.status, _server.requests = jwks_of(jwk_of(rsa_key, "k1"), jwk_of(ec_key, "e1")), 200, 0
    return _server


def opened(verifier: JwtVerifier) -> JwtVerifier:
    """``verifier`` once its JWKS was fetched; closed after the test (:func:`_close_verifiers`)."""
    _OPENED.append(verifier)
    assert verifier.wait_keys(WAIT_S)
    return verifier


@pytest.fixture(autouse=True)
def _close_verifiers():
    yield
    while _OPENED:
        _OPENED.pop().close()


def url_verifier(server: Server, clocks, fetch=None, **cfg) -> JwtVerifier:
    cfg = JwtConfig(jwks_url=server.url if server else "https://id.example.test/jwks", issuer=ISS, audience=AUD,
                    **cfg)
    return opened(JwtVerifier(cfg, clocks[0], clocks[1], fetch))


def fetched(verifier: JwtVerifier, count: int) -> int:
    """Waits until the JWKS thread has done ``count`` fetches; returns the count."""
    assert verifier.jwks.wait_fetches(count, WAIT_S), f"{count} fetches: not within {WAIT_S}s"
    return verifier.jwks.fetches


@pytest.fixture
def verifier(provider, clocks):
    return url_verifier(provider, clocks)


def refused(verifier: JwtVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        verifier.verify(token)
    assert info.value.invalid
    return info.value.message


# -- valid tokens ---------------------------------------------------------------------------
def test_an_rs256_token_gives_its_identity_and_the_mlgate_scopes_of_its_scope_string(verifier, rsa_key):
    identity = verifier.verify(sign(rsa_key))
    assert (identity.id, identity.name, identity.kind) == (f"jwt:{ISS}:alice", "alice", "jwt")
    assert identity.scopes == {"infer:demo", "metrics:read"}  # openid and profile are ignored
    assert identity.allows("infer:demo") and not identity.allows("infer:other")


def test_an_es256_token_with_a_list_claim(provider, clocks, ec_key):
    verifier = url_verifier(provider, clocks, scopes_claim="scp")
    token = sign(ec_key, "e1", "ES256", scope=None, scp=["feedback:*", "email", 7, "admin"])
    assert verifier.verify(token).scopes == {"feedback:*", "admin"}


def test_a_nested_claim_by_its_dotted_path_and_another_subject_claim(provider, clocks, rsa_key):
    verifier = url_verifier(provider, clocks, scopes_claim="realm_access.roles", subject_claim="preferred_username")
    token = sign(rsa_key, scope=None, realm_access={"roles": ["offline_access", "infer:*"]},
                 preferred_username="bob")
    identity = verifier.verify(token)
    assert (identity.id, identity.name, identity.scopes) == (f"jwt:{ISS}:bob", "bob", {"infer:*"})


def test_a_claim_whose_name_has_dots_is_found_as_it_is(provider, clocks, rsa_key):
    verifier = url_verifier(provider, clocks, scopes_claim="https://mlgate.example/scopes")
    token = sign(rsa_key, **{"https://mlgate.example/scopes": "infer:demo"})
    assert verifier.verify(token).scopes == {"infer:demo"}


def test_no_scope_claim_gives_no_scopes_and_an_audience_list_may_hold_ours(verifier, rsa_key):
    identity = verifier.verify(sign(rsa_key, scope=None, aud=["account", AUD]))
    assert identity.scopes == frozenset()


def test_verify_until_is_the_expiry_with_leeway_or_the_next_look_at_the_jwks(provider, clocks, rsa_key):
    verifier = url_verifier(provider, clocks, jwks_cache_s=3600, leeway_s=30)
    identity, until_s = verifier.verify_until(sign(rsa_key, exp=NOW_S + 60))
    assert (identity.name, until_s) == ("alice", NOW_S + 90)
    assert verifier.verify_until(sign(rsa_key, exp=NOW_S + 7200))[1] == NOW_S + 3600
    clocks[1].advance(3000)
    assert verifier.verify_until(sign(rsa_key, exp=NOW_S + 7200))[1] == NOW_S + 600


def test_the_authenticator_accepts_a_bearer_jwt_until_it_expires(provider, clocks, rsa_key, tmp_path):
    cfg = AuthConfig(keys_file=str(tmp_path / "keys.json"),
                     jwt=JwtConfig(jwks_url=provider.url, issuer=ISS, audience=AUD))
    auth = Authenticator(cfg, clock=clocks[0], monotonic=clocks[1])
    assert auth.wait_keys(WAIT_S)
    header = f"Bearer {sign(rsa_key, exp=NOW_S + 60)}"
    assert auth.authorize(header, "infer:demo").id == f"jwt:{ISS}:alice"
    assert auth.authorize(header, "metrics:read").name == "alice"
    clocks[0].advance(90)  # exp and the default leeway
    with pytest.raises(Unauthenticated, match="the token expired"):
        auth.authorize(header, "infer:demo")
    auth.close()  # stops the JWKS thread; the keys fetched stay usable
    assert not auth.jwt.jwks.running
    assert auth.authorize(f"Bearer {sign(rsa_key)}", "infer:demo").name == "alice"


# -- times, from the injected clock ----------------------------------------------------------
@pytest.mark.parametrize(("exp_offset_s", "leeway_s", "ok"), [
    (1, 0, True), (0, 0, False), (-1, 0, False), (-29, 30, True), (-30, 30, False), (-3600, 30, False)])
def test_exp_with_leeway(provider, clocks, rsa_key, exp_offset_s, leeway_s, ok):
    verifier = url_verifier(provider, clocks, leeway_s=leeway_s)
    token = sign(rsa_key, exp=NOW_S + exp_offset_s, iat=NOW_S - 7200)
    if ok:
        assert verifier.verify(token).name == "alice"
    else:
        assert refused(verifier, token) == "authorization: JWT refused: the token expired"


def test_a_token_expires_when_the_clock_passes_exp(verifier, clocks, rsa_key):
    token = sign(rsa_key, exp=NOW_S + 60)
    verifier.verify(token)
    clocks[0].advance(60 + 30)  # the default leeway
    assert "the token expired" in refused(verifier, token)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_nbf_and_iat_in_the_future(verifier, rsa_key, claim):
    assert verifier.verify(sign(rsa_key, **{claim: NOW_S + 30})).name == "alice"  # within the leeway
    message = refused(verifier, sign(rsa_key, **{claim: NOW_S + 31}))
    assert claim in message and ("not valid yet" in message or "in the future" in message)


@pytest.mark.parametrize("value", ["tomorrow", float("nan"), float("inf"), True, [1]])
def test_a_time_claim_that_is_not_a_number_is_refused(verifier, rsa_key, value):
    assert "malformed token" in refused(verifier, sign(rsa_key, exp=value))


# -- claims ----------------------------------------------------------------------------------
def test_wrong_audience_and_wrong_issuer(verifier, rsa_key):
    assert refused(verifier, sign(rsa_key, aud="other")) == "authorization: JWT refused: wrong audience"
    assert refused(verifier, sign(rsa_key, aud=["a", "b"])).endswith("wrong audience")
    assert refused(verifier, sign(rsa_key, iss="https://evil.test")) == "authorization: JWT refused: wrong issuer"


@pytest.mark.parametrize("claim", ["exp", "aud", "iss"])
def test_a_missing_required_claim(verifier, rsa_key, claim):
    assert refused(verifier, sign(rsa_key, **{claim: None})).endswith(f"the token has no {claim!r} claim")


def test_a_token_without_a_subject(verifier, rsa_key):
    assert "no 'sub' claim" in refused(verifier, sign(rsa_key, sub=None))


# -- keys and algorithms ---------------------------------------------------------------------
def test_an_unknown_kid_is_refused_without_naming_the_keys(verifier, rsa_key):
    message = refused(verifier, sign(rsa_key, kid="nope"))
    assert message == "authorization: JWT refused: unknown signing key"
    assert "k1" not in message and "e1" not in message


def test_a_token_without_kid_only_when_the_jwks_holds_one_key(provider, clocks, rsa_key, verifier):
    assert "unknown signing key" in refused(verifier, sign(rsa_key, kid=None))  # two keys served
    provider.body = jwks_of(jwk_of(rsa_key, None))
    assert url_verifier(provider, clocks).verify(sign(rsa_key, kid=None)).name == "alice"


def test_a_token_signed_by_another_key_under_a_known_kid(verifier, rsa_key2):
    assert refused(verifier, sign(rsa_key2)) == "authorization: JWT refused: bad signature"


def test_a_tampered_payload_is_a_bad_signature(verifier, rsa_key):
    header, _, signature = sign(rsa_key).split(".")
    forged = f"{header}.{b64(json.dumps(claims(scope='admin')).encode())}.{signature}"
    assert refused(verifier, forged).endswith("bad signature")


def test_alg_none_is_refused(verifier):
    message = refused(verifier, unsigned({"alg": "none", "kid": "k1"}, claims(scope="admin")))
    assert message == "authorization: JWT refused: algorithm 'none' not accepted"


def _hs256_with_the_public_key_as_secret(rsa_key) -> str:
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = f"{b64(json.dumps({'alg': 'HS256', 'kid': 'k1'}).encode())}.{b64(json.dumps(claims()).encode())}"
    return f"{head}.{b64(hmac.new(pem, head.encode(), hashlib.sha256).digest())}"


def test_hs256_signed_with_the_rsa_public_key_is_refused(verifier, provider, clocks, rsa_key):
    token = _hs256_with_the_public_key_as_secret(rsa_key)
    assert refused(verifier, token).endswith("algorithm 'HS256' not accepted")
    # even a config that skipped validation and lists HS256 never uses an RSA key as a secret
    cfg = JwtConfig.model_construct(jwks_url=provider.url, issuer=ISS, audience=AUD, algorithms=("HS256", "RS256"))
    assert "not accepted" in refused(opened(JwtVerifier(cfg, clocks[0], clocks[1])), token)


def test_an_algorithm_that_does_not_fit_the_key_type(verifier, rsa_key, ec_key):
    assert refused(verifier, sign(ec_key, "k1", "ES256")).endswith("the signing key does not fit the algorithm")
    assert refused(verifier, sign(rsa_key, "e1", "RS256")).endswith("the signing key does not fit the algorithm")


def test_a_short_rsa_key_and_a_key_on_another_curve_are_not_used(provider, clocks):
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    provider.body = jwks_of(jwk_of(short, "short"), jwk_of(p384, "p384"))
    verifier = url_verifier(provider, clocks, algorithms=("RS256", "ES256"))
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):  # PyJWT signs with it, warning
        token = sign(short, "short")
    assert refused(verifier, token).endswith("not usable (too short, or another curve)")  # and never warns
    assert refused(verifier, sign(p384, "p384", "ES384")).endswith("algorithm 'ES384' not accepted")
    forged = unsigned({"alg": "ES256", "kid": "p384"}, claims(), b"x" * 64)
    assert refused(verifier, forged).endswith("not usable (too short, or another curve)")


def test_a_jwk_that_pins_its_alg(provider, clocks, rsa_key):
    provider.body = jwks_of(jwk_of(rsa_key, "k1", alg="PS256"))
    verifier = url_verifier(provider, clocks)
    assert verifier.verify(sign(rsa_key, alg="PS256")).name == "alice"
    assert refused(verifier, sign(rsa_key, alg="RS256")).endswith("does not fit the algorithm")


def test_an_algorithm_not_in_the_config(provider, clocks, rsa_key):
    verifier = url_verifier(provider, clocks, algorithms=("ES256",))
    assert refused(verifier, sign(rsa_key)).endswith("algorithm 'RS256' not accepted")


# -- the JWKS by URL: its own thread, cache, rotation, rate limit, failures --------------------
def test_rotation_is_picked_up_by_one_refetch_at_most_once_per_min_refetch(provider, clocks, rsa_key, rsa_key2):
    verifier = url_verifier(provider, clocks, jwks_min_refetch_s=10)
    verifier.verify(sign(rsa_key))
    assert provider.requests == 1
    provider.body = jwks_of(jwk_of(rsa_key2, "k2"))  # the provider rotates its key
    new = sign(rsa_key2, kid="k2")
    assert "unknown signing key" in refused(verifier, new)  # fetched 0 s ago: no refetch asked
    clocks[1].advance(10)
    assert "unknown signing key" in refused(verifier, new)  # refused at once; asks for a refetch
    assert fetched(verifier, 2) == 2 and provider.requests == 2
    assert verifier.verify(new).name == "alice"  # the retry
    assert "unknown signing key" in refused(verifier, sign(rsa_key))  # k1 was withdrawn
    assert verifier.jwks.fetches == 2  # and asks for nothing until min_refetch_s passed


def test_an_unknown_kid_is_refused_while_the_fetch_it_asked_for_is_blocked(clocks, rsa_key, rsa_key2):
    """Verification never waits for the network: the refetch an unknown kid asks for runs in
    the JWKS thread, and a token of a known key is accepted meanwhile."""
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    bodies = [jwks_of(jwk_of(rsa_key, "k1")), jwks_of(jwk_of(rsa_key, "k1"), jwk_of(rsa_key2, "k2"))]
    calls = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        if len(calls) > 1:
            started.set()
            release.wait(WAIT_S)
            finished.set()
        return bodies[min(len(calls), 2) - 1]

    verifier = url_verifier(None, clocks, fetch)
    new = sign(rsa_key2, kid="k2")
    clocks[1].advance(10)  # the default jwks_min_refetch_s
    assert "unknown signing key" in refused(verifier, new)
    assert started.wait(WAIT_S)  # the refetch runs, blocked
    assert "unknown signing key" in refused(verifier, new)
    assert verifier.verify(sign(rsa_key)).name == "alice"
    assert not finished.is_set()  # both answered while the fetch was still blocked
    release.set()
    assert fetched(verifier, 2) == 2
    assert verifier.verify(new).name == "alice"
    assert calls == [calls[0]] * 2


def test_random_kids_cannot_hammer_the_provider(verifier, provider, clocks, rsa_key):
    for i in range(50):
        refused(verifier, sign(rsa_key, kid=f"random-{i}"))
    assert provider.requests == 1 and verifier.jwks.fetches == 1
    clocks[1].advance(10)  # the default jwks_min_refetch_s
    for i in range(50):
        refused(verifier, sign(rsa_key, kid=f"again-{i}"))
    assert fetched(verifier, 2) == 2
    refused(verifier, sign(rsa_key, kid="after"))  # the refetch was just done: asks for none
    assert verifier.jwks.fetches == 2 and provider.requests == 2


def test_the_jwks_is_fetched_again_after_jwks_cache_s(provider, clocks, rsa_key):
    verifier = url_verifier(provider, clocks, jwks_cache_s=60)
    verifier.verify(sign(rsa_key))
    clocks[1].advance(59)
    verifier.verify(sign(rsa_key))
    assert provider.requests == 1
    clocks[1].advance(1)
    assert verifier.verify(sign(rsa_key)).name == "alice"  # with the cached keys, while the thread fetches
    assert fetched(verifier, 2) == 2 and provider.requests == 2


def test_the_thread_refreshes_on_its_own_with_no_token_to_verify(provider, clocks, rsa_key2):
    """On the real monotonic clock the thread fetches every jwks_cache_s by itself."""
    cfg = JwtConfig(jwks_url=provider.url, issuer=ISS, audience=AUD, jwks_cache_s=0.01, jwks_min_refetch_s=0)
    verifier = opened(JwtVerifier(cfg, clocks[0]))
    provider.body = jwks_of(jwk_of(rsa_key2, "k2"))
    fetched(verifier, verifier.jwks.fetches + 2)  # a whole fetch after the rotation, asked by no token
    assert verifier.verify(sign(rsa_key2, kid="k2")).name == "alice"


def test_close_stops_the_thread_and_keeps_the_keys(verifier, rsa_key):
    assert verifier.jwks.running
    verifier.close()
    assert not verifier.jwks.running
    assert verifier.verify(sign(rsa_key)).name == "alice"
    verifier.close()  # twice is fine


@pytest.mark.parametrize("failure", ["status", "body"])
def test_a_failed_fetch_keeps_the_last_good_keys(provider, clocks, rsa_key, failure):
    verifier = url_verifier(provider, clocks, jwks_cache_s=60)
    verifier.verify(sign(rsa_key))
    if failure == "status":
        provider.status = 500
    else:
        provider.body = b"<html>maintenance</html>"
    clocks[1].advance(60)
    assert verifier.verify(sign(rsa_key)).name == "alice"  # due: asks for the refetch, which fails
    assert fetched(verifier, 2) == 2
    assert verifier.verify(sign(rsa_key)).name == "alice"
    assert "unknown signing key" in refused(verifier, sign(rsa_key, kid="k9"))
    assert verifier.jwks.fetches == 2  # the unknown kid waits min_refetch_s
    clocks[1].advance(10)
    assert verifier.verify(sign(rsa_key)).name == "alice"
    assert fetched(verifier, 3) == 3 and provider.requests == 3  # a failed fetch is retried after min_refetch_s


def test_a_provider_that_is_down_leaves_the_last_good_keys(rsa_key, clocks):
    server = Server(jwks_of(jwk_of(rsa_key, "k1")))
    verifier = url_verifier(server, clocks, jwks_cache_s=60)
    verifier.verify(sign(rsa_key))
    server.close()
    clocks[1].advance(60)
    verifier.verify(sign(rsa_key))
    assert fetched(verifier, 2) == 2
    assert verifier.verify(sign(rsa_key)).name == "alice"


def test_no_keys_until_the_provider_answers(provider, clocks, rsa_key):
    provider.status = 503
    verifier = url_verifier(provider, clocks)
    assert "unknown signing key" in refused(verifier, sign(rsa_key))
    provider.status = 200
    clocks[1].advance(10)
    assert "unknown signing key" in refused(verifier, sign(rsa_key))  # at once; asks for the refetch
    assert fetched(verifier, 2) == 2
    assert verifier.verify(sign(rsa_key)).name == "alice"


def test_only_an_http_url_is_fetched(clocks):
    from contracts.errors import ConfigError

    cfg = JwtConfig(jwks_url="file:///etc/passwd", issuer=ISS, audience=AUD)
    with pytest.raises(ConfigError, match="http:// or https://"):
        UrlJwks(cfg, clocks[1], lambda url: b"")


# -- the JWKS from a file --------------------------------------------------------------------
def test_the_jwks_file_is_read_again_when_it_changes(tmp_path, clocks, rsa_key, rsa_key2):
    path = tmp_path / "jwks.json"
    path.write_bytes(jwks_of(jwk_of(rsa_key, "k1")))
    verifier = JwtVerifier(JwtConfig(jwks_file=str(path), issuer=ISS, audience=AUD), clocks[0], clocks[1])
    assert verifier.verify(sign(rsa_key)).name == "alice"
    tmp = tmp_path / "jwks.json.tmp"
    tmp.write_bytes(jwks_of(jwk_of(rsa_key2, "k2")))
    tmp.replace(path)  # a new inode, as an atomic update makes
    new = sign(rsa_key2, kid="k2")
    assert "unknown signing key" in refused(verifier, new)  # looked at less than a second ago
    clocks[1].advance(1)
    assert verifier.verify(new).name == "alice"
    assert "unknown signing key" in refused(verifier, sign(rsa_key))
    path.write_bytes(b"{not json")  # a broken file keeps the keys read before
    clocks[1].advance(1)
    assert verifier.verify(new).name == "alice"
    path.unlink()
    clocks[1].advance(1)
    assert verifier.verify(new).name == "alice"


# -- garbage never raises anything but Unauthenticated ---------------------------------------
def raw(header: bytes, payload: str = "e30", signature: str = "") -> str:
    return f"{b64(header)}.{payload}.{signature}"


RS = b'{"alg":"RS256","kid":"k1"'
GARBAGE = ["", ".", "..", "a.b.c", "x" * 8000, "\u00e9.\u00e9.\u00e9", "\x00.\x00.\x00", "eyJ.eyJ.sig", "=.=.=",
           raw(b"[]"), raw(b"null"), raw(b"{"), raw(b"{}"), raw(b'{"alg":7}'), raw(b'{"alg":"RS256","kid":7}'),
           raw(b'{"alg":"RS256","kid":[]}'), raw(RS + b"}", b64(b"[1,2]"), "AAAA"), raw(RS + b"}", "!!!", "AAAA"),
           raw(RS + b',"crit":["x"],"x":1}', signature="AAAA"), raw(RS + b',"b64":false,"crit":["b64"]}', "", "AAAA"),
           raw(b'{"alg":"ES256","kid":"e1"}', signature=b64(b"short")), raw(b'{"alg":"RS256"}', "e30", "AAAA")]


@pytest.mark.parametrize("token", GARBAGE)
def test_garbage_is_unauthenticated_and_nothing_else(verifier, token):
    message = refused(verifier, token)
    assert message.startswith("authorization: JWT refused: ")


def test_mangled_valid_tokens_are_unauthenticated_and_nothing_else(verifier, rsa_key, ec_key):
    for token in (sign(rsa_key), sign(ec_key, "e1", "ES256")):
        for i in range(0, len(token), 7):
            for mangled in (token[:i], token[:i] + "." + token[i:], token[:i] + "*" + token[i + 1:]):
                try:
                    verifier.verify(mangled)
                except Unauthenticated:
                    pass
