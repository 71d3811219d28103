"""Firing the retraining policy: plan the data, submit the job, record everything.

``triggers.jsonl`` holds one ``triggered`` record per trigger with its reason, then
``submitted`` (job id, run id, entry point, data) or ``failed`` (why), and later
``finished`` (the job's final status and the training run's result: the registered
candidate version and its gate decision), then, with ``retrain.rollout`` set and the gate
passed, ``rollout`` (the rollout started for the rollout controller) or
``rollout_refused`` (why not). ``mlgate monitor history`` shows them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

import pyarrow as pa

from contracts.clock import Clock, iso_s, utc_at
from contracts.errors import MlgateError
from contracts.prometheus import MetricsRecorder
from monitoring import policy as pol
from monitoring import retrain
from monitoring.config import MonitoringConfig
from monitoring.state import StateStore
from registry import rollouts
from registry.store import Registry

log = logging.getLogger("mlgate.monitoring")


class Trigger:
    def __init__(self, model: str, cfg: MonitoringConfig, roots: retrain.Roots, *, policy: pol.PolicyState,
                 store: StateStore, recorder: MetricsRecorder, registry: Registry,
                 labelled_rows: Callable[[], pa.Table | None], clock: Clock, job_client=None,
                 training: dict | None = None) -> None:
        """What the trigger uses and nothing more: the model's ``policy`` state (it updates the
        last trigger and the active jobs), the ``store`` its records go to, the ``registry``
        holding the versions, ``labelled_rows()`` (the live labels joined so far) and the
        ``clock``. ``job_client()``: a Ray ``JobSubmissionClient`` (or one with its interface);
        ``training``: the resolved ``training`` config section the jobs run with."""
        self.model, self.cfg, self.roots = model, cfg, roots
        self.policy, self.store, self.rec, self.registry = policy, store, recorder, registry
        self.labelled_rows, self.clock = labelled_rows, clock
        self._job_client_factory = job_client
        self._client = None
        self.training = {**(training or {}), **cfg.retrain.training_overrides}

    def client(self):
        """``job_client()`` is asked on every use (it may have a rotated token to send)."""
        if self._job_client_factory is not None:
            return self._job_client_factory()
        if self._client is None:
            if self.cfg.retrain.job_address:
                self._client = retrain.job_client(self.cfg.retrain.job_address, None)
            else:
                raise RuntimeError("monitoring.retrain.job_address is not set")
        return self._client

    def fire(self, reason: str, version: str, now_s: float) -> list[dict]:
        """Submit a training job unless the policy blocks it; returns the records written."""
        why_not = pol.blocked(self.policy, now_s, self.cfg)
        if why_not:
            log.info("%s: retraining not triggered (%s): %s", self.model, reason, why_not)
            return []
        trigger_id = utc_at(now_s).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        base = {"trigger_id": trigger_id, "model": self.model, "version": version, "at": iso_s(now_s)}
        records = [{**base, "event": "triggered", "reason": reason}]
        self.policy.last_trigger_at = now_s
        self.rec.inc("mlgate_retrain_triggers_total", (self.model, reason.split(" ", 1)[0]))
        try:
            plan = self._plan(trigger_id, version)
            spec = retrain.job_spec(plan, self.roots, self.training)
            job_id, command = retrain.submit(self.client(), spec, self.clock)
        except Exception as exc:  # noqa: BLE001 - recorded in the history, the monitor goes on
            log.exception("%s: retraining trigger %s failed", self.model, trigger_id)
            records.append({**base, "event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        else:
            records.append({**base, "event": "submitted", "job_id": job_id, "entrypoint": command,
                            **plan.to_dict()})
            self.policy.active.append({"trigger_id": trigger_id, "job_id": job_id, "run_id": plan.run_id})
        self.store.append("triggers", records)
        return records

    def _plan(self, trigger_id: str, version: str) -> retrain.TrainingPlan:
        retrain_cfg, roots = self.cfg.retrain, self.roots
        mv = self.registry.get(self.model, int(version))
        name, data_version = retrain.base_data(mv, retrain_cfg.data)
        schema = retrain.dataset_schema(roots.data_root, name, data_version)  # NotFound: no such data
        live_rows = 0
        rows = self.labelled_rows() if retrain_cfg.include_live_labels else None
        if rows is not None and rows.num_rows and retrain_cfg.max_live_rows:
            rows = rows.slice(max(0, rows.num_rows - retrain_cfg.max_live_rows))
            live = retrain.live_slice(roots.log_root, self.model, rows, schema)
            if live.num_rows:
                work = self.store.path / "retrain" / trigger_id
                data_version = retrain.with_live_rows(roots.data_root, name, data_version, live, work, self.clock)
                live_rows = live.num_rows
        return retrain.TrainingPlan(trigger_id=trigger_id, model=self.model,
                                    run_id=f"{self.model}-retrain-{trigger_id}", data_name=name,
                                    data_version=data_version, live_rows=live_rows)

    def _roll_out(self, trigger_id: str, version: int, now_s: float) -> dict:
        """Start the rollout of a retrained version that passed its gate (``retrain.rollout``);
        the record says which, or why not (another rollout in progress, no production version)."""
        policy = self.cfg.retrain.rollout
        base = {"trigger_id": trigger_id, "model": self.model, "at": iso_s(now_s), "version": version}
        try:
            spec = rollouts.plan(self.registry, self.model, version, steps_pct=policy.steps, step_s=policy.step_s,
                                 shadow_first_s=policy.shadow_first_s, sticky_key=policy.sticky_key,
                                 checks=policy.checks, reason=f"retraining trigger {trigger_id}")
            rollouts.RolloutBook(self.registry).start(spec, actor=f"retrain:{trigger_id}")
        except MlgateError as exc:
            log.warning("%s: version %s passed its gate but its rollout did not start: %s", self.model, version, exc)
            return {**base, "event": "rollout_refused", "error": str(exc)}
        log.info("%s: rollout %s of retrained version %s started", self.model, spec.rollout_id, version)
        return {**base, "event": "rollout", "rollout_id": spec.rollout_id}

    def poll(self, now_s: float) -> list[dict]:
        """Record the outcome of jobs that finished since the last tick."""
        if not self.policy.active:
            return []
        still, records = [], []
        for job in self.policy.active:
            try:
                status, message = retrain.job_status(self.client(), job["job_id"])
            except Exception as exc:  # noqa: BLE001 - the dashboard may be briefly away
                log.warning("%s: cannot read job %s: %s", self.model, job["job_id"], exc)
                still.append(job)
                continue
            if status not in retrain.TERMINAL:
                still.append(job)
                continue
            result = retrain.run_result(self.roots.runs_root, job["run_id"])
            records.append({"trigger_id": job["trigger_id"], "model": self.model, "at": iso_s(now_s),
                            "event": "finished", "job_id": job["job_id"], "status": status, "message": message,
                            "result": result})
            if self.cfg.retrain.rollout is not None and result and (result.get("gate") or {}).get("passed"):
                records.append(self._roll_out(job["trigger_id"], int(result["version"]), now_s))
        self.policy.active = still
        self.store.append("triggers", records)
        return records

