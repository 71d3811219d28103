"""The admin API as its own Ray Serve application, behind Serve's HTTP proxy on the admin
port (``serving.admin``), apart from the data plane (whose replicas run their own server).

Serve's proxy options are cluster-wide and fixed when Serve starts: :func:`start_proxy`
must run before anything else starts Serve (``serving.deployment.deploy`` starts it with
the proxy disabled when it is first). The data-plane application has no route prefix, so
the proxy serves only this one. With ``serving.tls`` set, the proxy serves HTTPS with the
same certificate and key (Ray 2.60 ``HTTPOptions.ssl_certfile``/``ssl_keyfile``); it reads
them once, at start, and it cannot require client certificates (see :func:`http_options`).
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve

from contracts.errors import ConfigError
from control.config import AdminConfig
from control.context import AdminSettings

APP_NAME = "mlgate-admin"
ROUTE_PREFIX = "/"
log = logging.getLogger("mlgate.control")


@serve.deployment(name="admin", num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=32)
@serve.ingress()
class AdminDeployment:
    """One replica: the FastAPI app of :func:`control.api.create_app`, built in the replica
    from plain settings (Serve stores a deployment's arguments in the GCS: no secret in them)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = AdminSettings.model_validate(settings)

    def __serve_build_asgi_app__(self):
        from control.api import create_app

        return create_app(self.settings)


def http_options(admin: AdminConfig, tls=None) -> dict[str, Any]:
    """Serve's ``http_options`` for the admin listener; ``tls``: a ``serving.tls`` section.
    Serve's uvicorn is given the CA as ``ssl_ca_certs`` but never asked to *require* a client
    certificate, so mutual TLS is not enforced on this port: the admin scope still is."""
    options: dict[str, Any] = {"host": admin.host, "port": admin.port}
    if tls is not None and tls.enabled:
        options |= {"ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file}
        if tls.client_ca_file is not None:
            log.warning("serving.tls.client_ca_file: the admin API (Ray Serve's proxy) cannot require client "
                        "certificates; it serves TLS with %s and requires the admin scope", tls.cert_file)
    return options


def start_proxy(admin: AdminConfig, tls=None) -> None:
    """Start Serve with its HTTP proxy on the admin listener (head node only); ConfigError
    when Serve runs on this cluster already without a proxy, where the API would be unreachable."""
    serve.start(proxy_location="HeadOnly", http_options=http_options(admin, tls))
    if not serve.status().proxies:
        raise ConfigError("serving.admin: Ray Serve already runs on this cluster with its HTTP proxy disabled; "
                          "start the admin API before the gateway (or restart Serve), or set "
                          "serving.admin.enabled: false")


def settings_of(cfg) -> AdminSettings:
    """The replica's settings from an ``MlgateConfig``, its local paths made absolute."""
    cfg = cfg.absolute()
    return AdminSettings(registry_root=cfg.registry_root, audit_root=cfg.audit_root, log_root=cfg.log_root,
                         auth=cfg.serving.auth)


def deploy_admin(cfg, admin: AdminConfig) -> str:
    """Deploy the admin API for ``cfg`` (an ``MlgateConfig``) on the Ray cluster this process
    is connected to; blocks until its replica runs and returns its URL."""
    tls = cfg.serving.tls
    if not cfg.serving.auth.enabled:
        log.warning("access control is OFF (serving.auth.enabled: false): anyone who reaches %s:%s may promote, "
                    "roll back and change traffic", admin.host, admin.port)
    start_proxy(admin, tls)
    app = AdminDeployment.bind(settings_of(cfg).model_dump(mode="json"))
    serve.run(app, name=APP_NAME, route_prefix=ROUTE_PREFIX)
    return url_of(admin, tls.enabled)


def url_of(admin: AdminConfig, tls_enabled: bool) -> str:
    return f"{'https' if tls_enabled else 'http'}://{admin.host}:{admin.port}"


def delete_admin() -> None:
    serve.delete(APP_NAME)


def app_builder(args: dict[str, Any]):
    """Serve application builder for a Serve config / RayService (``import_path:
    control.deployment:app_builder``, ``args``: :class:`~control.context.AdminSettings`
    fields); the config's ``http_options`` are then the admin listener."""
    from pydantic import ValidationError

    try:
        settings = AdminSettings.model_validate(args)
    except ValidationError as exc:
        raise ConfigError(f"admin API settings: {exc}") from None
    return AdminDeployment.bind(settings.model_dump(mode="json"))
