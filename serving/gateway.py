"""Assembles one gateway process: registry -> data plane -> ASGI app -> HTTP server.

Used by the Ray Serve deployment (one per replica) and, without Ray, by tests and the
single-process reference benchmark.
"""

from __future__ import annotations

import logging
import os

from registry.store import Registry
from serving.config import ServingConfig
from serving.dataplane import DataPlane
from serving.http.app import GatewayApp
from serving.http.server import ServerThread

log = logging.getLogger("mlgate.serving")


class Gateway:
    def __init__(self, registry_root: str, cfg: ServingConfig, port: int | None = None) -> None:
        import torch

        torch.set_num_threads(cfg.torch_num_threads)
        if cfg.unnice:
            _reset_nice()
        self.cfg = cfg
        self.registry = Registry(registry_root)
        self.dataplane: DataPlane | None = None
        self.server = ServerThread(self._build_app, cfg.host, cfg.port if port is None else port,
                                   on_stop=self._on_stop)
        self.server.start()
        log.info("gateway listening on %s:%s", cfg.host, self.server.port)

    def _build_app(self) -> GatewayApp:
        # Built on the server's own loop so batchers and their futures live there.
        self.dataplane = DataPlane.load(self.registry, self.cfg)
        return GatewayApp(self.dataplane, self.cfg.max_body_bytes)

    async def _on_stop(self) -> None:
        if self.dataplane is not None:
            await self.dataplane.close()

    @property
    def port(self) -> int:
        return self.server.port

    def healthy(self) -> bool:
        return self.server.alive

    def stop(self) -> None:
        self.server.stop()


def _reset_nice() -> None:
    """Ray starts workers at a raised nice level; a latency-critical server wants 0."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        log.info("cannot lower the nice level (not permitted); continuing")
