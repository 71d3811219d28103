"""The admin API as its own Serve application on the shared local Ray: its replica's own
listener on a free admin port, serving HTTPS with the test CA's certificate and requiring a
client certificate that CA signed (mutual TLS), called over real HTTP; a renewed certificate
reaches new connections without a redeploy."""

from __future__ import annotations

import http.client
import os
import shutil
import ssl

import httpx
import pytest

from access.audit import AuditLog
from access.keys import key_id_of
from tests.conftest import free_port
from tests.polling import until
from tests.tlscerts import client_context, make_pki

pytestmark = pytest.mark.integration


RELOAD_INTERVAL_S = 0.2


def _peer_cert(url: str, context: ssl.SSLContext) -> bytes:
    """The certificate a new connection to ``url`` is shown (DER), after a 200 from /v1/health."""
    host, port = url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    try:
        conn.request("GET", "/v1/health")
        assert conn.getresponse().status == 200
        return conn.sock.getpeercert(binary_form=True)
    finally:
        conn.close()


def _url(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


def _healthy(url: str, context: ssl.SSLContext) -> bool:
    try:
        return httpx.get(f"{url}/v1/health", verify=context, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def admin_api(ray_session, demo_registry, tmp_path_factory, keys):
    from control.config import AdminConfig
    from control.deployment import delete_admin, deploy_admin
    from mlgate.config import MlgateConfig

    root = tmp_path_factory.mktemp("admin")
    narrow = keys.create("narrow", "infer:demo")  # before the replica reads the key store
    shutil.copytree(demo_registry, root / "registry")
    pki = make_pki(root / "pki")
    cert_file, key_file = root / "admin.crt", root / "admin.key"  # a copy, renewed by a test
    shutil.copy(pki.server.cert_file, cert_file)
    shutil.copy(pki.server.key_file, key_file)
    cfg = MlgateConfig(registry_root=str(root / "registry"), audit_root=str(root / "audit"),
                       log_root=str(root / "logs"),
                       serving={"auth": keys.auth, "tls": {"cert_file": str(cert_file), "key_file": str(key_file),
                                                           "client_ca_file": str(pki.ca.cert_file),
                                                           "reload_interval_s": RELOAD_INTERVAL_S}})
    url = deploy_admin(cfg, AdminConfig(port=free_port()))
    context = client_context(pki, pki.client)
    until(lambda: _healthy(url, context), 60, f"admin API at {url}")  # deploy_admin returns once it listens
    try:
        with httpx.Client(base_url=url, verify=context, timeout=30) as client:
            yield client, root, narrow, pki
    finally:
        delete_admin()


def test_the_admin_api_answers_over_mutual_tls_with_credentials_checked(admin_api, keys):
    client, root, narrow, _ = admin_api
    assert str(client.base_url).startswith("https://127.0.0.1:")
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers=keys.headers(narrow)).status_code == 403
    listed = client.get("/v1/models", headers=keys.headers())
    assert listed.status_code == 200 and listed.json()[0]["name"] == "demo"
    promoted = client.post("/v1/models/demo/promote", headers=keys.headers(),
                           json={"version": 1, "force": True, "reason": "integration"})
    assert promoted.status_code == 200 and promoted.json()["actor_id"] == f"key:{key_id_of(keys.admin)}"
    assert client.get("/v1/models/demo", headers=keys.headers()).json()["production"] == 1
    record = AuditLog(str(root / "audit")).records()[-1]
    assert (record["action"], record["outcome"], record["identity"]["id"]) == (
        "models.promote", "ok", f"key:{key_id_of(keys.admin)}")
    assert client.get("/docs").status_code == 200
    assert "/v1/models/{model}/traffic" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("who", ["no client certificate", "a stranger CA's certificate"])
def test_without_a_client_certificate_the_ca_signed_the_handshake_fails(admin_api, who):
    client, _, _, pki = admin_api
    context = client_context(pki, None if who == "no client certificate" else pki.stranger)
    with pytest.raises(httpx.HTTPError):  # TLS 1.3: the refusal arrives on the first read
        httpx.get(f"{_url(client)}/v1/health", verify=context, timeout=10)


def test_a_renewed_certificate_reaches_the_admin_port_without_a_redeploy(admin_api):
    client, root, _, pki = admin_api
    url = _url(client)
    assert _peer_cert(url, client_context(pki, pki.client)) == pki.server.der
    renewed = pki.ca.issue("admin-renewed", "127.0.0.1", server=True)
    for source, target in ((renewed.key_file, root / "admin.key"), (renewed.cert_file, root / "admin.crt")):
        shutil.copy(source, target.with_suffix(".tmp"))  # as a certificate manager does: aside, then rename
        os.replace(target.with_suffix(".tmp"), target)
    until(lambda: _peer_cert(url, client_context(pki, pki.client)) == renewed.der, 30,
          "the renewed certificate on the admin port")
    assert client.get("/v1/health").status_code == 200


def test_plain_http_on_the_admin_port_is_refused(admin_api):
    client = admin_api[0]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{_url(client).replace('https://', 'http://')}/v1/health", timeout=5)


def test_a_serve_config_builder_names_a_bad_setting():
    from contracts.errors import ConfigError
    from control.deployment import app_builder

    with pytest.raises(ConfigError, match="registry_root"):
        app_builder({"audit_root": "var/audit"})
    with pytest.raises(ConfigError, match="port"):
        app_builder({"registry_root": "r", "audit_root": "a", "admin": {"port": 0}})


def test_the_replica_gets_the_listener_and_tls_files_only():
    from control.config import AdminConfig
    from control.deployment import listener_of
    from serving.config import TlsConfig

    plain = listener_of(AdminConfig())
    assert plain["admin"] == {"enabled": True, "host": "127.0.0.1", "port": 8090}
    assert plain["tls"]["cert_file"] is None
    tls = TlsConfig(cert_file="/c.pem", key_file="/k.pem", client_ca_file="/ca.pem")
    assert listener_of(AdminConfig(port=9443), tls)["tls"] == tls.model_dump(mode="json")
