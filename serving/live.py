"""The live model table: a replica follows the registry without a restart.

Every ``serving.reload_interval_s`` the replica reads which versions it should hold
(:func:`serving.selection.wanted`: each model's version policy over the registry's
versions and stages now). A version it lacks is loaded and warmed up on its own thread
(:meth:`ServedModel.load`) while the versions it has keep answering; only then does the
table switch, in one step on the event loop, so a request sees either the old set or the
new one. A version left out drains (its queued and computing requests are answered) and
is unloaded. A version that fails to load or warm up never takes traffic: the versions
it would have replaced keep serving, the failure is logged, counted, shown in the
replica's status, and tried again after ``serving.load_retry_s`` (doubling, at most 16x).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from contracts.clock import Clock, wall_clock_s
from contracts.prometheus import MODEL_LOADS_METRIC, MODEL_STATE_METRIC, MODEL_UNLOADS_METRIC, MetricsRecorder
from registry.store import ModelVersion, Registry
from registry.traffic import TrafficPolicy
from serving.config import ServingConfig
from serving.dataplane import DataPlane
from serving.model import ServedModel
from serving.multiplex import Repository
from serving.selection import Selection, wanted

log = logging.getLogger("mlgate.serving.live")
_MAX_BACKOFF = 16
HEARTBEAT_S = 10.0  # the replica's status is re-published at least this often


def heartbeat_s(cfg: ServingConfig) -> float:
    """How often a replica re-publishes its status at least (never below a reload pass)."""
    return max(cfg.reload_interval_s, HEARTBEAT_S)


@dataclass
class LoadFailure:
    error: str
    at_s: float  # wall clock of the last failed try
    attempts: int
    retry_after_s: float  # monotonic: not tried again before


class LiveModels:
    """Keeps ``plane.models`` equal to what the registry says the replica should serve."""

    def __init__(self, plane: DataPlane, registry: Registry, cfg: ServingConfig, *,
                 recorder: MetricsRecorder | None = None, on_change: Callable[[], None] | None = None,
                 on_state: Callable[[dict], None] | None = None,
                 clock: Clock = wall_clock_s, monotonic: Clock = time.monotonic) -> None:
        """``on_change()``: called on the loop after every switch of the table (the served
        set changed); ``on_state(status)``: after every change of :meth:`status` and at
        least every :attr:`heartbeat_s`. ``clock``: when failures happened (status);
        ``monotonic``: retries and heartbeats."""
        self.plane = plane
        self.registry = registry
        self.cfg = cfg
        self.recorder = recorder
        self.on_change = on_change
        self.on_state = on_state
        self.heartbeat_s = heartbeat_s(cfg)
        self._reported_s = -float("inf")
        self.clock = clock
        self.monotonic = monotonic
        # failures at replica start are retried after the same backoff as later ones
        self.failures: dict[tuple[str, int], LoadFailure] = {
            key: LoadFailure(error, clock(), 1, monotonic() + cfg.load_retry_s)
            for key, error in plane.load_failures.items()}
        self.draining: dict[tuple[str, int], asyncio.Task] = {}
        self._task: asyncio.Task | None = None
        self._warned: set[tuple[str, int, int]] = set()
        self.available: dict[str, Selection] = {}  # what the registry offered at the last pass
        self.held_out: set[str] = set()  # unloaded by an admin: not loaded again until an admin loads it
        self._loading: dict[str, asyncio.Task] = {}  # on-demand loads under way, one per model
        self.repository = Repository(self)
        if cfg.max_loaded_models is not None:
            plane.loader = self.repository.ensure
        self._publish_state()

    def start(self) -> None:
        """Follow the registry from now on, on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.reload_interval_s)
            try:
                if not await self.sync() and self.monotonic() - self._reported_s >= self.heartbeat_s:
                    self._publish_state()
            except Exception:  # noqa: BLE001 - a registry that cannot be read now is read again next time
                log.exception("reading the registry failed; serving what is loaded and trying again in %.1f s",
                              self.cfg.reload_interval_s)

    async def sync(self) -> bool:
        """One pass: load what is wanted and missing, switch, drain and unload what is not.
        True when the table (its versions, primary or traffic policy) changed."""
        target = await asyncio.to_thread(wanted, self.registry, self.cfg)
        self.available = target
        changed = False
        for name, selection in target.items():
            if name in self.held_out or (self.cfg.max_loaded_models is not None and name not in self.plane.models):
                continue  # unloaded by an admin, or multiplexed and not held: loaded on demand
            changed |= await self._sync_model(name, selection)
        for name in [n for n in self.plane.models if n not in target]:
            log.info("model %s is no longer served (gone from the registry or from serving.serve_models)", name)
            self._switch(name, {}, None, None)
            changed = True
        if changed:
            self._publish_state()
        return changed

    async def _sync_model(self, name: str, selection: Selection) -> bool:
        current = self.plane.models.get(name, {})
        ready: dict[int, ServedModel] = {}
        for mv in sorted(selection.versions, key=lambda mv: mv.version != selection.primary):  # primary first
            model = current.get(mv.version) or await self._load(mv)
            if model is not None:
                ready[mv.version] = model
            elif mv.version == selection.primary:
                break  # no switch without it: load nothing more now
        router = self.plane.routers.get(name)
        policy = router.policy if router is not None else TrafficPolicy()
        if (ready.keys() == current.keys() and selection.primary == self.plane.primary.get(name)
                and selection.policy == policy):
            return False
        if selection.primary not in ready:
            if selection.primary is not None and self._warn_once(name, selection.primary):
                log.warning("model %s: version %s (primary) could not be loaded; versions %s keep serving",
                            name, selection.primary, sorted(current))
            elif current:
                log.warning("model %s: no version matches its version policy now; versions %s keep serving",
                            name, sorted(current))
            for model in ready.values():  # loaded for a switch that does not happen
                if model.version not in current:
                    await model.close()
            return False
        self._switch(name, ready, selection.primary, selection.policy)
        return True

    async def _load(self, mv: ModelVersion) -> ServedModel | None:
        key = (mv.name, mv.version)
        failure = self.failures.get(key)
        if failure is not None and self.monotonic() < failure.retry_after_s:
            return None
        try:
            model = await ServedModel.load(mv, self.cfg.for_model(mv.name), self.plane)
        except Exception as exc:  # noqa: BLE001 - whatever breaks a version keeps it out of traffic
            attempts = 1 if failure is None else failure.attempts + 1
            backoff_s = self.cfg.load_retry_s * min(_MAX_BACKOFF, 2 ** (attempts - 1))
            self.failures[key] = LoadFailure(f"{type(exc).__name__}: {exc}", self.clock(), attempts,
                                             self.monotonic() + backoff_s)
            log.exception("model %s version %s failed to load or warm up (try %d); it takes no traffic, next "
                          "try in %.0f s", mv.name, mv.version, attempts, backoff_s)
            self._count(MODEL_LOADS_METRIC, (mv.name, "failed"))
            self._publish_state()
            return None
        self.failures.pop(key, None)
        self._count(MODEL_LOADS_METRIC, (mv.name, "loaded"))
        log.info("model %s version %s loaded and warmed up", mv.name, mv.version)
        return model

    def _warn_once(self, name: str, version: int) -> bool:
        """Whether the failure of ``version`` is news (once per failed try, not every pass)."""
        failure = self.failures.get((name, version))
        stamp = (name, version, failure.attempts if failure is not None else 0)
        if stamp in self._warned:
            return False
        self._warned.add(stamp)
        return True

    def _switch(self, name: str, ready: dict[int, ServedModel], primary: int | None,
                policy: TrafficPolicy | None) -> None:
        """New requests see ``ready`` (routed by ``policy`` around ``primary``) from now on;
        the versions it leaves out drain."""
        current = self.plane.models.get(name, {})
        if ready:
            self.plane.install(name, ready, primary, policy)
        else:
            self.plane.remove(name)
        log.info("model %s now serves versions %s, primary %s%s (was %s)", name, sorted(ready), primary,
                 f", traffic {policy.model_dump(mode='json')}" if policy is not None and policy.versions() else "",
                 sorted(current))
        for version, model in current.items():
            if version not in ready:
                self.draining[(name, version)] = asyncio.get_running_loop().create_task(self._retire(model))
        if self.on_change is not None:
            self.on_change()

    async def _retire(self, model: ServedModel) -> None:
        drained = await model.drain(self.cfg.drain_timeout_s)
        if not drained:
            log.warning("model %s version %s: requests still queued after %.0f s (serving.drain_timeout_s); "
                        "unloading anyway", model.name, model.version, self.cfg.drain_timeout_s)
        await model.close()
        self.draining.pop((model.name, model.version), None)
        self._count(MODEL_UNLOADS_METRIC, (model.name, "true" if drained else "false"))
        log.info("model %s version %s unloaded", model.name, model.version)
        self._publish_state()
        if self.on_change is not None:
            self.on_change()

    def status(self) -> dict[str, dict]:
        """Per model: the versions serving, draining, and the ones that failed to load,
        with their error."""
        names = set(self.plane.models) | {m for m, _ in self.draining} | {m for m, _ in self.failures}
        return {name: {
            "serving": sorted(self.plane.models.get(name, {})),
            "draining": sorted(v for m, v in self.draining if m == name),
            "failed": {str(v): {"error": f.error, "at": f.at_s, "attempts": f.attempts}
                       for (m, v), f in sorted(self.failures.items()) if m == name},
        } for name in sorted(names)}

    def _publish_state(self) -> None:
        status = self.status()
        self._reported_s = self.monotonic()
        if self.on_state is not None:
            self.on_state(status)
        if self.recorder is None:
            return
        values = {}
        for name, state in status.items():
            for kind, versions in (("serving", state["serving"]), ("draining", state["draining"]),
                                   ("failed", state["failed"])):
                values.update({(name, str(v), kind): 1.0 for v in versions})
        self.recorder.replace_gauges(MODEL_STATE_METRIC, values)

    def _count(self, metric: str, labels: tuple[str, ...]) -> None:
        if self.recorder is not None:
            self.recorder.inc(metric, labels)

    async def close(self) -> None:
        """Stop following; wait for the drains under way (the plane closes the rest)."""
        for task in [self._task, *self._loading.values()]:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(*self.draining.values(), return_exceptions=True)
