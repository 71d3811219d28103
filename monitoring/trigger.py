"""Firing the retraining policy: plan the data, submit the job, record everything.

``triggers.jsonl`` holds one ``triggered`` record per trigger with its reason, then
``submitted`` (job id, run id, entry point, data) or ``failed`` (why), and later
``finished`` (the job's final status and the training run's result: the registered
candidate version and its gate decision). ``mlgate monitor history`` shows them.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from monitoring import policy as pol
from monitoring import retrain
from registry.clock import iso_s, utc_at

if TYPE_CHECKING:
    from monitoring.monitor import ModelMonitor

log = logging.getLogger("mlgate.monitoring")


class Trigger:
    def __init__(self, monitor: ModelMonitor, job_client=None, training: dict | None = None) -> None:
        """``job_client()``: a Ray ``JobSubmissionClient`` (or one with its interface); ``training``:
        the resolved ``training`` config section the jobs run with."""
        self.m = monitor
        self._job_client_factory = job_client
        self._client = None
        self.training = {**(training or {}), **monitor.cfg.retrain.training_overrides}

    def client(self):
        if self._client is None:
            if self._job_client_factory is not None:
                self._client = self._job_client_factory()
            elif self.m.cfg.retrain.job_address:
                self._client = retrain.job_client(self.m.cfg.retrain.job_address, None)
            else:
                raise RuntimeError("monitoring.retrain.job_address is not set")
        return self._client

    def fire(self, reason: str, version: str, now_s: float) -> list[dict]:
        """Submit a training job unless the policy blocks it; returns the records written."""
        m = self.m
        why_not = pol.blocked(m.policy, now_s, m.cfg)
        if why_not:
            log.info("%s: retraining not triggered (%s): %s", m.model, reason, why_not)
            return []
        trigger_id = utc_at(now_s).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        base = {"trigger_id": trigger_id, "model": m.model, "version": version, "at": iso_s(now_s)}
        records = [{**base, "event": "triggered", "reason": reason}]
        m.policy.last_trigger_at = now_s
        m.rec.inc("mlgate_retrain_triggers_total", (m.model, reason.split(" ", 1)[0]))
        try:
            plan = self._plan(trigger_id, version)
            job_id, command = retrain.submit(self.client(), retrain.job_spec(plan, m.roots, self.training), m.clock)
        except Exception as exc:  # noqa: BLE001 - recorded in the history, the monitor goes on
            log.exception("%s: retraining trigger %s failed", m.model, trigger_id)
            records.append({**base, "event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        else:
            records.append({**base, "event": "submitted", "job_id": job_id, "entrypoint": command,
                            **plan.to_dict()})
            m.policy.active.append({"trigger_id": trigger_id, "job_id": job_id, "run_id": plan.run_id})
        m.store.append("triggers", records)
        return records

    def _plan(self, trigger_id: str, version: str) -> retrain.TrainingPlan:
        m = self.m
        mv = m.contexts.registry.get(m.model, int(version))
        name, data_version = retrain.base_data(mv, m.cfg.retrain.data)
        from training.datastore import DataStore

        schema = DataStore(m.roots.data_root).get(name, data_version).schema  # NotFound: no such data
        live_rows = 0
        rows = m.live.all_rows() if m.cfg.retrain.include_live_labels else None
        if rows is not None and rows.num_rows and m.cfg.retrain.max_live_rows:
            rows = rows.slice(max(0, rows.num_rows - m.cfg.retrain.max_live_rows))
            live = retrain.live_slice(m.roots.log_root, m.model, rows, schema)
            if live.num_rows:
                work = m.store.path / "retrain" / trigger_id
                data_version = retrain.with_live_rows(m.roots.data_root, name, data_version, live, work, m.clock)
                live_rows = live.num_rows
        return retrain.TrainingPlan(trigger_id=trigger_id, model=m.model, run_id=f"{m.model}-retrain-{trigger_id}",
                                    data_name=name, data_version=data_version, live_rows=live_rows)

    def poll(self, now_s: float) -> list[dict]:
        """Record the outcome of jobs that finished since the last tick."""
        m = self.m
        if not m.policy.active:
            return []
        still, records = [], []
        for job in m.policy.active:
            try:
                status, message = retrain.job_status(self.client(), job["job_id"])
            except Exception as exc:  # noqa: BLE001 - the dashboard may be briefly away
                log.warning("%s: cannot read job %s: %s", m.model, job["job_id"], exc)
                still.append(job)
                continue
            if status not in retrain.TERMINAL:
                still.append(job)
                continue
            records.append({"trigger_id": job["trigger_id"], "model": m.model, "at": iso_s(now_s),
                            "event": "finished", "job_id": job["job_id"], "status": status, "message": message,
                            "result": retrain.run_result(m.roots.runs_root, job["run_id"])})
        m.policy.active = still
        m.store.append("triggers", records)
        return records

