"""TLS as a user turns it on: ``mlgate up --tls-cert --tls-key --tls-client-ca`` serves HTTPS
with mutual TLS; the official tritonclient.http with ``ssl=True``, the test CA, a client
certificate and an API key predicts; without a client certificate, or with one of another
CA, the handshake is refused; plain HTTP on the port gets no answer. The admin API's port
requires the same client certificates."""

from __future__ import annotations

import http.client
import re
import socket
import ssl

import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.mlgate_up import mlgate_up
from tests.polling import until
from tests.reference import ROW
from tests.tlscerts import make_pki

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def context(pki, cert=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca.cert_file))
    if cert is not None:
        ctx.load_cert_chain(cert.cert_file, cert.key_file)
    return ctx


def live(port: int, ctx: ssl.SSLContext, path: str = "/v2/health/live", headers=None) -> int:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    try:
        conn.request("GET", path, headers=headers or {})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_registry):
    work = tmp_path_factory.mktemp("tls-up")
    pki = make_pki(work / "pki")

    def ready(port: int) -> bool:
        try:
            return live(port, context(pki, pki.client)) == 200
        except OSError:
            return False
    with mlgate_up(demo_registry, work, 300.0, ready=ready, MLGATE_SERVING__TLS__CERT_FILE=str(pki.server.cert_file),
                   MLGATE_SERVING__TLS__KEY_FILE=str(pki.server.key_file),
                   MLGATE_SERVING__TLS__CLIENT_CA_FILE=str(pki.ca.cert_file)) as up:
        yield up, pki


def test_tritonclient_with_tls_a_client_certificate_and_a_key(served):
    up, pki = served
    import gevent.ssl

    client = httpclient.InferenceServerClient(
        f"127.0.0.1:{up.port}", ssl=True, ssl_context_factory=gevent.ssl.create_default_context,
        ssl_options={"ca_certs": str(pki.ca.cert_file), "certfile": str(pki.client.cert_file),
                     "keyfile": str(pki.client.key_file)})
    try:
        assert client.is_server_live()
        inputs = []
        for name, value in ROW.items():
            text = isinstance(value, str)
            tensor = httpclient.InferInput(name, [1], "BYTES" if text else "FP64")
            tensor.set_data_from_numpy(np.array([value.encode() if text else value],
                                                dtype=object if text else np.float64))
            inputs.append(tensor)
        result = client.infer("demo", inputs, headers=up.headers)
        assert result.as_numpy("probabilities").shape == (1, 2)
        with pytest.raises(httpclient.InferenceServerException, match="credentials required"):
            client.infer("demo", inputs)  # TLS is not a credential: the key still is
    finally:
        client.close()


def test_without_a_client_certificate_or_with_a_stranger_s_the_handshake_is_refused(served):
    up, pki = served
    for cert in (None, pki.stranger):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            live(up.port, context(pki, cert))
    assert live(up.port, context(pki, pki.client)) == 200


def test_plain_http_on_the_tls_port_gets_no_answer(served):
    up, _ = served
    with socket.create_connection(("127.0.0.1", up.port), timeout=10) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = sock.recv(1024)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/")
    until(lambda: "mlgate serving on https://" in up.log_path.read_text(), 30.0, "mlgate up's https URL")


def test_the_admin_port_requires_a_client_certificate_too(served):
    up, pki = served
    line = until(lambda: re.search(r"admin API on https://127\.0\.0\.1:(\d+)", up.log_path.read_text()), 30.0,
                 "mlgate up's admin API URL")
    admin_port = int(line.group(1))
    for cert in (None, pki.stranger):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            live(admin_port, context(pki, cert), "/v1/health")
    assert live(admin_port, context(pki, pki.client), "/v1/models") == 401
    assert live(admin_port, context(pki, pki.client), "/v1/models", up.headers) == 200
