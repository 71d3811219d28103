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
    def __init__(self, registry_root: str, serving_cfg: dict[str, Any]) -> None:
        from serving.gateway import Gateway

        self.gateway = Gateway(registry_root, ServingConfig.model_validate(serving_cfg))

    def check_health(self) -> None:
        if not self.gateway.healthy():
            raise RuntimeError("gateway HTTP server is not running")

    def port(self) -> int:
        return self.gateway.port

    def __del__(self) -> None:
        gateway = getattr(self, "gateway", None)
        if gateway is not None:
            gateway.stop()


def gpus_per_replica(cfg: ServingConfig, cluster_gpus: float) -> float:
    if cfg.replica_num_gpus == "auto":
        return 1.0 if cluster_gpus >= 1 else 0.0
    return float(cfg.replica_num_gpus)


def build_app(registry_root: str, cfg: ServingConfig, cluster_gpus: float = 0.0):
    """The Serve application; ``cfg.port`` must be a fixed port shared by all replicas."""
    options = {"num_cpus": cfg.replica_num_cpus, "num_gpus": gpus_per_replica(cfg, cluster_gpus)}
    return GatewayDeployment.options(num_replicas=cfg.num_replicas, ray_actor_options=options).bind(
        registry_root, cfg.model_dump(mode="json")
    )


def deploy(registry_root: str, cfg: ServingConfig, cluster_gpus: float = 0.0) -> None:
    """Deploy onto the Ray cluster this process is connected to; blocks until replicas run."""
    serve.start(proxy_location="Disabled")
    serve.run(build_app(registry_root, cfg, cluster_gpus), name=APP_NAME, route_prefix=None)
