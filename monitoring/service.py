"""The monitor as a long-lived service: a detached, named Ray actor of its own.

:class:`MonitorService` runs every monitored model's :class:`ModelMonitor` once per
``interval_s`` on a thread, pushes the gauges to the metrics hub and keeps a short
log of what each evaluation found. It also works without Ray (``tick()`` directly).
:func:`start_actor` places it on the cluster as ``mlgate-monitor[-MODEL]`` in the
``mlgate`` namespace, apart from the serving replicas; a restarted actor resumes from
its state directory. The cluster token for retraining jobs is never one of the actor's
arguments (Ray keeps those in its GCS, and they would go stale when the token rotates):
the actor is given a function that reads it, called each time a job client is made.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from contracts.clock import Clock, wall_clock_s
from contracts.names import check_name
from contracts.periodic import Periodic
from contracts.prometheus import HUB_NAMESPACE
from monitoring import gauges
from monitoring.config import MonitoringConfig
from monitoring.monitor import ModelMonitor, TickResult
from monitoring.retrain import Roots
from monitoring.retrain import job_client as make_job_client
from registry.store import Registry

log = logging.getLogger("mlgate.monitoring")
ACTOR_PREFIX = "mlgate-monitor"


def actor_name(model: str | None) -> str:
    return f"{ACTOR_PREFIX}-{check_name(model, 'model name')}" if model else ACTOR_PREFIX


def summarise(model: str, out: TickResult) -> list[str]:
    """Human lines for one tick of one model."""
    lines = []
    for r in out.windows:
        verdict = "DRIFT" if r.dataset_drift else ("no drift" if r.judged else "too few rows")
        live = {k: round(v, 4) for k, v in (r.live or {}).items() if k != "labelled_rows"}
        lines.append(f"{model} v{r.version} window {r.start}..{r.end} ({r.rows} rows): {verdict}"
                     + (f" [{', '.join(r.drifted_features)}]" if r.drifted_features else "")
                     + (" prediction drift" if r.prediction_drift else "") + (f" live {live}" if live else ""))
    lines += [f"{model} alert {t['status']}: {t['labels'].get('alertname')} "
              f"{t['labels'].get('feature') or t['labels'].get('metric') or ''}".rstrip() for t in out.transitions]
    lines += [f"{model} retraining {t['event']}: {t.get('reason') or t.get('job_id') or t.get('error') or ''} "
              f"{t.get('status') or ''}".rstrip() for t in out.triggers]
    return lines


TokenSource = Callable[[], str | None]


class MonitorService:
    def __init__(self, cfg: dict, roots: dict, models: list[str] | None = None, training: dict | None = None,
                 job_token: TokenSource | None = None, autostart: bool = False,
                 clock: Clock = wall_clock_s) -> None:
        """``job_token()``: the cluster token, read where it is used (an importable function such
        as ``mlgate.raycluster.auth_token``, never the token); ``autostart``: begin the evaluation
        loop now (an actor restarted by Ray resumes by itself); ``clock``: what time it is for
        every model's monitor."""
        if job_token is not None and not callable(job_token):
            raise TypeError("job_token: a function that reads the cluster token, not the token")
        self.clock = clock
        self.cfg = MonitoringConfig.model_validate(cfg)
        self.roots = Roots(**roots)
        self.models = list(models) if models else (list(self.cfg.models) if self.cfg.models else None)
        self.training = training
        self.job_token = job_token
        self._client: tuple[str | None, object] | None = None  # (the token it sends, the job client)
        self.rec = gauges.recorder()
        # a stable source: a restarted monitor replaces its gauges in the hub instead of adding to them
        self.pusher = gauges.HubPusher(self.rec, "monitor:" + (",".join(self.models) if self.models else "*"))
        self.monitors: dict[str, ModelMonitor] = {}
        self.lines: deque[tuple[int, str]] = deque(maxlen=1000)
        self.ticks = 0
        self._line_seq = 0
        self.errors: dict[str, str] = {}
        self._loop = Periodic(self.tick, self.cfg.interval_s, "mlgate-monitor")
        self._lock = threading.Lock()
        if autostart:
            self.start()

    def job_client(self):
        """The Job Submission client for retraining, with the token read now: the same client
        while the token is unchanged, a new one once it has rotated."""
        if not self.cfg.retrain.job_address:
            raise RuntimeError("monitoring.retrain.job_address is not set")
        token = self.job_token() if self.job_token is not None else None
        if self._client is None or self._client[0] != token:
            insecure = bool((self.training or {}).get("insecure_job_api"))
            self._client = token, make_job_client(self.cfg.retrain.job_address, token, insecure=insecure)
        return self._client[1]

    def monitor(self, model: str) -> ModelMonitor:
        if model not in self.monitors:
            self.monitors[model] = ModelMonitor(model, self.cfg, self.roots, recorder=self.rec,
                                                job_client=self.job_client, training=self.training,
                                                clock=self.clock)
        return self.monitors[model]

    def tick(self) -> dict:
        """Evaluate every model once; returns a plain summary (also kept for ``status``)."""
        with self._lock:
            summary = {}
            for model in self.models or Registry(self.roots.registry_root).list_models():
                try:
                    out = self.monitor(model).tick()
                except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the others
                    log.exception("monitor tick of %s failed", model)
                    self.errors[model] = f"{type(exc).__name__}: {exc}"
                    continue
                self.errors.pop(model, None)
                summary[model] = {"windows": [r.to_dict() for r in out.windows], "segments": out.segments,
                                  "rows": out.rows, "labels": out.labels, "alerts": out.transitions,
                                  "triggers": out.triggers}
                self.ticks += 1
                for line in summarise(model, out):
                    self._line_seq += 1
                    self.lines.append((self._line_seq, line))
            self.pusher.push()
            return summary

    def start(self) -> bool:
        return self._loop.start()

    def stop(self) -> bool:
        return self._loop.stop(timeout_s=max(60.0, self.cfg.interval_s))

    def status(self, after: int = 0) -> dict:
        """Lines logged after sequence number ``after``, and errors per model."""
        return {"ticks": self.ticks, "lines": [(n, s) for n, s in self.lines if n > after], "errors": dict(self.errors),
                "models": sorted(self.monitors)}


