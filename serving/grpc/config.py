"""Typed configuration of the gRPC listener (``serving.grpc``, composed into ``serving.config``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GrpcConfig(BaseModel):
    """The v2 inference protocol over gRPC (Triton's ``inference.GRPCInferenceService``),
    served by every gateway replica beside its HTTP server, on a port the replicas share
    (``SO_REUSEPORT``), with the HTTP server's host, access control and TLS."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Serve gRPC beside HTTP on every replica")
    port: int = Field(default=8001, ge=0, le=65_535, description="gRPC port (0: a free one, tests only: replicas "
                      "would not share it); left unset beside serving.port 0, a free one too")
    max_message_bytes: int | None = Field(default=None, ge=1024, description="Largest request or response "
                                          "message (RESOURCE_EXHAUSTED beyond); None: serving.max_body_bytes, "
                                          "the HTTP body limit")
    max_concurrent_streams: int = Field(default=128, ge=1, le=65_536, description="Calls in flight on one "
                                        "HTTP/2 connection; more wait for a slot (the client's side queues them)")
    max_stream_inflight: int = Field(default=256, ge=1, le=65_536, description="Requests of one ModelStreamInfer "
                                     "stream computing at once; the server stops reading the stream beyond it")
    idle_timeout_s: float = Field(default=300.0, gt=0, le=86_400, description="A connection with no call in "
                                  "flight for this long is closed (GOAWAY)")
    keepalive_time_s: float = Field(default=60.0, gt=0, le=86_400, description="Ping an idle connection this "
                                    "often to find a dead peer")
    keepalive_timeout_s: float = Field(default=20.0, gt=0, le=3600, description="A ping unanswered for this "
                                       "long closes the connection")
    shutdown_grace_s: float = Field(default=30.0, ge=0, le=3600, description="At stop, how long calls in "
                                    "flight may take to finish (new ones are refused at once)")
    reflection: bool = Field(default=True, description="Serve gRPC server reflection (grpcurl and similar "
                             "tools list the services without the .proto files)")
