"""TLS on the gateway's listener (``serving.tls``), in-process without Ray, against a test CA
(tests/tlscerts.py): HTTPS and the official client, TLS 1.2 as the floor, plain HTTP refused
at once, mutual TLS, and certificates renewed without a restart (or refused, keeping the old)."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import shutil
import socket
import ssl
import warnings
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from contracts.errors import ConfigError
from serving.config import ServingConfig, TlsConfig
from serving.http.server import ServerThread
from serving.http.tls import ServerTls
from tests.reference import ROW
from tests.tlscerts import Issued, Pki, make_pki

NO_AUTH = {"enabled": False}  # these tests are about TLS; access control has its own
PREDICT = json.dumps({"instances": [ROW]}).encode()
HEADER_TIMEOUT_S = 30.0  # far above every socket timeout here: a refusal that waits for it fails the test


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_gateway(registry: str, tls: dict, **http):
    from serving.gateway import Gateway

    cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth=NO_AUTH, tls=tls,
                        http={"header_timeout_s": HEADER_TIMEOUT_S, **http},
                        metrics={"enabled": False}, prediction_log={"enabled": False})
    return Gateway(registry, cfg)


@pytest.fixture(scope="module")
def https(demo_registry, pki):
    gw = tls_gateway(demo_registry, {"cert_file": str(pki.server.cert_file), "key_file": str(pki.server.key_file)},
                     max_pipelined=2)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def mtls(demo_registry, pki):
    gw = tls_gateway(demo_registry, {"cert_file": str(pki.server.cert_file), "key_file": str(pki.server.key_file),
                                     "client_ca_file": str(pki.ca.cert_file)})
    yield gw
    gw.stop()


def client_context(pki: Pki, cert: Issued | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca.cert_file))
    if cert is not None:
        ctx.load_cert_chain(cert.cert_file, cert.key_file)
    return ctx


def https_get(port: int, ctx: ssl.SSLContext, path: str = "/v2/health/live") -> tuple[int, bytes, bytes]:
    """(status, body, the server certificate in DER) of one request on a new connection."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read(), conn.sock.getpeercert(binary_form=True)
    finally:
        conn.close()


