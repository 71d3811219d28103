"""The rollout controller as a long-lived service: one detached, named Ray actor.

:class:`RolloutService` runs :meth:`RolloutController.tick` every ``rollout.interval_s`` on a
thread and keeps a short log of what it did. Its state is the registry's rollout journal,
never its own memory, so an actor restarted by Ray (``max_restarts=-1``), or started again
by ``mlgate rollout start``, resumes every rollout where its history left it. It also works
without Ray (``tick()`` directly).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from contracts.clock import Clock, wall_clock_s
from contracts.errors import ConfigError
from contracts.periodic import Periodic
from contracts.prometheus import HUB_NAMESPACE
from control.config import RolloutConfig
from control.rollout.controller import RolloutController, Roots
from monitoring.config import AlertConfig
from monitoring.service import stop_named_actor

log = logging.getLogger("mlgate.rollout")
ACTOR_NAME = "mlgate-rollouts"


def summary_line(record: dict) -> str:
    words = [record["model"], "rollout", record["rollout_id"], record.get("phase"),
             f"{record.get('action') or record.get('event')}:", record.get("reason")]
    return " ".join(w for w in words if w)


class RolloutService:
    def __init__(self, cfg: dict, roots: dict, alerts: dict | None = None, autostart: bool = False,
                 clock: Clock = wall_clock_s) -> None:
        """Plain arguments (Ray keeps an actor's arguments in its GCS: no secret among them)."""
        self.cfg = RolloutConfig.model_validate(cfg)
        self.controller = RolloutController(Roots(**roots), AlertConfig.model_validate(alerts or {}), clock)
        self.lines: deque[tuple[int, str]] = deque(maxlen=1000)
        self.ticks = 0
        self.error: str | None = None
        self._seq = 0
        self._lock = threading.Lock()
        self._loop = Periodic(self.tick, self.cfg.interval_s, "mlgate-rollouts")
        if autostart:
            self.start()

    def tick(self) -> list[dict]:
        with self._lock:
            try:
                records = self.controller.tick()
            except Exception as exc:  # noqa: BLE001 - logged and shown; the next interval tries again
                log.exception("rollout controller tick failed")
                self.error = f"{type(exc).__name__}: {exc}"
                return []
            self.error = None
            self.ticks += 1
            for record in records:
                self._seq += 1
                self.lines.append((self._seq, summary_line(record)))
            return records

    def start(self) -> bool:
        return self._loop.start()

    def stop(self) -> bool:
        return self._loop.stop(timeout_s=120)

    def status(self, after: int = 0) -> dict:
        return {"ticks": self.ticks, "error": self.error, "interval_s": self.cfg.interval_s,
                "lines": [(n, s) for n, s in self.lines if n > after]}


def roots_of(cfg) -> Roots:
    """The controller's roots from an ``MlgateConfig``, local paths made absolute (the actor's
    working directory is not the caller's)."""
    from pathlib import Path

    cfg = cfg.absolute()
    state = cfg.monitoring.state_root
    state = state if "://" in state else str(Path(state).expanduser().resolve())
    return Roots(cfg.registry_root, cfg.log_root, state, cfg.audit_root)


def ensure_actor(cfg: RolloutConfig, roots: Roots, alerts: AlertConfig | None = None):
    """The controller actor on the connected cluster, started when there is none; its handle."""
    import ray

    try:
        return ray.get_actor(ACTOR_NAME, namespace=HUB_NAMESPACE)
    except ValueError:
        pass
    handle = ray.remote(RolloutService).options(
        name=ACTOR_NAME, namespace=HUB_NAMESPACE, lifetime="detached", get_if_exists=True,
        num_cpus=cfg.actor_num_cpus, max_concurrency=4, max_restarts=-1).remote(
        cfg.model_dump(mode="json"), roots.__dict__, (alerts or AlertConfig()).model_dump(mode="json"), True)
    try:
        ray.get(handle.status.remote(), timeout=cfg.start_timeout_s)  # constructed and looping
    except ray.exceptions.GetTimeoutError:
        ray.kill(handle)
        raise ConfigError(f"the rollout controller actor did not start within {cfg.start_timeout_s:g} s "
                          f"(rollout.start_timeout_s): is there {cfg.actor_num_cpus:g} CPU free for it "
                          "(rollout.actor_num_cpus)?") from None
    return handle


def stop_actor() -> bool:
    """Stop and remove the controller actor (rollouts stay where they are); False when none ran."""
    return stop_named_actor(ACTOR_NAME, 150, "rollout controller")
