"""The admin API as its own Ray Serve application on the admin port (``serving.admin``), apart
from the data plane. As the gateway's replicas do, its one replica runs its own listener
(:class:`control.server.AdminServer`: uvicorn with the data plane's TLS) instead of going
through Serve's HTTP proxy, which is never started: Ray 2.60's proxy cannot require client
certificates and reads its certificate once. With ``serving.tls`` the admin port serves HTTPS
with the same files, requires client certificates when ``client_ca_file`` is set, and picks up
a renewed certificate within ``reload_interval_s``, as the gateway does.

The replica is placed on the head node (where Serve's proxy listened before), so
``serving.admin.host`` names an address of that node (loopback by default).
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve

from contracts.errors import ConfigError
from control.config import AdminConfig
from control.context import AdminSettings
from serving.config import TlsConfig

APP_NAME = "mlgate-admin"
HEAD_NODE = "node:__internal_head__"  # Ray's resource on the head node (ray._common.constants)
LIVENESS_TIMEOUT_S = 5.0
log = logging.getLogger("mlgate.control")


@serve.deployment(name="admin", num_replicas=1, max_ongoing_requests=4, health_check_period_s=5,
                  ray_actor_options={"num_cpus": 0, "resources": {HEAD_NODE: 0.001}})
class AdminDeployment:
    """One replica: the FastAPI app of :func:`control.api.create_app` on its own listener, both
    built in the replica from plain settings (Serve stores a deployment's arguments in the
    GCS: no secret in them, only paths). The constructor returns once the port accepts."""

    def __init__(self, settings: dict[str, Any], listener: dict[str, Any]) -> None:
        from control.api import create_app
        from control.server import AdminServer

        app_settings = AdminSettings.model_validate(settings)
        admin, tls = AdminConfig.model_validate(listener["admin"]), TlsConfig.model_validate(listener["tls"])
        self.server = AdminServer(lambda: create_app(app_settings), admin.host, admin.port, tls)
        self.server.start()

    def check_health(self) -> None:
        if not self.server.responsive(LIVENESS_TIMEOUT_S):
            raise RuntimeError(f"the admin API's listener did not answer within {LIVENESS_TIMEOUT_S} s")

    def port(self) -> int:
        return self.server.port

    def reload_tls(self) -> bool:
        """Look at the TLS files now (they are also looked at every ``reload_interval_s``)."""
        return self.server.reload_tls()

    def __del__(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.stop()


def listener_of(admin: AdminConfig, tls: TlsConfig | None = None) -> dict[str, Any]:
    """The replica's listener arguments: where it listens and the ``serving.tls`` files."""
    return {"admin": admin.model_dump(mode="json"), "tls": (tls or TlsConfig()).model_dump(mode="json")}


def settings_of(cfg) -> AdminSettings:
    """The replica's settings from an ``MlgateConfig``, its local paths made absolute."""
    cfg = cfg.absolute()
    from control.rollout.service import roots_of

    return AdminSettings(registry_root=cfg.registry_root, audit_root=cfg.audit_root, log_root=cfg.log_root,
                         auth=cfg.serving.auth, state_root=roots_of(cfg).state_root, rollout=cfg.rollout)


def build_app(settings: AdminSettings, admin: AdminConfig, tls: TlsConfig | None = None):
    return AdminDeployment.bind(settings.model_dump(mode="json"), listener_of(admin, tls))


def deploy_admin(cfg, admin: AdminConfig) -> str:
    """Deploy the admin API for ``cfg`` (an ``MlgateConfig``) on the Ray cluster this process
    is connected to; blocks until its replica listens and returns its URL."""
    tls = cfg.serving.tls
    if not cfg.serving.auth.enabled:
        log.warning("access control is OFF (serving.auth.enabled: false): anyone who reaches %s:%s may promote, "
                    "roll back and change traffic", admin.host, admin.port)
    serve.start(proxy_location="Disabled")
    serve.run(build_app(settings_of(cfg), admin, tls), name=APP_NAME, route_prefix=None)
    return url_of(admin, tls.enabled)


def url_of(admin: AdminConfig, tls_enabled: bool) -> str:
    return f"{'https' if tls_enabled else 'http'}://{admin.host}:{admin.port}"


def delete_admin() -> None:
    serve.delete(APP_NAME)


def app_builder(args: dict[str, Any]):
    """Serve application builder for a Serve config / RayService (``import_path:
    control.deployment:app_builder``). ``args``: :class:`~control.context.AdminSettings` fields,
    plus ``admin`` (``serving.admin``: host and port of the listener) and ``tls``
    (``serving.tls``: file paths, mounted from a Secret), both optional."""
    from pydantic import ValidationError

    args = dict(args)
    try:
        admin = AdminConfig.model_validate(args.pop("admin", {}))
        tls = TlsConfig.model_validate(args.pop("tls", {}))
        settings = AdminSettings.model_validate(args)
    except ValidationError as exc:
        raise ConfigError(f"admin API settings: {exc}") from None
    return build_app(settings, admin, tls)
