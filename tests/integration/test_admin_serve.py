"""The admin API as its own Serve application on the shared local Ray: Serve's HTTP proxy on
a free admin port, serving HTTPS with the test CA's certificate, called over real HTTP."""

from __future__ import annotations

import shutil
import ssl

import httpx
import pytest

from access.audit import AuditLog
from access.keys import key_id_of
from tests.conftest import free_port
from tests.polling import until
from tests.tlscerts import make_pki

pytestmark = pytest.mark.integration


def _healthy(url: str, context: ssl.SSLContext) -> bool:
    try:
        return httpx.get(f"{url}/v1/health", verify=context, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def admin_api(ray_session, demo_registry, tmp_path_factory, keys):
    from ray import serve

    from control.config import AdminConfig
    from control.deployment import delete_admin, deploy_admin
    from mlgate.config import MlgateConfig

    root = tmp_path_factory.mktemp("admin")
    narrow = keys.create("narrow", "infer:demo")  # before the replica reads the key store
    shutil.copytree(demo_registry, root / "registry")
    pki = make_pki(root / "pki")
    cfg = MlgateConfig(registry_root=str(root / "registry"), audit_root=str(root / "audit"),
                       log_root=str(root / "logs"),
                       serving={"auth": keys.auth, "tls": {"cert_file": str(pki.server.cert_file),
                                                           "key_file": str(pki.server.key_file)}})
    status = serve.status()
    if not status.proxies and not status.applications:  # a Serve an earlier module left without a proxy
        serve.shutdown()
    url = deploy_admin(cfg, AdminConfig(port=free_port()))
    context = ssl.create_default_context(cafile=str(pki.ca.cert_file))
    until(lambda: _healthy(url, context), 60, f"admin API at {url}")
    try:
        with httpx.Client(base_url=url, verify=context, timeout=30) as client:
            yield client, root, narrow
    finally:
        delete_admin()


def test_the_admin_api_answers_over_tls_with_credentials_checked(admin_api, keys):
    client, root, narrow = admin_api
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


def test_plain_http_on_the_admin_port_is_refused(admin_api):
    client, _, _ = admin_api
    plain = str(client.base_url).replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/v1/health", timeout=5)


def test_a_serve_config_builder_names_a_bad_setting():
    from contracts.errors import ConfigError
    from control.deployment import app_builder

    with pytest.raises(ConfigError, match="registry_root"):
        app_builder({"audit_root": "var/audit"})


def test_the_proxy_serves_tls_with_the_gateway_s_certificate():
    from control.config import AdminConfig
    from control.deployment import http_options
    from serving.config import TlsConfig

    assert http_options(AdminConfig()) == {"host": "127.0.0.1", "port": 8090}
    tls = TlsConfig(cert_file="/c.pem", key_file="/k.pem")
    assert http_options(AdminConfig(port=9443), tls) == {"host": "127.0.0.1", "port": 9443,
                                                         "ssl_certfile": "/c.pem", "ssl_keyfile": "/k.pem"}
