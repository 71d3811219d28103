"""Protocol-neutral request and response types between transports and the data plane.

Plain data, no logic beyond construction, no web-framework imports. Tensors carry
their data as numpy arrays already shaped ``[batch, ...]``; ``BYTES`` tensors are
numpy object arrays of ``bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from registry.schema import ModelSchema


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    name: str
    binary_data: bool | None = None  # None: the request's default
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferenceRequest:
    model: str
    version: str | None
    inputs: list[Tensor]
    id: str | None = None
    outputs: list[RequestedOutput] | None = None  # None: all outputs
    parameters: dict[str, Any] = field(default_factory=dict)
    binary_output_default: bool = False  # parameters.binary_data_output: outputs binary unless asked otherwise
    timeout_s: float | None = None  # from parameters.timeout or a header, resolved by transports
    route: str = "v2"
    request_id: str = ""  # server-side id: the client's id, or one the transport generated
    identity: str | None = None  # who sent it (access.identity.Identity.id); None: access control off
    sticky: str | None = None  # the caller's key for sticky version assignment (the traffic policy's sticky_key)


@dataclass
class InferenceResponse:
    model_name: str
    model_version: int
    outputs: list[Tensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    schema: ModelSchema | None = None  # the answering version's (it may be unloaded by the time it is encoded)