def refused(port: int, ctx: ssl.SSLContext) -> bool:
    """Whether the server ends the TLS session before answering a request. Under TLS 1.3 the
    client's side of the handshake completes before the server has checked its certificate:
    the refusal then arrives as an alert (or a close) on the first read."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                return tls.recv(65536) == b""
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True


# -- HTTPS -----------------------------------------------------------------------------------

def test_https_with_the_ca_serves_health_and_inference(https, pki):
    status, body, der = https_get(https.port, client_context(pki))
    assert status == 200 and json.loads(body) == {"live": True}
    assert der == pki.server.der
    conn = http.client.HTTPSConnection("127.0.0.1", https.port, context=client_context(pki), timeout=10)
    try:
        for _ in range(2):  # keep-alive over TLS
            conn.request("POST", "/v1/models/demo:predict", PREDICT, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["predictions"][0]["label"] in ("stay", "churn")
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        conn.close()


def test_a_client_that_does_not_trust_the_ca_fails_the_handshake(https):
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(https.port, ssl.create_default_context())


def test_tls_1_2_is_accepted_and_1_1_refused(https, pki):
    ctx = client_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    assert https_get(https.port, ctx)[0] == 200
    old = old_tls_client(pki)
    with socket.create_connection(("127.0.0.1", https.port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)) as caught:
            old.wrap_socket(raw, server_hostname="127.0.0.1")
    if getattr(caught.value, "reason", None) in ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE"):
        pytest.skip(f"this OpenSSL cannot speak TLS 1.1 even as a client ({caught.value})")


def old_tls_client(pki: Pki) -> ssl.SSLContext:
    """A client that offers TLS 1.0-1.1 only (OpenSSL 3 needs security level 0 for them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1_1 is deprecated: that is the point
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(pki.ca.cert_file)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as exc:
            pytest.skip(f"this Python/OpenSSL cannot build a TLS 1.1 client ({exc})")
    return ctx


def test_plain_http_to_the_tls_port_is_closed_at_once_without_an_answer(https, pki, caplog):
    caplog.set_level(logging.DEBUG)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", https.port), timeout=5) as sock:  # 5 s << the header timeout
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                got = sock.recv(65536)
            except ConnectionResetError:
                got = b""
            assert b"HTTP/" not in got  # no answer, so never a 5xx: at most a TLS alert, then the close
            if got:
                assert sock.recv(65536) == b""
    assert https_get(https.port, client_context(pki))[0] == 200  # the listener is fine
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not noisy, [r.getMessage() for r in noisy]


def tls_socket(port: int, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname="127.0.0.1")


def read_response(reader) -> tuple[int, bytes]:
    status = int(reader.readline().split()[1])
    length = 0
    while line := reader.readline().rstrip(b"\r\n"):
        name, _, value = line.partition(b":")
        length = int(value) if name.lower() == b"content-length" else length
    return status, reader.read(length)


def test_pipelining_past_the_in_flight_cap_pauses_and_resumes_reading_over_tls(https, pki):
    n = 20  # ten times max_pipelined, 8 KB each: many TLS records, read as the answers drain
    pad = "X-Pad: " + "p" * 8000
    raw = b"".join(f"POST /v1/models/demo:predict HTTP/1.1\r\nHost: x\r\n{pad}\r\nContent-Length: {len(body)}"
                   f"\r\n\r\n{body}".encode()
                   for body in (json.dumps({"instances": [ROW], "id": f"p{i}"}) for i in range(n)))
    with tls_socket(https.port, client_context(pki)) as tls:
        tls.sendall(raw)
        reader = tls.makefile("rb")
        replies = [read_response(reader) for _ in range(n)]
    assert [status for status, _ in replies] == [200] * n
    assert [json.loads(body)["id"] for _, body in replies] == [f"p{i}" for i in range(n)]


def test_a_refusal_over_tls_is_answered_then_closed(https, pki):
    with tls_socket(https.port, client_context(pki)) as tls:
        tls.sendall(b"POST /v1/models/demo:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n")
        reader = tls.makefile("rb")
        status, body = read_response(reader)
        assert status == 413 and "error" in json.loads(body)
        assert reader.read() == b""  # then the close (a TLS transport cannot half-close: after the linger)


def test_tritonclient_over_https(https, pki):
    httpclient = pytest.importorskip("tritonclient.http")
    import gevent.ssl

    client = httpclient.InferenceServerClient(f"127.0.0.1:{https.port}", ssl=True,
                                              ssl_options={"ca_certs": str(pki.ca.cert_file)},
                                              ssl_context_factory=gevent.ssl.create_default_context)
    try:
        assert client.is_server_live() and client.is_server_ready()
        inputs = []
        for name, value in ROW.items():
            if isinstance(value, str):
                tensor = httpclient.InferInput(name, [1], "BYTES")
                tensor.set_data_from_numpy(np.array([value.encode()], dtype=object))
            else:
                tensor = httpclient.InferInput(name, [1], "FP64")
                tensor.set_data_from_numpy(np.array([value], dtype=np.float64))
            inputs.append(tensor)
        result = client.infer("demo", inputs)
        probabilities = result.as_numpy("probabilities")
        assert probabilities.shape[0] == 1 and np.allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    finally:
        client.close()


# -- mutual TLS ------------------------------------------------------------------------------

def test_mtls_admits_only_certificates_the_ca_signed(mtls, pki):
    assert refused(mtls.port, client_context(pki))  # no certificate
    assert refused(mtls.port, client_context(pki, pki.stranger))  # signed by another CA
    status, body, _ = https_get(mtls.port, client_context(pki, pki.client))
    assert status == 200 and json.loads(body) == {"live": True}
    assert mtls.healthy()


# -- renewal -----------------------------------------------------------------------------------

@pytest.fixture
def renewing(demo_registry, pki, tmp_path):
    """A gateway on its own copy of the server certificate, looking at it only when told."""
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server.cert_file, cert_file)
    shutil.copy(pki.server.key_file, key_file)
    gw = tls_gateway(demo_registry, {"cert_file": str(cert_file), "key_file": str(key_file),
                                     "reload_interval_s": 3600})
    yield gw, cert_file, key_file
    gw.stop()


