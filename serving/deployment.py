"""The Ray Serve deployment: each replica runs one gateway listening on the shared port.

Ray Serve owns the replicas (placement, GPUs, health checks, restarts, rolling
updates); traffic reaches a replica directly through its ``SO_REUSEPORT`` socket.
"""

from __future__ import annotations

from typing import Any

from ray import serve

from serving.config import ServingConfig

APP_NAME = "mlgate"


@serve.deployment(name="gateway", max_ongoing_requests=1, health_check_period_s=5)
class GatewayDeployment:
    def __init__(self, registry_root: str, serving_cfg: dict[str, Any], log_root: str | None = None) -> None:
        from serving.gateway import Gateway
        from serving.hub_actor import RayHub, get_or_create_hub

        cfg = ServingConfig.model_validate(serving_cfg)
        hub = RayHub(get_or_create_hub(), cfg.metrics.include_ray_metrics) if cfg.metrics.enabled else None
        self.gateway = Gateway(registry_root, cfg, log_root=log_root, hub=hub)

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


def build_app(registry_root: str, cfg: ServingConfig, cluster_gpus: float = 0.0, log_root: str | None = None):
    """The Serve application; ``cfg.port`` must be a fixed port shared by all replicas."""
    options = {"num_cpus": cfg.replica_num_cpus, "num_gpus": gpus_per_replica(cfg, cluster_gpus)}
    return GatewayDeployment.options(num_replicas=cfg.num_replicas, ray_actor_options=options).bind(
        registry_root, cfg.model_dump(mode="json"), log_root
    )


def deploy(registry_root: str, cfg: ServingConfig, cluster_gpus: float = 0.0, log_root: str | None = None) -> None:
    """Deploy onto the Ray cluster this process is connected to; blocks until replicas run.

    ``log_root``: where replicas write prediction logs (None: no prediction log).
    """
    serve.start(proxy_location="Disabled")
    serve.run(build_app(registry_root, cfg, cluster_gpus, log_root), name=APP_NAME, route_prefix=None)


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

    ``args``: ``registry_root``, optional ``log_root``, and ``serving`` (a ServingConfig
    mapping, validated here so a bad config fails the deploy with the field named).
    """
    from pydantic import ValidationError

    from contracts.errors import ConfigError

    try:
        cfg = ServingConfig.model_validate(args.get("serving", {}))
    except ValidationError as exc:
        raise ConfigError(f"serving config: {exc}") from None
    if "registry_root" not in args:
        raise ConfigError("registry_root: required")
    return build_app(args["registry_root"], cfg, args.get("cluster_gpus", 0.0), args.get("log_root"))
