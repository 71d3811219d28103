"""Typed configuration of the admin API (``serving.admin``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AdminConfig(BaseModel):
    """Where the admin API listens; TLS comes from ``serving.tls``, credentials from ``serving.auth``."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description="Serve the admin API (mlgate up starts it beside the gateway)")
    host: str = Field(default="127.0.0.1", description="Address the admin API listens on, on the head node "
                      "(loopback by default, like the data plane)")
    port: int = Field(default=8090, ge=1, le=65_535, description="Port of the admin API, apart from the data plane's")