def install(new: Issued, cert_file: Path, key_file: Path) -> None:
    """Put a renewed pair in place as a certificate manager does: write aside, then rename."""
    for source, target in ((new.key_file, key_file), (new.cert_file, cert_file)):
        shutil.copy(source, target.with_suffix(".tmp"))
        os.replace(target.with_suffix(".tmp"), target)


def test_a_renewed_certificate_reaches_new_connections_and_open_ones_keep_theirs(renewing, pki):
    gw, cert_file, key_file = renewing
    context = gw.server.tls.context
    open_conn = http.client.HTTPSConnection("127.0.0.1", gw.port, context=client_context(pki), timeout=10)
    try:
        open_conn.request("GET", "/v2/health/live")
        assert open_conn.getresponse().read() and open_conn.sock.getpeercert(True) == pki.server.der
        renewed = pki.ca.issue("renewed", "127.0.0.1", server=True)
        assert renewed.serial != pki.server.serial
        install(renewed, cert_file, key_file)
        assert gw.server.reload_tls() is True
        assert gw.server.reload_tls() is False  # nothing changed since
        assert gw.server.tls.context is context and gw.server.tls.serial == renewed.serial
        status, _, der = https_get(gw.port, client_context(pki))
        assert status == 200 and der == renewed.der  # a new handshake on the same context
        open_conn.request("GET", "/v2/health/live")  # the open connection goes on with its session
        assert open_conn.getresponse().status == 200 and open_conn.sock.getpeercert(True) == pki.server.der
    finally:
        open_conn.close()


@pytest.mark.parametrize("damage", ["half-written certificate", "key of another certificate", "empty key",
                                    "a key OpenSSL finds too weak"])
def test_a_broken_replacement_keeps_the_old_certificate(renewing, pki, caplog, damage):
    gw, cert_file, key_file = renewing
    if damage == "half-written certificate":
        cert_file.write_bytes(cert_file.read_bytes()[:300])
    elif damage == "key of another certificate":
        shutil.copy(pki.client.key_file, key_file)
    elif damage == "empty key":
        key_file.write_bytes(b"")
    else:  # a whole, matching pair that only OpenSSL's security level refuses
        install(pki.ca.issue("weak", "127.0.0.1", server=True, curve=ec.SECP192R1()), cert_file, key_file)
    with caplog.at_level(logging.ERROR, logger="mlgate.http"):
        assert gw.server.reload_tls() is False
    assert any("TLS reload" in r.getMessage() and "serving.tls." in r.getMessage() for r in caplog.records)
    status, _, der = https_get(gw.port, client_context(pki))
    assert status == 200 and der == pki.server.der
    caplog.clear()
    assert gw.server.reload_tls() is False and not caplog.records  # the same broken files: said once
    renewed = pki.ca.issue(f"fixed-{damage[:4]}", "127.0.0.1", server=True)
    install(renewed, cert_file, key_file)  # once whole again, they load
    assert gw.server.reload_tls() is True and https_get(gw.port, client_context(pki))[2] == renewed.der


def test_the_files_are_checked_every_reload_interval(pki, tmp_path):
    """:meth:`ServerTls.run` on a loop of its own: a renewal is picked up without being asked."""
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server.cert_file, cert_file)
    shutil.copy(pki.server.key_file, key_file)
    tls = ServerTls(TlsConfig(cert_file=str(cert_file), key_file=str(key_file), reload_interval_s=0.01))
    renewed = pki.ca.issue("periodic", "127.0.0.1", server=True)

    async def renew_and_wait() -> int:
        task = asyncio.get_running_loop().create_task(tls.run())
        install(renewed, cert_file, key_file)
        try:
            async with asyncio.timeout(30):
                while tls.serial != renewed.serial:
                    await asyncio.sleep(0.01)
        finally:
            task.cancel()
        return tls.serial

    assert asyncio.run(renew_and_wait()) == renewed.serial


