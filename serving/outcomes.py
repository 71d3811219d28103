"""What observers hear about answered inference requests, and the interface they implement.

Plain data: the data plane fills these in and hands them to its observers (prediction
log, metrics, error log); a batch's answers arrive together (:class:`BatchOutcome`, all
status 200), every other answer alone (:class:`Outcome`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np

from contracts.errors import ErrorKind, classify
from contracts.prometheus import UNKNOWN_LABEL
from serving.types import InferenceRequest

if TYPE_CHECKING:
    from serving.batching import BatchStats
    from serving.model import ServedModel
    from serving.pipeline import Outputs, Prepared

UNKNOWN_MODEL = UNKNOWN_LABEL  # the label of names no served model has (clients must not mint label values)


@dataclass
class Outcome:
    """One answered request: an error, or an answer that was not observed with its batch."""

    request: InferenceRequest
    model: ServedModel | None
    prepared: Prepared | None
    outputs: Outputs | None
    error: Exception | None
    latency_s: float
    wall_start_s: float  # the wall clock at arrival (epoch seconds)

    @property
    def version(self) -> str | None:
        """The version that answered, else the one the request named (None: not named), as
        text: observers write it into labels and logs."""
        return str(self.model.version) if self.model is not None else self.request.version

    @cached_property
    def kind(self) -> ErrorKind | None:
        """What the error means (``contracts.errors.classify``), worked out once for every
        observer; None for an answer."""
        return None if self.error is None else classify(self.error)

    @property
    def status(self) -> int:
        return 200 if self.kind is None else self.kind.status


@dataclass
class BatchOutcome:
    """One computed batch: its shape and timing (``stats``) and the requests it answered
    (status 200; none when every caller had gone), with their inputs and outputs as the
    batch computed them."""

    model: ServedModel
    stats: BatchStats
    requests: list[InferenceRequest]
    latency_s: list[float]  # per request, from its arrival to its batch's answer
    wall_start_s: list[float]  # per request, the wall clock at its arrival (epoch seconds)
    rows: list[int]  # per request
    inputs: dict[str, np.ndarray]  # the validated inputs of these requests, concatenated in order
    outputs: Outputs  # their outputs, concatenated in order


class Observer(Protocol):
    """Hears every answered request once; must not raise (the data plane logs it if it does)."""

    def observe(self, outcome: Outcome) -> None: ...

    def observe_batch(self, outcome: BatchOutcome) -> None: ...
