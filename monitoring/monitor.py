"""One model's drift monitor. Each :meth:`ModelMonitor.tick`:

1. reads the prediction-log segments it has not counted (``monitoring.ingest``),
   only the columns the versions need, into per-version windows (with the join keys
   of their rows once the model has feedback, see ``monitoring.live``);
2. joins new feedback labels to their predictions (``monitoring.live``);
3. scores every window that is ready (``monitoring.drift``), records it, updates the
   gauges, steps the alerts (``monitoring.alerts``) and the retraining policy;
4. recomputes the live metrics of earlier windows that received late labels;
5. follows submitted training jobs to their outcome;
6. commits fully scored segments and saves its state atomically.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from contracts import predlog
from contracts.clock import Clock, iso_s, utc_at, wall_clock_s
from monitoring import alerts as al
from monitoring import gauges, notify
from monitoring import policy as pol
from monitoring.config import MonitoringConfig
from monitoring.cursor import Cursor
from monitoring.drift import WindowResult, evaluate
from monitoring.ingest import Contexts, KeyStub, read_keys, read_segment
from monitoring.labels import live_metrics
from monitoring.live import LiveQuality
from monitoring.retrain import Roots
from monitoring.state import StateStore
from monitoring.trigger import Trigger
from monitoring.windows import VersionWindows, WindowSpec

log = logging.getLogger("mlgate.monitoring")


def _segment_id(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".parquet")


@dataclass
class TickResult:
    windows: list[WindowResult] = field(default_factory=list)
    segments: int = 0
    rows: int = 0
    labels: int = 0
    transitions: list[dict] = field(default_factory=list)
    triggers: list[dict] = field(default_factory=list)


class ModelMonitor:
    def __init__(self, model: str, cfg: MonitoringConfig, roots: Roots, *, recorder=None, job_client=None,
                 training: dict | None = None, clock: Clock = wall_clock_s) -> None:
        """``job_client()``: a Ray ``JobSubmissionClient`` (asked for at each use); ``training``:
        the ``training`` config section retraining jobs run with; ``clock``: what time it is at
        each tick (windows close, horizons, retention, alert hysteresis and cooldowns follow it)."""
        self.model, self.cfg, self.roots = model, cfg, roots
        self.clock = clock
        self.spec = WindowSpec.from_config(cfg.window)
        self.contexts = Contexts(roots.registry_root, model, cfg.drift.exclude, cfg.drift.outputs)
        self.store = StateStore(cfg.state_root, model)
        self.live = LiveQuality(model, roots.log_root, self.store, cfg.live.horizon_s)
        self.rec = recorder if recorder is not None else gauges.recorder()
        self._load(self.store.load(), clock())
        for path in self.store.quarantined:
            log.warning("%s: started from the previous state; the unreadable one is %s", model, path)
            self.rec.inc(predlog.QUARANTINED_METRIC, (model, "state"))
        self.trigger = Trigger(model, cfg, roots, policy=self.policy, store=self.store, recorder=self.rec,
                               registry=self.contexts.registry, labelled_rows=self.live.all_rows, clock=clock,
                               job_client=job_client, training=training)

    # -- state -----------------------------------------------------------------------
    def _load(self, state: dict | None, now_s: float) -> None:
        state = state or {}
        self.start_us = state.get("start_us", int((now_s - self.cfg.backfill_s) * 1e6))
        self.cursor = Cursor.from_dict(state.get("cursor", {}))
        self.alerts = al.AlertBook.from_dict(self.cfg, state.get("alerts", {}))
        self.policy = pol.PolicyState.from_dict(state.get("policy"))
        self.recent: dict[str, dict] = state.get("recent", {})
        self._live_latest: dict[str, int] = {}
        same_spec = state.get("spec") == list(self.spec.__dict__.values())
        if state and not same_spec:
            log.warning("%s: window settings changed; windows restart from the pending segments", self.model)
        self.windows: dict[str, VersionWindows] = {}
        for version, pos in (state.get("versions", {}) if same_spec else {}).items():
            ctx = self.contexts.get(version)
            restart = self.cursor.restart_row(version)
            if ctx is not None:
                self.windows[version] = VersionWindows(ctx, self.spec, pos["emitted_through"],
                                                       pos["next_row"] if restart is None else restart)
        self._replay = [m.segment for m in self.cursor.pending]
        self.live.restore(now_s, state.get("live"))

    def save(self, now_s: float) -> None:
        self.store.save({
            "format": 1, "model": self.model, "saved_at": iso_s(now_s), "start_us": self.start_us,
            "spec": list(self.spec.__dict__.values()), "cursor": self.cursor.to_dict(),
            "versions": {v: {"emitted_through": w.emitted_through, "next_row": w.next_row}
                         for v, w in self.windows.items()},
            "alerts": self.alerts.to_dict(), "policy": self.policy.to_dict(), "recent": self.recent,
            "live": self.live.to_dict()})

    # -- one evaluation ----------------------------------------------------------------
    def tick(self) -> TickResult:
        now_s = self.clock()
        out = TickResult()
        self.contexts.refresh()
        # feedback lands in the partition of the day it is received: recent partitions suffice
        recent_s = now_s - self.cfg.cursor_retention_days * 86400
        self._read(now_s, out, self._keys(recent_s))
        changed = self.live.ingest(self.cursor, now_s, recent_s) if self.cfg.live.enabled else set()
        if self.live.quarantined:
            self.rec.inc(predlog.QUARANTINED_METRIC, (self.model, "feedback"), self.live.quarantined)
            self.live.quarantined = 0
        out.labels = self.live.last_joined
        if out.labels:
            self.rec.inc("mlgate_live_labels_total", (self.model,), out.labels)
        self._emit(now_s, out)
        self._late_labels(changed, {r.window_id for r in out.windows}, now_s, out)
        if self.cfg.alerts.webhook_url:  # firing alerts not delivered for a repeat interval: again
            self._notify(self.alerts.due(now_s, self.cfg.alerts.repeat_interval_s, iso_s(now_s)), now_s, out,
                         repeat=True)
        out.triggers += self.trigger.poll(now_s)
        self.cursor.commit_released({v: w.released_through for v, w in self.windows.items()})
        oldest = utc_at(now_s).date() - dt.timedelta(
            days=self.cfg.cursor_retention_days)
        self.cursor.prune(oldest)
        self.live.prune(now_s)
        horizon_us = (now_s - self.cfg.live.horizon_s) * 1e6
        self.recent = {k: v for k, v in self.recent.items() if v["end_us"] >= horizon_us}
        self.save(now_s)
        return out

    def _keys(self, recent_s: float) -> bool:
        """Whether to read join keys: once the model has feedback (then the segments read
        before get theirs now)."""
        live = self.live
        if not self.cfg.live.enabled:
            return False
        live.keyed = live.keyed or live.has_feedback(recent_s)
        while live.keyed and live.stubs:
            stub = live.stubs[0]
            try:
                keys = read_keys(self.roots.log_root, stub, self.contexts, self.start_us)
            except OSError as e:  # the segment is gone: its labels stay orphans
                log.warning("%s: join keys of %s not read: %s", self.model, stub.path, e)
                keys = []
            live.add_keys(dt.date.fromisoformat(stub.day), _segment_id(stub.path), keys)
            live.stubs.pop(0)
        return live.keyed

    def _read(self, now_s: float, out: TickResult, keys: bool) -> None:
        since = max(self.start_us / 1e6, now_s - self.cfg.cursor_retention_days * 86400)
        listed = predlog.list_segments(self.roots.log_root, self.model, utc_at(since))
        replay, self._replay = self._replay, []
        fresh = self.cursor.new(listed)[: self.cfg.max_segments_per_tick]
        for seg, replayed in [(s, True) for s in replay] + [(s, False) for s in fresh]:
            try:
                r = read_segment(self.roots.log_root, seg, self.contexts, self.windows, self.spec, self.start_us,
                                 keys=keys and not replayed)
            except predlog.UNREADABLE as exc:  # torn or truncated: moved aside, never fatal
                self._quarantine(seg, exc)
                continue
            if r.mark.max_bucket:
                self.cursor.hold(r.mark)
            else:
                self.cursor.commit(seg)
            if replayed:
                continue  # counted and keyed (or stubbed) before the restart
            if keys:
                self.live.add_keys(seg.day, _segment_id(seg.path), r.keys)
            elif self.cfg.live.enabled and r.mark.first_row:
                self.live.stubs.append(KeyStub.of(r.mark, self.spec))
            out.segments += 1
            out.rows += r.rows
            self.rec.inc("mlgate_drift_segments_total", (self.model,))
            self.rec.inc("mlgate_drift_rows_total", (self.model,), r.rows)
            for reason, n in r.skipped.items():
                self.rec.inc("mlgate_drift_rows_skipped_total", (self.model, reason), n)

    def _quarantine(self, seg: predlog.Segment, exc: Exception) -> None:
        predlog.quarantine(self.roots.log_root, seg.path, exc, f"monitor of {self.model}")
        self.cursor.commit(seg)  # never read again
        self.rec.inc(predlog.QUARANTINED_METRIC, (self.model, "segment"))

    def _emit(self, now_s: float, out: TickResult) -> None:
        for version, vw in self.windows.items():
            for w in vw.emit(int(now_s * 1e6)):
                result = evaluate(w, vw.ctx, self.cfg.drift, self.cfg.window.min_rows, now_s)
                result.live = live_metrics(self.live.window_rows(version, w.end_index, self.spec.k),
                                           vw.ctx.schema, self.cfg.live.min_labelled_rows)
                self.recent[w.window_id] = {"version": version, "end_index": w.end_index,
                                            "start_us": w.start_us, "end_us": w.end_us}
                out.windows.append(result)
        self.store.append("windows", [r.to_dict() for r in out.windows])
        for result in out.windows:
            gauges.record_window(self.rec, result)
            obs = al.observations(result, self.cfg)
            self._live(result.version, result.window_id, result.end_us, result.live, now_s, out, obs)
            reason = pol.on_window(self.policy, result, self.cfg) or pol.on_estimated(result, self.cfg)
            if reason:
                out.triggers += self.trigger.fire(reason, result.version, now_s)

    def _late_labels(self, changed: set, emitted_now: set[str], now_s: float, out: TickResult) -> None:
        """Live metrics of earlier windows whose predictions just got labels."""
        ids = {f"{v}:{self.spec.by}:{e}" for v, b in changed for e in range(b, b + self.spec.k)}
        records = []
        for wid in sorted(ids - emitted_now, key=lambda i: (i.split(":")[0], int(i.rsplit(":", 1)[1]))):
            info = self.recent.get(wid)
            ctx = self.contexts.get(info["version"]) if info else None
            if ctx is None:
                continue
            live = live_metrics(self.live.window_rows(info["version"], info["end_index"], self.spec.k),
                                ctx.schema, self.cfg.live.min_labelled_rows)
            records.append({"window_id": wid, **info, "updated_at": now_s, **live})
            self._live(info["version"], wid, info["end_us"], live, now_s, out, [])
        self.store.append("live", records)

    def _live(self, version: str, window_id: str, end_us: int, live: dict, now_s: float, out: TickResult,
              obs: list) -> None:
        """Gauges, alerts and the policy for one window's (new) live metrics and drift observations."""
        enough = live.get("labelled_rows", 0) >= self.cfg.live.min_labelled_rows
        end_index = int(window_id.rsplit(":", 1)[1])
        if enough and end_index >= self._live_latest.get(version, end_index):
            self._live_latest[version] = end_index
            gauges.record_live(self.rec, self.model, version, live)
        if enough:
            window = {"window_end": iso_s(end_us / 1e6)}
            obs = obs + al.live_observations(self.model, version, live, self.cfg, window)
        self._notify(self.alerts.observe(obs, iso_s(now_s), window_id), now_s, out)
        reason = pol.on_live(version, live, self.cfg) if enough else None
        if reason:
            out.triggers += self.trigger.fire(reason, version, now_s)

    def _notify(self, transitions: list, now_s: float, out: TickResult, repeat: bool = False) -> None:
        """Deliver ``transitions`` (a repeat of firing alerts is counted, not logged again)."""
        if not transitions:
            return
        delivered, error, _ = notify.deliver(transitions, self.cfg.alerts, now_s)
        for t in transitions:
            state = self.alerts.states.get(t.alert.key)
            if delivered and state is not None and t.status == "firing":
                state.sent_at_s = now_s
        if not repeat:
            entries = notify.log_entries(transitions, delivered, error)
            self.store.append("alerts", entries)
            out.transitions += entries
        for t in transitions:
            self.rec.inc("mlgate_drift_alert_notifications_total", (self.model, t.status, str(delivered).lower()))
        firing: dict[tuple[str, str], int] = {}
        for s in self.alerts.states.values():
            key = (s.labels["version"], s.labels["alertname"])
            firing[key] = firing.get(key, 0) + (s.status == "firing")
        gauges.record_alerts(self.rec, self.model, firing)