def test_a_changed_client_ca_bundle_adds_its_cas_and_says_removed_ones_stay_trusted(pki, tmp_path, caplog):
    bundle = tmp_path / "clients.pem"
    shutil.copy(pki.ca.cert_file, bundle)
    tls = ServerTls(TlsConfig(cert_file=str(pki.server.cert_file), key_file=str(pki.server.key_file),
                              client_ca_file=str(bundle)))
    shutil.copy(pki.stranger_ca.cert_file, bundle.with_suffix(".tmp"))
    os.replace(bundle.with_suffix(".tmp"), bundle)  # the test CA out, the stranger's in
    with caplog.at_level(logging.WARNING, logger="mlgate.http"):
        assert asyncio.run(tls.check()) is True
    trusted = set(tls.context.get_ca_certs(binary_form=True))
    assert trusted == {pki.ca.issued.der, pki.stranger_ca.issued.der}
    assert any("stay trusted until the gateway restarts" in r.getMessage() for r in caplog.records)


# -- configuration errors: at start, naming the field ------------------------------------------

def broken_config(pki: Pki, directory: Path, case: str) -> tuple[TlsConfig, str]:
    garbage = directory / "garbage.pem"
    garbage.write_text("not a certificate\n")
    half = directory / "half.crt"
    half.write_bytes(pki.server.cert_file.read_bytes() + pki.ca.cert_file.read_bytes()[:200])
    cert, key = str(pki.server.cert_file), str(pki.server.key_file)
    weak = pki.ca.issue("weak", "127.0.0.1", server=True, curve=ec.SECP192R1())  # below OpenSSL's security level
    return {
        "missing cert": (TlsConfig(cert_file=str(directory / "nope.crt"), key_file=key), "serving.tls.cert_file"),
        "missing key": (TlsConfig(cert_file=cert, key_file=str(directory / "nope.key")), "serving.tls.key_file"),
        "garbage cert": (TlsConfig(cert_file=str(garbage), key_file=key), "serving.tls.cert_file"),
        "half-written chain": (TlsConfig(cert_file=str(half), key_file=key), "serving.tls.cert_file"),
        "garbage key": (TlsConfig(cert_file=cert, key_file=str(garbage)), "serving.tls.key_file"),
        "mismatched key": (TlsConfig(cert_file=cert, key_file=str(pki.client.key_file)), "serving.tls.key_file"),
        "missing client CA": (TlsConfig(cert_file=cert, key_file=key, client_ca_file=str(directory / "nope.pem")),
                              "serving.tls.client_ca_file"),
        "garbage client CA": (TlsConfig(cert_file=cert, key_file=key, client_ca_file=str(garbage)),
                              "serving.tls.client_ca_file"),
        "weak key": (TlsConfig(cert_file=str(weak.cert_file), key_file=str(weak.key_file)), "serving.tls.cert_file"),
    }[case]


@pytest.mark.parametrize("case", ["missing cert", "missing key", "garbage cert", "half-written chain", "garbage key",
                                  "mismatched key", "missing client CA", "garbage client CA", "weak key"])
def test_bad_files_stop_the_server_at_start_naming_the_field(pki, tmp_path, case):
    cfg, field = broken_config(pki, tmp_path, case)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        ServerThread(lambda: None, "127.0.0.1", 0, 1024, tls=cfg)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_key_is_named(pki, tmp_path):
    key = tmp_path / "locked.key"
    shutil.copy(pki.server.key_file, key)
    key.chmod(0)
    with pytest.raises(ConfigError, match=r"serving\.tls\.key_file: cannot read .*Permission denied"):
        ServerTls(TlsConfig(cert_file=str(pki.server.cert_file), key_file=str(key)))


def test_a_certificate_outside_its_validity_is_loaded_with_a_warning(pki, caplog):
    later_s = pki.server.cert.not_valid_after_utc.timestamp() + 1
    with caplog.at_level(logging.WARNING, logger="mlgate.http"):
        ServerTls(TlsConfig(cert_file=str(pki.server.cert_file), key_file=str(pki.server.key_file)),
                  clock=lambda: later_s)
    assert any(f"serial {pki.server.serial:x} is valid only from" in r.getMessage() for r in caplog.records)


def test_the_context_is_tls_1_2_or_later_without_compression(pki):
    tls = ServerTls(TlsConfig(cert_file=str(pki.server.cert_file), key_file=str(pki.server.key_file),
                              client_ca_file=str(pki.ca.cert_file)))
    ctx = tls.context
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2 and ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.options & ssl.OP_NO_COMPRESSION and ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert tls.serial == pki.server.serial
