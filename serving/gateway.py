"""Assembles one gateway process: registry -> data plane (+ observers) -> ASGI app -> HTTP server.

Used by the Ray Serve deployment (one per replica) and, without Ray, by tests and the
single-process reference benchmark.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from contracts.clock import Clock, wall_clock_s
from contracts.prometheus import AUTH_REFUSED_METRIC, HTTP_REFUSED_METRIC, LocalHub, MetricsPusher, MetricsRecorder
from contracts.replicas import remove_status, write_status
from registry.store import Registry
from serving.config import ServingConfig
from serving.dataplane import DataPlane
from serving.http.app import GatewayApp, new_request_id
from serving.http.errors import JSON
from serving.http.repository import RepositoryHandlers
from serving.http.server import ServerThread
from serving.live import LiveModels, heartbeat_s
from serving.observers import ErrorLogObserver, MetricsObserver, PredictionLogObserver, StatisticsObserver
from serving.predlog import PredictionLogWriter

log = logging.getLogger("mlgate.serving")
PROMETHEUS = (b"content-type", b"text/plain; version=0.0.4; charset=utf-8")


class Gateway:
    def __init__(self, registry_root: str, cfg: ServingConfig, log_root: str | None = None,
                 hub=None, port: int | None = None, clock: Clock = wall_clock_s, server_class=ServerThread,
                 audit_root: str | None = None) -> None:
        """``clock``: the wall time of arrivals (log records) and of received labels.
        ``audit_root``: the audit trail this replica records its admin actions in (the
        repository API's loads and unloads; None: not recorded).
        ``server_class``: what serves the app (its constructor and interface are
        :class:`ServerThread`'s); the benchmark puts other HTTP servers here to compare them."""
        import torch

        torch.set_num_threads(cfg.torch_num_threads)
        if cfg.unnice:
            _reset_nice()
        self.cfg = cfg
        self.clock = clock
        self.registry = Registry(registry_root)
        self.log_root = log_root
        self.audit_root = audit_root
        self.hub = hub if hub is not None else LocalHub()
        self.recorder = MetricsRecorder()
        self.source = f"{socket.gethostname()}-{os.getpid()}"
        self.pusher = MetricsPusher(self.recorder, self.hub, self.source, cfg.metrics.push_interval_s) \
            if cfg.metrics.enabled else None
        self.writer: PredictionLogWriter | None = None
        self.dataplane: DataPlane | None = None
        self.live: LiveModels | None = None
        self.auth = None  # access.authenticator.Authenticator, or None with auth off
        self._status_writes = ThreadPoolExecutor(1, thread_name_prefix="replica-status")
        self.repository: RepositoryHandlers | None = None
        self.statistics = StatisticsObserver()  # Triton's model statistics, for the gRPC ModelStatistics
        self.grpc = None  # serving.grpc.server.GrpcServer, started beside the HTTP server
        self.server = server_class(self._build_app, cfg.host, cfg.port if port is None else port,
                                   cfg.max_body_bytes, on_stop=self._on_stop, limits=cfg.http,
                                   on_refused=lambda reason: self.recorder.inc(HTTP_REFUSED_METRIC, (reason,)),
                                   tls=cfg.tls)
        self.server.start()
        log.info("gateway listening on %s:%s", cfg.host, self.server.port)
        if cfg.grpc.enabled and getattr(self.server, "loop", None) is not None:
            self._start_grpc()

    def _start_grpc(self) -> None:
        """The gRPC listener on the HTTP server's loop, over the same data plane and access control."""
        from serving.grpc.server import GrpcServer
        from serving.grpc.service import InferenceService

        service = InferenceService(
            self.dataplane, clock=self.clock, new_id=new_request_id,
            max_message_bytes=self.cfg.grpc.max_message_bytes or self.cfg.max_body_bytes,
            max_stream_inflight=self.cfg.grpc.max_stream_inflight, auth=self.auth,
            on_refused=lambda reason: self.recorder.inc(AUTH_REFUSED_METRIC, (reason,)),
            repository=self.repository, statistics=self.statistics)
        self.grpc = GrpcServer(self.cfg, service)
        try:
            asyncio.run_coroutine_threadsafe(self.grpc.start(), self.server.loop).result(60.0)
        except BaseException:
            self.grpc = None
            self.server.stop()
            raise

    def _build_app(self) -> GatewayApp:
        # Built on the server's own loop so batchers and their futures live there.
        if self.cfg.prediction_log.enabled and self.log_root:
            self.writer = PredictionLogWriter(self.log_root, self.cfg.prediction_log, self.recorder)
        self.dataplane = DataPlane.load(self.registry, self.cfg, self._observers)
        self.dataplane.recorder = self.recorder
        self._served_changed()
        self.live = LiveModels(self.dataplane, self.registry, self.cfg, recorder=self.recorder,
                               on_change=self._served_changed, on_state=self._report_status, clock=self.clock)
        self.live.start()
        self.auth = self._authenticator()
        audit = None
        if self.audit_root is not None:
            from access.audit import AuditLog

            audit = AuditLog(self.audit_root, clock=self.clock)
        repository = self.repository = RepositoryHandlers(self.live.repository, audit, replica=self.source)
        extra_post = repository.handlers()
        if self.writer is not None:  # feedback labels name logged predictions: needs the log
            from serving.feedback import FeedbackHandler

            schema_of = lambda m, v: self.dataplane.model(m, v).schema  # noqa: E731
            extra_post["feedback"] = FeedbackHandler(self.log_root, schema_of, flush=self.writer.flush,
                                                     clock=self.clock, recorder=self.recorder)
        return GatewayApp(self.dataplane, self.cfg.max_body_bytes, extra_get={"metrics": self._metrics},
                          extra_post=extra_post, clock=self.clock, auth=self.auth,
                          on_refused=lambda reason: self.recorder.inc(AUTH_REFUSED_METRIC, (reason,)),
                          on_admin_refused=repository.refused)

    def _served_changed(self) -> None:
        # the hub keeps the series of these versions only; it forgets a replica silent for 10 pushes
        # (draining versions still answer: their series stay until they are unloaded)
        served = {(name, str(v)) for name, versions in self.dataplane.models.items() for v in versions}
        if self.live is not None:
            served |= {(name, str(v)) for name, v in self.live.draining}
        self.recorder.set_served(served, ttl_s=max(30.0, 10 * self.cfg.metrics.push_interval_s))

    def _report_status(self, status: dict) -> None:
        """The live table's state, for ``mlgate models status``: written in order, off the loop."""
        if self.log_root is None:
            return
        record = {"source": self.source, "host": socket.gethostname(), "pid": os.getpid(),
                  "address": f"{self.cfg.host}:{self.server.port}", "updated_at": self.clock(),
                  "heartbeat_s": heartbeat_s(self.cfg), "models": status}
        self._status_writes.submit(_write_status_quietly, self.log_root, self.source, record)

    def _authenticator(self):
        """Who may do what on this replica (None with ``serving.auth.enabled: false``)."""
        if not self.cfg.auth.enabled:
            log.warning("access control is OFF (serving.auth.enabled: false): anyone who reaches %s:%s may "
                        "predict, label and read metrics", self.cfg.host, self.server.port)
            return None
        from access.authenticator import Authenticator

        return Authenticator(self.cfg.auth, clock=self.clock)

    def _observers(self, plane: DataPlane) -> list:
        """What hears every answered request: the error log, the metrics (reading the plane's
        in-flight counts and served versions), the prediction log."""
        known = plane.models  # live: the names served now
        observers: list = [ErrorLogObserver(self.cfg.metrics.log_error_inputs), self.statistics]
        if self.cfg.metrics.enabled:
            observers.append(MetricsObserver(self.recorder, known, plane.inflight, plane.served_versions))
        if self.writer is not None:
            observers.append(PredictionLogObserver(self.writer.buffer, known))
        return observers

    async def _metrics(self, route, headers) -> tuple:
        if self.pusher is None:
            return 404, [JSON], b'{"error":"metrics are disabled (serving.metrics.enabled)"}'
        text = await self.hub.render(self.source, self.recorder.drain())
        return 200, [PROMETHEUS], text.encode()

    async def _on_stop(self) -> None:
        if self.grpc is not None:  # begun with the HTTP drain (stop): its calls in flight finish first
            await self.grpc.stopped()
        if self.live is not None:
            await self.live.close()
        self._status_writes.shutdown(wait=True)
        if self.log_root is not None:
            await asyncio.to_thread(remove_status, self.log_root, self.source)
        if self.dataplane is not None:
            await self.dataplane.close()
        if self.writer is not None:
            self.writer.close()
        if self.pusher is not None:
            self.pusher.close()
        if self.auth is not None:  # stops its JWKS refresh (waits for a fetch under way: off the loop)
            await asyncio.to_thread(self.auth.close)

    @property
    def port(self) -> int:
        return self.server.port

    def healthy(self) -> bool:
        """The replica answers: its HTTP thread runs, its event loop turns, and every model
        thread takes work, each within ``serving.liveness_timeout_s`` (Ray Serve's health
        check calls this, so a wedged replica is restarted instead of keeping its share of
        new connections)."""
        return self.server.responsive(self.cfg.liveness_timeout_s, self._probe_models)

    async def _probe_models(self) -> None:
        if self.dataplane is not None:
            await asyncio.gather(*(model.probe() for versions in self.dataplane.models.values()
                                   for model in versions.values()))

    def stop(self) -> None:
        if self.grpc is not None:
            self.grpc.begin_stop()
        self.server.stop()


def _write_status_quietly(root: str, source: str, record: dict) -> None:
    try:
        write_status(root, source, record)
    except OSError:
        log.warning("cannot write this replica's status under %s", root, exc_info=True)


def _reset_nice() -> None:
    """Ray starts workers at a raised nice level; a latency-critical server wants 0."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        log.info("cannot lower the nice level (not permitted); continuing")
