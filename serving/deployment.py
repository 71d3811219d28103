"""The Ray Serve deployment: each replica runs one gateway listening on the shared port.

Ray Serve owns the replicas (placement, GPUs, health checks, restarts, rolling
updates); traffic reaches a replica directly through its ``SO_REUSEPORT`` socket.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray import serve

from contracts.errors import ConfigError
from serving.config import ServingConfig

APP_NAME = "mlgate"
NODE_IP = "node-ip"  # serving.host: each replica listens on its own Ray node's IP (the pod IP on KubeRay)
SALT_FILE_NAME = "pii_salt"
log = logging.getLogger("mlgate.deployment")


@serve.deployment(name="gateway", max_ongoing_requests=1, health_check_period_s=5)
class GatewayDeployment:
    def __init__(self, registry_root: str, serving_cfg: dict[str, Any], log_root: str | None = None,
                 audit_root: str | None = None) -> None:
        from serving.gateway import Gateway
        from serving.hub_actor import RayHub, get_or_create_hub

        cfg = ServingConfig.model_validate(serving_cfg)
        if cfg.host == NODE_IP:
            import ray

            cfg = cfg.model_copy(update={"host": ray.util.get_node_ip_address()})
        hub = RayHub(get_or_create_hub(), cfg.metrics.include_ray_metrics) if cfg.metrics.enabled else None
        self.gateway = Gateway(registry_root, cfg, log_root=log_root, hub=hub, audit_root=audit_root)

    def check_health(self) -> None:
        if not self.gateway.healthy():
            raise RuntimeError("gateway is not responsive: its HTTP server, event loop or a model thread "
                               "did not answer within serving.liveness_timeout_s")

    def port(self) -> int:
        return self.gateway.port

    def pid(self) -> int:
        import os

        return os.getpid()

    def __del__(self) -> None:
        gateway = getattr(self, "gateway", None)
        if gateway is not None:
            gateway.stop()


def gpus_per_replica(cfg: ServingConfig, cluster_gpus: float) -> float:
    if cfg.replica_num_gpus == "auto":
        return 1.0 if cluster_gpus >= 1 else 0.0
    return float(cfg.replica_num_gpus)


def salt_in_file(cfg: ServingConfig) -> ServingConfig:
    """``cfg`` with no PII salt in it: an inline ``prediction_log.pii_salt`` is written to a
    0600 file ``pii_salt`` beside ``auth.keys_file`` (a path the replicas read already) and
    replaced by ``pii_salt_file``, which each replica reads at start. The deployment's
    arguments are stored in the cluster's GCS: the salt must never be among them."""
    plog = cfg.prediction_log
    if plog.pii_salt is None:
        return cfg
    if plog.pii_salt_file is not None:
        raise ConfigError("serving.prediction_log: set pii_salt or pii_salt_file, not both")
    moved = {"pii_salt": None}
    if plog.pii_salt:
        from access.keys import write_private

        if "://" in cfg.auth.keys_file:
            raise ConfigError("serving.prediction_log.pii_salt: cannot be moved beside a remote "
                              f"serving.auth.keys_file ({cfg.auth.keys_file}); set pii_salt_file instead")
        folder = Path(cfg.auth.keys_file).expanduser().resolve().parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / SALT_FILE_NAME
        write_private(path, plog.pii_salt.encode())
        log.info("serving.prediction_log.pii_salt moved into %s (mode 0600); replicas read it from there", path)
        moved["pii_salt_file"] = str(path)
    return cfg.model_copy(update={"prediction_log": plog.model_copy(update=moved)})


def build_app(registry_root: str, cfg: ServingConfig, cluster_gpus: float = 0.0, log_root: str | None = None,
              audit_root: str | None = None):
    """The Serve application; ``cfg.port`` must be a fixed port shared by all replicas.
    Its arguments carry no secret: see :func:`salt_in_file`."""
    cfg = salt_in_file(cfg)
    options = {"num_cpus": cfg.replica_num_cpus, "num_gpus": gpus_per_replica(cfg, cluster_gpus)}
    return GatewayDeployment.options(num_replicas=cfg.num_replicas, max_surge_percent=cfg.max_surge_percent,
                                     ray_actor_options=options).bind(
        registry_root, cfg.model_dump(mode="json"), log_root, audit_root
    )


def deploy(registry_root: str, cfg: ServingConfig, cluster_gpus: float = 0.0, log_root: str | None = None,
           audit_root: str | None = None) -> None:
    """Deploy onto the Ray cluster this process is connected to; blocks until replicas run.

    ``log_root``: where replicas write prediction logs (None: no prediction log);
    ``audit_root``: the audit trail of the admin actions replicas perform (a local path).
    """
    serve.start(proxy_location="Disabled")
    serve.run(build_app(registry_root, cfg, cluster_gpus, log_root, audit_root), name=APP_NAME, route_prefix=None)


def shutdown_hub() -> None:
    """Remove the detached metrics hub (after the app is deleted)."""
    import ray

    from serving.hub_actor import HUB_NAME, HUB_NAMESPACE

    try:
        ray.kill(ray.get_actor(HUB_NAME, namespace=HUB_NAMESPACE))
    except ValueError:
        pass


def app_builder(args: dict[str, Any]):
    """Serve application builder for ``serve run``/RayService (``import_path: serving.deployment:app_builder``).

    ``args``: ``registry_root``, optional ``log_root`` and ``audit_root``, and ``serving`` (a ServingConfig
    mapping, validated here so a bad config fails the deploy with the field named). A Serve
    config is stored in the cluster's GCS as it is: it may name a ``pii_salt_file`` (a mounted
    Secret), never hold ``pii_salt`` itself.
    """
    from pydantic import ValidationError

    try:
        cfg = ServingConfig.model_validate(args.get("serving", {}))
    except ValidationError as exc:
        raise ConfigError(f"serving config: {exc}") from None
    if cfg.prediction_log.pii_salt:
        raise ConfigError("serving.prediction_log.pii_salt: not in a Serve config (Ray keeps it in the GCS); "
                          "mount the salt from a Secret and set pii_salt_file")
    if "registry_root" not in args:
        raise ConfigError("registry_root: required")
    return build_app(args["registry_root"], cfg, args.get("cluster_gpus", 0.0), args.get("log_root"),
                     args.get("audit_root"))
