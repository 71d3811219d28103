"""The admin API's own listener (control/server.py) in-process without Ray, against a test CA
(tests/tlscerts.py): mutual TLS enforced (no client certificate, or one of another CA: the
handshake fails), a renewed certificate reaching new connections without a restart, plain
HTTP refused, and the app's lifespan run at stop."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
from pathlib import Path

import pytest

from contracts.errors import ConfigError
from control.api import create_app
from control.context import AdminSettings
from control.server import AdminServer
from serving.config import TlsConfig
from tests.polling import until
from tests.tlscerts import Issued, Pki, make_pki
from tests.tlscerts import client_context as context


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def serving(tmp_path: Path, keys, tls: TlsConfig | None) -> AdminServer:
    settings = AdminSettings(registry_root=str(tmp_path / "registry"), audit_root=str(tmp_path / "audit"),
                             auth=keys.auth)
    server = AdminServer(lambda: create_app(settings), "127.0.0.1", 0, tls)
    server.start()
    return server


@pytest.fixture
def renewing(tmp_path, keys, pki):
    """mTLS on the admin listener, from its own copy of the server certificate, looked at
    every 50 ms."""
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server.cert_file, cert_file)
    shutil.copy(pki.server.key_file, key_file)
    tls = TlsConfig(cert_file=str(cert_file), key_file=str(key_file), client_ca_file=str(pki.ca.cert_file),
                    reload_interval_s=0.05)
    server = serving(tmp_path, keys, tls)
    yield server, cert_file, key_file
    server.stop()


def get(port: int, ctx: ssl.SSLContext, path: str = "/v1/health", headers=None) -> tuple[int, bytes]:
    """(status, the server certificate in DER) of one request on a new connection."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status, conn.sock.getpeercert(binary_form=True)
    finally:
        conn.close()


def refused(port: int, ctx: ssl.SSLContext) -> bool:
    """Whether the server ends the TLS session before answering (under TLS 1.3 the refusal of
    a client certificate arrives on the client's first read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                return tls.recv(65536) == b""
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True


def install(new: Issued, cert_file: Path, key_file: Path) -> None:
    """Put a renewed pair in place as a certificate manager does: write aside, then rename."""
    for source, target in ((new.key_file, key_file), (new.cert_file, cert_file)):
        shutil.copy(source, target.with_suffix(".tmp"))
        os.replace(target.with_suffix(".tmp"), target)


def test_mutual_tls_is_required_and_the_admin_scope_still_is(renewing, pki, keys):
    server, _, _ = renewing
    assert server.scheme == "https"
    for cert in (None, pki.stranger):
        assert refused(server.port, context(pki, cert))
    assert get(server.port, context(pki, pki.client)) == (200, pki.server.der)
    assert get(server.port, context(pki, pki.client), "/v1/models")[0] == 401  # TLS is not a credential
    assert get(server.port, context(pki, pki.client), "/v1/models", keys.headers())[0] == 200


def test_a_renewed_certificate_reaches_new_connections_without_a_restart(renewing, pki):
    server, cert_file, key_file = renewing
    renewed = pki.ca.issue("admin-renewed", "127.0.0.1", server=True)
    install(renewed, cert_file, key_file)
    until(lambda: server.tls.serial == renewed.serial, 30, "the admin listener's periodic TLS check")
    assert get(server.port, context(pki, pki.client)) == (200, renewed.der)
    assert server.reload_tls() is False  # nothing changed since
    assert refused(server.port, context(pki))  # still mutual


def test_plain_http_on_the_tls_port_gets_no_answer(renewing):
    server, _, _ = renewing
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = sock.recv(1024)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/")


def test_without_tls_it_serves_plain_http_and_stops_with_its_lifespan(tmp_path, keys):
    server = serving(tmp_path, keys, None)
    try:
        assert (server.scheme, server.reload_tls(), server.responsive(5)) == ("http", False, True)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/v1/health")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        server.stop()
    assert not server.alive and not server.responsive(1)


def test_bad_tls_files_fail_before_the_port_is_bound(tmp_path, pki):
    tls = TlsConfig(cert_file=str(pki.server.cert_file), key_file=str(pki.client.key_file))
    with pytest.raises(ConfigError, match="serving.tls.key_file"):
        AdminServer(lambda: None, "127.0.0.1", 0, tls)


def test_a_port_in_use_is_an_error_not_a_shared_listener(tmp_path, keys):
    first = serving(tmp_path, keys, None)
    try:
        with pytest.raises(OSError):
            AdminServer(lambda: None, "127.0.0.1", first.port)
    finally:
        first.stop()
