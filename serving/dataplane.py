"""The data plane: finds the model version a request names and runs it.

Transports call only this; it knows nothing about HTTP. Observers (prediction log,
metrics, error log) hear about every answered inference request: the answers a batch
computed once per batch (:class:`BatchOutcome`, all status 200), every other answer
one by one (:class:`Outcome`), including the ones a transport refused before decoding
finished (:meth:`DataPlane.refused`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from contracts.errors import ErrorKind, InvalidInput, NotFound, NotReady, PayloadTooLarge, classify
from registry.store import Registry
from serving.config import ServingConfig
from serving.model import ServedModel
from serving.pipeline import Outputs, Prepared, SplitOutputs, concat_rows
from serving.protocol.v2 import select_outputs
from serving.types import InferenceRequest, InferenceResponse, Tensor

log = logging.getLogger("mlgate.serving")
UNKNOWN_MODEL = "_unknown"  # the label of names no served model has (clients must not mint label values)


@dataclass
class Outcome:
    """What observers learn about one answered request."""

    request: InferenceRequest
    model: ServedModel | None
    prepared: Prepared | None
    outputs: Outputs | None
    error: Exception | None
    latency_s: float
    wall_start_s: float

    @property
    def version(self) -> str | None:
        """The version that answered, else the one the request named (None: not named)."""
        return self.model.version if self.model is not None else self.request.version

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
    """What observers learn about the requests of one batch that got their answer (200)."""

    model: ServedModel
    requests: list[InferenceRequest]
    latency_s: list[float]  # per request, from its arrival to its batch's answer
    rows: list[int]  # per request
    inputs: dict[str, np.ndarray]  # the validated inputs of these requests, concatenated in order
    outputs: Outputs  # their outputs, concatenated in order


class Observer(Protocol):
    def observe(self, outcome: Outcome) -> None: ...

    def observe_batch(self, outcome: BatchOutcome) -> None: ...


class DataPlane:
    def __init__(self, models: dict[str, dict[str, ServedModel]], observers: list[Observer] | None = None,
                 inflight: dict[tuple[str, str], int] | None = None):
        """``inflight``: requests inside :meth:`infer` by (model or ``UNKNOWN_MODEL``, route),
        kept in this dict (a metrics observer may read the same one)."""
        self.models = models
        self.observers = list(observers or [])
        self.inflight = inflight if inflight is not None else {}
        self.ready = True

    @classmethod
    def load(cls, registry: Registry, cfg: ServingConfig, observers: list[Observer] | None = None,
             on_batch=None, inflight: dict[tuple[str, str], int] | None = None) -> DataPlane:
        names = cfg.serve_models if cfg.serve_models is not None else registry.list_models()
        plane = cls({}, observers, inflight)
        for name in names:
            mcfg = cfg.for_model(name)
            versions = registry.served(name, mcfg.version_policy)
            if not versions:
                raise NotFound(f"model {name!r}: no version matches its version policy")
            plane.models[name] = {str(v.version): ServedModel(v, mcfg, on_batch, plane.observe_batch)
                                  for v in versions}
            log.info("loaded model %s versions %s", name, sorted(plane.models[name], key=int))
        return plane

    def model(self, name: str, version: str | None = None) -> ServedModel:
        versions = self.models.get(name)
        if not versions:
            raise NotFound(f"unknown model {name!r}")
        if version is None:
            return versions[max(versions, key=int)]
        if version not in versions:
            raise NotFound(f"model {name!r} version {version!r} is not served (served: {sorted(versions, key=int)})")
        return versions[version]

    def check_capacity(self, name: str | None, version: str | None, timeout_s: float | None = None) -> None:
        """Refuse at once, before any decoding, what the model's batcher would refuse now: a
        full queue (503) or, with ``timeout_s`` known from the transport (a header), a deadline
        the queued work already makes impossible (504). Unknown names pass (answered later)."""
        try:
            model = self.model(name or "", version)
        except NotFound:
            return
        timeout_s = timeout_s if timeout_s is not None else model.cfg.default_timeout_s
        model.batcher.check_admission(1, None if timeout_s is None else time.monotonic() + timeout_s)

    async def infer(self, request: InferenceRequest, started_s: float, wall_start_s: float) -> InferenceResponse:
        """``started_s``: ``time.perf_counter()`` at arrival; ``wall_start_s``: ``time.time()``."""
        request.arrived_s, request.arrived_wall_s = started_s, wall_start_s
        key = (request.model if request.model in self.models else UNKNOWN_MODEL, request.route)
        inflight = self.inflight
        inflight[key] = inflight.get(key, 0) + 1
        model = prepared = None
        try:
            if not self.ready:
                raise NotReady("server is shutting down")
            model = self.model(request.model, request.version)
            _check_requested_outputs(request, model)
            prepared = model.prepare(request.inputs)
            if prepared.rows > model.cfg.row_limit:
                raise PayloadTooLarge(f"inputs: {prepared.rows} rows; model {model.name} takes at most "
                                      f"{model.cfg.row_limit} per request (max_rows_per_request)")
            select_outputs(model.schema.outputs, request.outputs)  # an unknown output: 400, no compute
            timeout_s = request.timeout_s if request.timeout_s is not None else model.cfg.default_timeout_s
            # the deadline runs from the request's arrival, not from the end of its decoding
            deadline = None if timeout_s is None else time.monotonic() - (time.perf_counter() - started_s) + timeout_s
            outputs = await model.infer(prepared, deadline, request)
        except BaseException as exc:
            # observed already: its batch answered it, then its client went away; the answer stands
            if not request.observed:
                self._notify(Outcome(request, model, prepared, None, exc, time.perf_counter() - started_s,
                                     wall_start_s))
            raise
        finally:
            inflight[key] -= 1
        if not request.observed:  # a model built without the data plane's batch hook
            self._notify(Outcome(request, model, prepared, outputs, None, time.perf_counter() - started_s,
                                 wall_start_s))
        tensors = [_tensor(name, values, model) for name, values in outputs.items()]
        return InferenceResponse(model.name, model.version, tensors, id=request.id)

    def refused(self, request: InferenceRequest, error: Exception, started_s: float, wall_start_s: float) -> None:
        """A transport refused the request before it reached :meth:`infer` (e.g. a bad body)."""
        self._notify(Outcome(request, None, None, None, error, time.perf_counter() - started_s, wall_start_s))

    def _notify(self, outcome: Outcome) -> None:
        for obs in self.observers:
            try:
                obs.observe(outcome)
            except Exception:  # noqa: BLE001 - an observer must never fail a request
                log.exception("observer %r failed", obs)

    def observe_batch(self, model: ServedModel, requests: list[InferenceRequest], payloads: list[Prepared],
                      results: list[Outputs], whole: SplitOutputs | None) -> None:
        """The batcher's report of the requests one batch answered, before any of them
        resumes: they are observed here, together, and not again one by one."""
        now_s = time.perf_counter()
        for request in requests:
            request.observed = True
        if whole is not None:
            inputs, outputs = whole.inputs, whole.outputs
        else:  # the batch was split (a bad item) or some callers left: gather the answered ones
            inputs = model.pipeline.inputs(payloads)
            outputs = {k: concat_rows([r[k] for r in results]) for k in results[0]}
        outcome = BatchOutcome(model, requests, [now_s - r.arrived_s for r in requests], [p.rows for p in payloads],
                               inputs, outputs)
        for obs in self.observers:
            try:
                obs.observe_batch(outcome)
            except Exception:  # noqa: BLE001 - an observer must never fail a request
                log.exception("observer %r failed", obs)

    async def close(self) -> None:
        self.ready = False
        for versions in self.models.values():
            for model in versions.values():
                await model.close()


def _check_requested_outputs(request: InferenceRequest, model: ServedModel) -> None:
    names = {o.name for o in model.schema.outputs}
    for i, out in enumerate(request.outputs or ()):
        if out.name not in names:
            raise InvalidInput(f"outputs[{i}].name: model has no output {out.name!r} (outputs: {sorted(names)})")


def _tensor(name: str, values, model: ServedModel) -> Tensor:
    spec = model.schema.output(name)
    datatype = spec.datatype if spec is not None else "FP32"
    return Tensor(name, datatype, tuple(values.shape), values)
