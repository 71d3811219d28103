"""The replica's gRPC listener: grpcio's asyncio server on the HTTP server's event loop (where
the data plane's batchers live), beside it on the port every replica shares (``SO_REUSEPORT``:
the kernel spreads connections over the replicas, as for HTTP).

It serves ``inference.GRPCInferenceService``, the standard health service ``grpc.health.v1``
(``""`` and the inference service: SERVING while the replica serves, NOT_SERVING from the
moment it stops) and, with ``serving.grpc.reflection``, server reflection. Limits: the largest
message (``serving.grpc.max_message_bytes``, else the HTTP body limit), calls in flight per
connection, idle connections, keep-alive pings. With ``serving.tls`` it speaks TLS only (mutual
with ``client_ca_file``), and a renewed certificate reaches new handshakes without a restart:
``serving.http.tls.ServerTls`` watches the files and each handshake picks up what it loaded.

Stop: the health service says NOT_SERVING, new calls are refused, calls in flight have
``serving.grpc.shutdown_grace_s`` to finish (:meth:`GrpcServer.begin_stop`, then
:meth:`GrpcServer.stopped` where the replica drains).
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from serving.config import ServingConfig
from serving.grpc.generated import grpc_service_pb2 as pb
from serving.grpc.generated import grpc_service_pb2_grpc as pb_grpc
from serving.grpc.service import InferenceService

log = logging.getLogger("mlgate.grpc")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


def server_options(cfg: ServingConfig) -> list[tuple[str, int]]:
    g = cfg.grpc
    max_message = g.max_message_bytes or cfg.max_body_bytes
    return [("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", max_message),
            ("grpc.max_send_message_length", max_message),
            ("grpc.max_concurrent_streams", g.max_concurrent_streams),
            ("grpc.max_connection_idle_ms", int(g.idle_timeout_s * 1000)),
            ("grpc.keepalive_time_ms", int(g.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(g.keepalive_timeout_s * 1000)),
            ("grpc.http2.max_pings_without_data", 0)]


def grpc_port(cfg: ServingConfig) -> int:
    """``serving.grpc.port``; left at its default beside ``serving.port`` 0 (a free port: a test's
    gateway), a free port too, so such a gateway never joins another's 8001."""
    if cfg.port == 0 and "port" not in cfg.grpc.model_fields_set:
        return 0
    return cfg.grpc.port


class GrpcServer:
    """Build and :meth:`start` it on the loop that runs the data plane."""

    def __init__(self, cfg: ServingConfig, service: InferenceService, host: str | None = None,
                 port: int | None = None) -> None:
        self.cfg = cfg
        self.service = service
        self.host = cfg.host if host is None else host
        self.port = port if port is not None else grpc_port(cfg)
        self.tls = None
        if cfg.tls.enabled:  # the files are checked now (ConfigError naming the field)
            from serving.http.tls import ServerTls

            self.tls = ServerTls(cfg.tls)
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopping: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> int:
        """Bind, start serving; the bound port (``serving.grpc.port`` 0: a free one)."""
        self.loop = asyncio.get_running_loop()
        server = grpc.aio.server(options=server_options(self.cfg))
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(self.service, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if self.cfg.grpc.reflection:
            from grpc_reflection.v1alpha import reflection

            reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME),
                                                server)
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        bound = server.add_secure_port(address, self._credentials()) if self.tls else server.add_insecure_port(address)
        if not bound:
            raise OSError(f"serving.grpc.port: cannot listen on {address}")
        await server.start()
        self.server, self.port = server, bound
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.tls is not None:
            self._tasks.append(self.loop.create_task(self.tls.run()))
        log.info("gRPC listening on %s (%s)", f"{self.host}:{bound}", "TLS" if self.tls else "plaintext")
        return bound

    def _credentials(self) -> grpc.ServerCredentials:
        tls = self.tls
        seen = [tls.serial]

        def configuration():
            material = tls.material
            return grpc.ssl_server_certificate_configuration(
                [(material.key_pem, material.cert_pem)],
                root_certificates=None if material.client_ca_pem is None else material.client_ca_pem.encode())

        def fetch():  # on gRPC's threads, at each handshake: a new configuration once ServerTls loaded one
            if tls.serial == seen[0]:
                return None
            seen[0] = tls.serial
            return configuration()

        return grpc.dynamic_ssl_server_credentials(configuration(), fetch,
                                                   require_client_authentication=self.cfg.tls.client_ca_file
                                                   is not None)

    def begin_stop(self) -> None:
        """From any thread: refuse new calls now; calls in flight have the grace period."""
        if self.loop is not None and self.server is not None:
            self.loop.call_soon_threadsafe(self._begin_stop)

    def _begin_stop(self) -> None:
        if self._stopping is None:
            self._stopping = self.loop.create_task(self._stop())

    async def _stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        for task in self._tasks:
            task.cancel()
        await self.server.stop(self.cfg.grpc.shutdown_grace_s)

    async def stopped(self) -> None:
        """On the server's loop: stop (if not begun) and wait until the last call is done."""
        if self.server is None:
            return
        self._begin_stop()
        await self._stopping
