"""Typed configuration of the serving layer (composed into ``mlgate.config``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from access.config import AuthConfig
from control.config import AdminConfig
from registry.store import VersionPolicy
from serving.grpc.config import GrpcConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelServingConfig(_Strict):
    """Per-model serving knobs; ``serving.default_model`` applies where a model has none."""

    version_policy: VersionPolicy = Field(default_factory=VersionPolicy, description="Versions served")
    max_batch_size: int = Field(default=64, ge=1, le=65_536, description="Rows per model call at most")
    batch_wait_timeout_s: float = Field(
        default=0.002, ge=0, le=10, description="Longest wait for a batch to fill, only under load"
    )
    max_queue_size: int = Field(default=256, ge=1, description="Requests waiting per model before 503")
    default_timeout_s: float | None = Field(default=None, gt=0, description="Deadline when a request sets none")
    device: str = Field(default="auto", description="'auto' (CUDA if visible), 'cpu' or 'cuda[:n]'")
    precision: Literal["fp32", "bf16", "fp16"] = Field(default="fp32", description="CUDA autocast dtype")
    cuda_graph_batch_sizes: tuple[int, ...] = Field(default=(), description="Batch buckets for CUDA graphs")
    max_rows_per_request: int | None = Field(
        default=None, ge=1, description="Rows one request may carry (413 beyond); None: 4 x max_batch_size"
    )

    @property
    def row_limit(self) -> int:
        """Rows one request may carry: ``max_rows_per_request``, else 4 x ``max_batch_size``."""
        return self.max_rows_per_request if self.max_rows_per_request is not None else 4 * self.max_batch_size


class ServingConfig(_Strict):
    host: str = Field(default="127.0.0.1", description="Address the HTTP ingress listens on; 'node-ip': "
                      "each replica listens on its Ray node's IP (the pod IP on KubeRay)")
    port: int = Field(default=8000, ge=0, le=65_535, description="HTTP port (0: pick a free one)")
    num_replicas: int = Field(default=1, ge=1, description="Ray Serve replicas of the gateway deployment")
    max_surge_percent: int = Field(default=100, ge=0, le=100, description="Extra replicas a rolling restart (a "
                                   "redeploy with a changed config) may start before it stops old ones, as a "
                                   "percentage of num_replicas, rounded up (Ray Serve's max_surge_percent): with one "
                                   "replica, 100 starts its replacement first, so a restart is never an outage; 0: "
                                   "stop first, as Serve does by default")
    replica_num_cpus: float = Field(default=1.0, ge=0, description="CPUs reserved per replica")
    replica_num_gpus: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        default="auto", description="GPUs per replica; 'auto': 1 when the cluster has GPUs, else 0"
    )
    torch_num_threads: int = Field(default=1, ge=1, description="Intra-op threads per replica")
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="Larger bodies get 413")
    models: dict[str, ModelServingConfig] = Field(default_factory=dict, description="Per-model overrides")
    default_model: ModelServingConfig = Field(default_factory=ModelServingConfig, description="Defaults")
    serve_models: tuple[str, ...] | None = Field(
        default=None, description="Models to serve; None: every model in the registry"
    )
    unnice: bool = Field(default=True, description="Reset the replica's raised nice level to 0 when allowed")
    liveness_timeout_s: float = Field(default=5.0, gt=0, le=60, description="A replica is healthy when its event "
                                      "loop and every model thread answer a probe within this (Serve restarts it "
                                      "otherwise)")
    reload_interval_s: float = Field(default=2.0, gt=0, le=3600, description="How often each replica reads "
                                     "the registry: a new version its policy admits, a promotion, a rollback or a "
                                     "traffic-policy change reaches traffic within this, without a restart")
    drain_timeout_s: float = Field(default=30.0, gt=0, le=3600, description="How long a replaced version may take "
                                   "to answer its queued and in-flight requests before it is unloaded anyway")
    max_loaded_models: int | None = Field(default=None, ge=1, description="Models one replica holds at most "
                                          "(multiplexing): a model not held is loaded on its first request (callers "
                                          "wait on one load, within their deadline) and the least recently used one "
                                          "is unloaded to make room; None: every served model stays loaded")
    load_retry_s: float = Field(default=60.0, gt=0, le=86_400, description="A version that failed to load or warm "
                                "up is tried again after this (doubling per failure, at most 16x)")
    prediction_log: PredictionLogConfig = Field(default_factory=lambda: PredictionLogConfig(),
                                                  description="Prediction logs")
    metrics: MetricsConfig = Field(default_factory=lambda: MetricsConfig(), description="Prometheus metrics")
    http: HttpLimitsConfig = Field(default_factory=lambda: HttpLimitsConfig(),
                                   description="Limits of the HTTP server, as a reverse proxy sets them")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="Access control: API keys, JWTs, scopes")
    tls: TlsConfig = Field(default_factory=lambda: TlsConfig(), description="TLS on the gateway's listeners")
    admin: AdminConfig = Field(default_factory=AdminConfig, description="The admin API (control plane): its own "
                               "listener in its own Serve replica; TLS and mutual TLS from serving.tls")
    grpc: GrpcConfig = Field(default_factory=GrpcConfig, description="The v2 inference protocol over gRPC "
                             "(tritonclient.grpc), beside HTTP on every replica; access control and TLS as on HTTP")

    def for_model(self, name: str) -> ModelServingConfig:
        return self.models.get(name, self.default_model)


class PredictionLogConfig(_Strict):
    """Durable columnar prediction logs (see contracts/predlog.py for the layout)."""

    enabled: bool = Field(default=True, description="Write a record per row of every answered request")
    flush_interval_s: float = Field(default=2.0, gt=0, le=3600, description="Publish a segment at least this often")
    max_rows: int = Field(default=50_000, ge=1, description="Publish a segment once this many rows are buffered")
    max_buffer_rows: int = Field(
        default=500_000, ge=1, description="Bound on buffered rows; beyond it new records are dropped and counted"
    )
    pii_mode: Literal["hash", "drop"] = Field(
        default="hash", description="Personal-data features: keyed hash (needs pii_salt) or not written"
    )
    pii_salt: str | None = Field(default=None, description="Secret key for hashing personal data; unset -> drop. "
                                 "Prefer pii_salt_file: mlgate up moves an inline salt into a 0600 file, so "
                                 "the salt never travels in a deployment's arguments")
    pii_salt_file: str | None = Field(default=None, description="File holding the salt, read where it is used "
                                      "(at replica start)")
    compression: Literal["zstd", "snappy", "none"] = Field(default="zstd", description="Parquet compression")


class MetricsConfig(_Strict):
    enabled: bool = Field(default=True, description="Collect and serve Prometheus metrics at GET /metrics")
    push_interval_s: float = Field(default=1.0, gt=0, le=60, description="How often replicas push to the hub")
    include_ray_metrics: bool = Field(default=True, description="Append Ray's own ray_serve_* metrics")
    log_error_inputs: bool = Field(default=False, description="Include input payloads in error log lines")


class HttpLimitsConfig(_Strict):
    """What one client may hold of a replica: beyond each limit it gets its 4xx/503 and the
    connection closes (or, for pipelining and slow readers, the server stops reading)."""

    max_url_bytes: int = Field(default=8192, ge=64, description="Longest request target (414 beyond)")
    max_header_count: int = Field(default=100, ge=4, description="Headers per request (431 beyond)")
    max_header_bytes: int = Field(default=16384, ge=256, description="Header names and values in all (431 beyond)")
    header_timeout_s: float = Field(default=10.0, gt=0, description="From a request's first byte (or the "
                                    "connection's start) to the end of its headers (408, then close)")
    body_timeout_s: float = Field(default=30.0, gt=0, description="From the end of the headers to the end "
                                  "of the body (408, then close)")
    keepalive_timeout_s: float = Field(default=15.0, gt=0, description="An idle keep-alive connection closes")
    max_connections: int = Field(default=1024, ge=1, description="Open connections per replica (503 and "
                                 "close beyond, counted)")
    max_connections_per_client: int = Field(
        default=0, ge=0, description="Open connections per client address (503 and close beyond, counted); "
        "0: no per-client cap. Set it where clients reach the replicas directly: behind a proxy or load "
        "balancer every client has the proxy's address")
    max_pipelined: int = Field(default=32, ge=1, description="Requests in flight per connection before the "
                               "server stops reading it")


class TlsConfig(_Strict):
    """TLS 1.2+ on the gateway's listeners (off while cert_file is unset); the files are
    re-read when they change, so a renewed certificate needs no restart."""

    cert_file: str | None = Field(default=None, description="PEM certificate chain (server certificate first)")
    key_file: str | None = Field(default=None, description="PEM private key of cert_file")
    client_ca_file: str | None = Field(default=None, description="PEM CA bundle: set, clients must present a "
                                       "certificate it signed (mutual TLS)")
    reload_interval_s: float = Field(default=10.0, gt=0, le=3600, description="How often the files are checked "
                                     "for changes")

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("client_ca_file needs cert_file and key_file")
        return self


ServingConfig.model_rebuild()
