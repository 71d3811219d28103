"""The data plane: the served model versions, and the one inference use case.

Transports call only this; it knows nothing about HTTP. An inference request is one
:class:`Inference`, from its arrival (its timing starts) through admission (once), its
validation against the model, its batch, to its outcome, which the observers hear
exactly once: the answers a batch computed together (:class:`BatchOutcome`), every other
answer alone (:class:`Outcome`), including requests a transport refused before decoding
finished (:meth:`Inference.refuse`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from contracts.errors import InvalidInput, NotFound, NotReady, PayloadTooLarge
from contracts.prometheus import SHADOW_DROPPED_METRIC, MetricsRecorder
from registry.store import Registry
from registry.traffic import TrafficPolicy
from serving.batching import BatchReport
from serving.config import ServingConfig
from serving.model import ServedModel
from serving.outcomes import UNKNOWN_MODEL, BatchOutcome, Observer, Outcome
from serving.pipeline import Outputs, Prepared, concat_rows
from serving.selection import wanted
from serving.startup import load_model
from serving.traffic import Router
from serving.types import InferenceRequest, InferenceResponse, Tensor

log = logging.getLogger("mlgate.serving")
ObserverFactory = Callable[["DataPlane"], Sequence[Observer]]
SHADOW_ROUTE = "shadow"  # the route of a shadow version's copy of a request


class Inference:
    """One inference request in the data plane: created on arrival, admitted once, run once."""

    __slots__ = ("plane", "started_s", "wall_s", "request", "admitted", "observed")

    def __init__(self, plane: DataPlane, wall_s: float, started_s: float | None = None) -> None:
        """``wall_s``: the wall clock at arrival (the prediction log's ``ts``); ``started_s``:
        ``time.perf_counter()`` at arrival (latency and deadlines run from it)."""
        self.plane = plane
        self.started_s = time.perf_counter() if started_s is None else started_s
        self.wall_s = wall_s
        self.request: InferenceRequest | None = None
        self.admitted = False
        self.observed = False  # its answer was observed with its batch

    def admit(self, name: str, version: str | None, timeout_s: float | None) -> None:
        """Refuse now, before any decoding, what the model's queue rules out: a full queue
        (503), a deadline (``timeout_s`` from arrival, else the model's default) that the
        queued work already makes impossible (504). An unknown model passes (a 404 when run)."""
        if not self.plane.ready:
            raise NotReady("server is shutting down")
        self.admitted = True
        try:
            model = self.plane.model(name, version)
        except NotFound:
            return
        timeout_s = timeout_s if timeout_s is not None else model.cfg.default_timeout_s
        model.batcher.check_admission(1, None if timeout_s is None else self._deadline(timeout_s))

    async def run(self, request: InferenceRequest) -> InferenceResponse:
        """Validate ``request`` against its model, compute it in a batch, answer it."""
        plane = self.plane
        self.request = request
        key = (request.model if request.model in plane.models else UNKNOWN_MODEL, request.route)
        inflight = plane.inflight
        inflight[key] = inflight.get(key, 0) + 1
        model = prepared = None
        try:
            if not self.admitted:
                self.admit(request.model, request.version, request.timeout_s)
            if plane.loader is not None:  # multiplexing: held models by recency, the others loaded on demand
                await plane.ensure(request.model, self._left_s(request.timeout_s))
            model = plane.model(request.model, request.version, request.sticky)
            _check_requested_outputs(request, model)  # an unknown output: 400, no compute
            prepared = model.pipeline.prepare(request.inputs)
            if prepared.rows > model.row_limit:
                raise PayloadTooLarge(f"inputs: {prepared.rows} rows; model {model.name} takes at most "
                                      f"{model.row_limit} per request (max_rows_per_request)")
            timeout_s = request.timeout_s if request.timeout_s is not None else model.cfg.default_timeout_s
            deadline = None if timeout_s is None else self._deadline(timeout_s)
            outputs = await model.batcher.enqueue(prepared, prepared.rows, deadline, self)
        except BaseException as exc:
            # observed already: its batch answered it, then its client went away; the answer stands
            if not self.observed:
                plane.notify(Outcome(request, model, prepared, None, exc, time.perf_counter() - self.started_s,
                                     self.wall_s))
            raise
        finally:
            inflight[key] -= 1
        if not self.observed:  # a model built without the data plane as its listener
            plane.notify(Outcome(request, model, prepared, outputs, None, time.perf_counter() - self.started_s,
                                 self.wall_s))
        if request.version is None and request.model in plane.routers:
            plane.copy_to_shadows(plane.routers[request.model], request, self.wall_s)
        datatypes = model.pipeline.output_datatypes
        tensors = [Tensor(name, datatypes.get(name, "FP32"), values.shape, values) for name, values in outputs.items()]
        return InferenceResponse(model.name, model.version, tensors, id=request.id, schema=model.schema)

    def refuse(self, request: InferenceRequest, error: Exception) -> None:
        """The transport refused the request before it could run (a bad body, admission):
        observed like any other answer."""
        self.plane.notify(Outcome(request, None, None, None, error, time.perf_counter() - self.started_s,
                                  self.wall_s))

    def _left_s(self, timeout_s: float | None) -> float | None:
        return None if timeout_s is None else max(0.0, self._deadline(timeout_s) - time.monotonic())

    def _deadline(self, timeout_s: float) -> float:
        """A ``time.monotonic()`` deadline ``timeout_s`` after arrival (not after decoding)."""
        return time.monotonic() - (time.perf_counter() - self.started_s) + timeout_s


class DataPlane:
    def __init__(self, models: dict[str, dict[int, ServedModel]] | None = None) -> None:
        self.models: dict[str, dict[int, ServedModel]] = models if models is not None else {}
        # the version answering what no canary takes (default: the newest held)
        self.primary: dict[str, int] = {name: max(versions) for name, versions in self.models.items()}
        self.routers: dict[str, Router] = {}  # models with a traffic policy (canaries, shadows) only
        self.recorder: MetricsRecorder | None = None  # counts shadow copies dropped
        self.load_failures: dict[tuple[str, int], str] = {}  # at start: (model, version) -> why it failed
        self._shadows: set[asyncio.Task] = set()  # copies under way (held so they are not collected)
        # multiplexing (serving.max_loaded_models): loads a model not held, within a time; None: all held
        self.loader: Callable[[str, float | None], Awaitable[None]] | None = None
        self.used: dict[str, int] = {}  # model -> tick of its last request (with a loader only)
        self._ticks = itertools.count(1)
        self.observers: tuple[Observer, ...] = ()
        # requests inside Inference.run by (model or UNKNOWN_MODEL, route): counted here only
        self.inflight: dict[tuple[str, str], int] = {}
        self.ready = True

    @classmethod
    def load(cls, registry: Registry, cfg: ServingConfig, observers: ObserverFactory | None = None) -> DataPlane:
        """The versions ``cfg`` serves, each reporting its batches to the plane; then
        ``observers(plane)`` (they may read the plane: its models, its in-flight counts)."""
        plane = cls()
        held = list(wanted(registry, cfg).items())[:cfg.max_loaded_models]  # with multiplexing: the first ones
        for name, selection in held:
            if selection.primary is None:
                raise NotFound(f"model {name!r}: no version matches its version policy")
            load_model(plane, registry, cfg, name, selection)
        plane.observers = tuple(observers(plane)) if observers is not None else ()
        return plane

    def arrive(self, wall_s: float, started_s: float | None = None) -> Inference:
        """An inference request arrived (transports call this first, before decoding)."""
        return Inference(self, wall_s, started_s)

    async def infer(self, request: InferenceRequest, started_s: float, wall_s: float) -> InferenceResponse:
        """The whole use case for a request decoded already."""
        return await self.arrive(wall_s, started_s).run(request)

    def install(self, name: str, versions: dict[int, ServedModel], primary: int,
                policy: TrafficPolicy | None = None) -> None:
        """From now on ``name`` is served by ``versions``: ``primary`` (one of them) answers
        what ``policy``'s canaries leave, and its shadows get their copies. One step on the
        loop: a request sees the old set or the new one, never a mix."""
        if primary not in versions:
            raise ValueError(f"model {name}: primary version {primary} is not among {sorted(versions)}")
        routed = policy is not None and bool(policy.versions())
        self.models[name] = versions
        self.primary[name] = primary
        if routed:
            self.routers[name] = Router(name, primary, policy)
        else:
            self.routers.pop(name, None)

    def remove(self, name: str) -> None:
        """``name`` is no longer served (its versions drain where they are)."""
        self.models.pop(name, None)
        self.used.pop(name, None)
        self.primary.pop(name, None)
        self.routers.pop(name, None)

    def model(self, name: str, version: str | int | None = None, sticky: str | None = None) -> ServedModel:
        """The served version ``version`` of ``name`` (as a client names it, e.g. a URL's
        ``versions/3``, or the number), else the one its traffic policy picks (by ``sticky``,
        the caller's key, when the policy has one), else its primary."""
        versions = self.models.get(name)
        if not versions:
            raise NotFound(f"unknown model {name!r}")
        if version is None:
            router = self.routers.get(name)
            if router is None:
                return versions[self.primary[name]]
            # a canary that is not (yet) loaded: its share goes to the primary
            return versions.get(router.choose(sticky)) or versions[self.primary[name]]
        served = versions.get(version if type(version) is int else _version_number(version))
        if served is None:
            raise NotFound(f"model {name!r} version {version!r} is not served (served: {sorted(versions)})")
        return served

    async def ensure(self, name: str, within_s: float | None) -> None:
        """With multiplexing: ``name`` held when this returns (loaded now if it was not; a
        model the registry lacks stays absent: a 404 when used), its use recorded."""
        if self.loader is None:
            return
        if name not in self.models:
            await self.loader(name, within_s)
        self.touch(name)

    def touch(self, name: str) -> None:
        """``name`` was just used (or loaded): the last to be unloaded to make room."""
        if name in self.models:  # never a name a client made up: the map stays as small as the table
            self.used[name] = next(self._ticks)

    def copy_to_shadows(self, router: Router, request: InferenceRequest, wall_s: float) -> None:
        """Send copies of an answered ``request`` to the shadow versions its router draws:
        each runs as a request of its own (route ``shadow``, the primary's request id), is
        observed (metrics, prediction log) and never returned. A shadow whose queue is full
        gets no copy (counted); nothing a shadow does reaches the primary's caller."""
        versions = self.models.get(request.model, {})
        for version in router.shadow_targets():
            shadow = versions.get(version)
            if shadow is None:
                continue
            if shadow.batcher.queued >= shadow.batcher.max_queue_size:
                if self.recorder is not None:
                    self.recorder.inc(SHADOW_DROPPED_METRIC, (shadow.name, str(version)))
                continue
            copy = replace(request, version=str(version), route=SHADOW_ROUTE, outputs=None)
            task = asyncio.get_running_loop().create_task(self._shadow(copy, wall_s))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)

    async def _shadow(self, request: InferenceRequest, wall_s: float) -> None:
        try:
            await self.arrive(wall_s).run(request)
        except Exception:  # noqa: BLE001 - observed as the shadow's outcome; never the caller's
            pass

    def served_versions(self, name: str) -> frozenset[str]:
        """The versions of ``name`` served, as clients write them."""
        return frozenset(map(str, self.models.get(name, ())))

    def notify(self, outcome: Outcome) -> None:
        for obs in self.observers:
            try:
                obs.observe(outcome)
            except Exception:  # noqa: BLE001 - an observer must never fail a request
                log.exception("observer %r failed", obs)

    def batch_done(self, model: ServedModel, report: BatchReport[Prepared, Outputs]) -> None:
        """A model's report of one batch, before any of its callers resumes: the requests it
        answered are observed here, together, and not again one by one."""
        now_s = time.perf_counter()
        calls: list[Inference] = report.tags
        for call in calls:
            call.observed = True
        if report.whole is not None:
            inputs, outputs = report.whole.inputs, report.whole.outputs
        elif report.results:  # the batch was split (a bad item) or some callers left: gather the answered ones
            inputs = model.pipeline.inputs(report.payloads)
            outputs = {k: concat_rows([r[k] for r in report.results]) for k in report.results[0]}
        else:
            inputs, outputs = {}, {}
        outcome = BatchOutcome(model, report.stats, [c.request for c in calls],
                               [now_s - c.started_s for c in calls], [c.wall_s for c in calls],
                               [p.rows for p in report.payloads], inputs, outputs)
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


def _version_number(text: str) -> int | None:
    """A version as a client writes it (``"3"``), else None (never served)."""
    return int(text) if text.isdecimal() and text.isascii() else None


def _check_requested_outputs(request: InferenceRequest, model: ServedModel) -> None:
    datatypes = model.pipeline.output_datatypes
    for i, out in enumerate(request.outputs or ()):
        if out.name not in datatypes:
            known = ", ".join(repr(name) for name in datatypes)
            raise InvalidInput(f"outputs[{i}].name: model has no output {out.name!r} (outputs: {known})")