def start_actor(cfg: MonitoringConfig, roots: Roots, model: str | None = None, training: dict | None = None,
                job_token: TokenSource | None = None):
    """(Re)start the detached monitor actor on the connected cluster; returns its handle.
    ``job_token``: see :class:`MonitorService` (a function, run in the actor)."""
    import ray

    if job_token is not None and not callable(job_token):
        raise TypeError("job_token: a function that reads the cluster token, not the token")
    stop_actor(model)
    actor_cls = ray.remote(MonitorService)
    handle = actor_cls.options(name=actor_name(model), namespace=HUB_NAMESPACE, lifetime="detached",
                               num_cpus=cfg.actor_num_cpus, max_concurrency=4, max_restarts=-1).remote(
        cfg.model_dump(mode="json"), roots.__dict__, [model] if model else None, training, job_token, True)
    ray.get(handle.status.remote())  # constructed and looping
    return handle


def stop_actor(model: str | None = None) -> bool:
    """Stop and remove the monitor actor; False when there was none."""
    return stop_named_actor(actor_name(model), 120, "monitor actor")


def stop_named_actor(name: str, timeout_s: float, what: str) -> bool:
    """Stop (its ``stop()`` method) and remove a detached service actor of the ``mlgate``
    namespace; False when there was none."""
    import ray

    try:
        handle = ray.get_actor(name, namespace=HUB_NAMESPACE)
    except ValueError:
        return False
    try:
        ray.get(handle.stop.remote(), timeout=timeout_s)
    except Exception:  # noqa: BLE001 - kill it anyway
        log.warning("%s did not stop cleanly; killing it", what)
    ray.kill(handle)
    return True
