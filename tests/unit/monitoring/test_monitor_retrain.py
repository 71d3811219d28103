"""The retraining policy and trigger: streaks, cooldown, one job at a time, data, history."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from contracts import feedback as fb
from monitoring import policy
from monitoring.config import MonitoringConfig
from monitoring.console import history_text
from monitoring.monitor import ModelMonitor
from monitoring.retrain import Roots
from monitoring.state import StateStore
from tests.clock import ManualClock
from tests.unit.monitoring import logdata as ld
from training import demo_data
from training.datastore import DataStore
from training.ingest import ingest

T0 = ld.T0.timestamp()


class FakeJobs:
    """The part of Ray's JobSubmissionClient the trigger uses."""

    def __init__(self) -> None:
        self.submitted: list[dict] = []
        self.status: dict[str, str] = {}

    def submit_job(self, entrypoint: str, submission_id: str, metadata: dict) -> str:
        self.submitted.append({"entrypoint": entrypoint, "submission_id": submission_id})
        self.status[submission_id] = "RUNNING"
        return submission_id

    def get_job_info(self, job_id: str):
        return SimpleNamespace(status=SimpleNamespace(value=self.status[job_id]), message="done")


def test_policy_streak_and_blocks():
    cfg = MonitoringConfig(retrain={"enabled": True, "drift_windows": 2, "cooldown_s": 100})
    state = policy.PolicyState()
    drift = SimpleNamespace(judged=True, dataset_drift=True, version="1", drifted_features=["a"])
    quiet = SimpleNamespace(judged=False, dataset_drift=False, version="1", drifted_features=[])
    assert policy.on_window(state, drift, cfg) is None
    assert policy.on_window(state, quiet, cfg) is None  # no verdict: the streak survives
    assert "2 consecutive" in policy.on_window(state, drift, cfg)
    assert policy.blocked(state, 0.0, cfg) is None
    state.last_trigger_at = 0.0
    assert "cooldown" in policy.blocked(state, 50.0, cfg)
    state.active.append({"job_id": "j"})
    assert "still running" in policy.blocked(state, 500.0, cfg)
    assert "disabled" in policy.blocked(policy.PolicyState(), 0.0, MonitoringConfig())
    live_cfg = MonitoringConfig(live={"thresholds": {"accuracy": 0.8}, "min_labelled_rows": 10})
    assert "accuracy" in policy.on_live("1", {"labelled_rows": 20, "accuracy": 0.7}, live_cfg)
    assert policy.on_live("1", {"labelled_rows": 5, "accuracy": 0.1}, live_cfg) is None


@pytest.fixture()
def setup(tmp_path, registry_root):
    data_root, logs = str(tmp_path / "data"), str(tmp_path / "logs")
    ingest(DataStore(data_root), "demo:2000", "demo")
    jobs = FakeJobs()
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=86400, window={"by": "rows",
                           "size_rows": 300}, live={"min_labelled_rows": 20},
                           retrain={"enabled": True, "drift_windows": 2, "cooldown_s": 3600, "data": "demo",
                                    "training_overrides": {"epochs": 1}})
    roots = Roots(registry_root, logs, data_root, str(tmp_path / "runs"))
    clock = ManualClock(T0)
    return cfg, roots, jobs, clock, ModelMonitor("demo", cfg, roots, job_client=lambda: jobs,
                                                 training={"epochs": 5, "workers": 1}, clock=clock)


def test_drift_streak_submits_one_training_job_with_live_labels(setup):
    cfg, roots, jobs, clock, m = setup
    ld.traffic(roots.log_root, "1", 300, ld.T0_US, 1000, seed=1)
    ld.traffic(roots.log_root, "1", 900, ld.T0_US + 10**6, 1000, seed=2, shift=1.5, first_id=300)
    fb.FeedbackWriter(roots.log_root).write("demo", fb.table([f"r{i}" for i in range(30)], [0] * 30,
                                                             ["churn"] * 30, [None] * 30, clock.utc()))
    clock.to(T0 + 100)
    out = m.tick()
    assert [w.dataset_drift for w in out.windows] == [False, True, True, True]
    assert [t["event"] for t in out.triggers] == ["triggered", "submitted"]  # window 3 is blocked
    (job,) = jobs.submitted
    submitted = out.triggers[1]
    assert submitted["job_id"] == job["submission_id"] and submitted["live_rows"] == 30
    assert submitted["data_name"] == "demo" and submitted["data_version"] == 2
    args = job["entrypoint"].split()
    assert args[:4] == ["python", "-m", "training", "train"]
    assert args[args.index("--data-version") + 1] == "2" and args[args.index("--run-id") + 1] == submitted["run_id"]
    assert json.loads(args[args.index("--config-json") + 1].strip("'"))["epochs"] == 1
    v2 = DataStore(roots.data_root).get("demo", 2)
    assert sum(v2.manifest["rows"][s] for s in ("train", "validation", "test")) == 2000 + 30
    # the job finishes; the run's result is recorded with it
    jobs.status[job["submission_id"]] = "SUCCEEDED"
    run_dir = f"{roots.runs_root}/{submitted['run_id']}"
    import os

    os.makedirs(run_dir)
    with open(f"{run_dir}/result.json", "w") as f:
        json.dump({"model": "demo", "version": 2, "stage": "candidate", "gate": {"passed": True}}, f)
    clock.to(T0 + 200)
    finished = m.tick().triggers
    assert [(t["event"], t["status"], t["result"]["version"]) for t in finished] == [("finished", "SUCCEEDED", 2)]
    ld.traffic(roots.log_root, "1", 600, ld.T0_US + 2 * 10**6, 1000, seed=3, shift=1.5, first_id=1200)
    clock.to(T0 + 300)
    assert m.tick().triggers == []  # cooldown
    text = history_text("demo", StateStore(cfg.state_root, "demo").read("triggers"), [], 10)
    assert "1 trigger(s)" in text and "SUCCEEDED" in text and "registered v2 as candidate, gate passed" in text
    assert "dataset drift in 2 consecutive windows" in text


def test_failed_submission_is_recorded(tmp_path, registry_root):
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=86400, window={"by": "rows",
                           "size_rows": 300}, retrain={"enabled": True, "drift_windows": 1, "data": "missing"})
    roots = Roots(registry_root, str(tmp_path / "logs"), str(tmp_path / "data"), str(tmp_path / "runs"))
    ld.traffic(roots.log_root, "1", 300, ld.T0_US, 1000, seed=2, shift=1.5)
    clock = ManualClock(T0)
    m = ModelMonitor("demo", cfg, roots, job_client=FakeJobs, clock=clock)
    clock.to(T0 + 100)
    out = m.tick()
    assert [t["event"] for t in out.triggers] == ["triggered", "failed"]
    assert "demo" in out.triggers[1]["error"] or "missing" in out.triggers[1]["error"]
    assert "submission failed" in history_text("demo", StateStore(cfg.state_root, "demo").read("triggers"), [], 5)


def test_live_metric_below_threshold_triggers(tmp_path, registry_root):
    jobs = FakeJobs()
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=86400, window={"by": "rows",
                           "size_rows": 300}, live={"min_labelled_rows": 20, "thresholds": {"accuracy": 0.9}},
                           retrain={"enabled": True, "drift_windows": 5, "data": "demo",
                                    "include_live_labels": False})
    roots = Roots(registry_root, str(tmp_path / "logs"), str(tmp_path / "data"), str(tmp_path / "runs"))
    ingest(DataStore(roots.data_root), "demo:500", "demo")
    cols = demo_data.generate(300, seed=4)
    ld.write_log(roots.log_root, ld.log_table(cols, "1", ld.T0_US + np.arange(300)))
    clock = ManualClock(T0)
    m = ModelMonitor("demo", cfg, roots, job_client=lambda: jobs, clock=clock)
    clock.to(T0 + 10)
    m.tick()
    wrong = np.where(ld.toy_model(cols).argmax(1) == 1, "stay", "churn")
    fb.FeedbackWriter(roots.log_root).write("demo", fb.table([f"r{i}" for i in range(40)], [0] * 40,
                                                             list(wrong[:40]), [None] * 40, clock.utc()))
    clock.to(T0 + 20)
    out = m.tick()
    assert [t["event"] for t in out.triggers] == ["triggered", "submitted"]
    assert out.triggers[0]["reason"].startswith("live accuracy 0.0000 worse than 0.9")
    assert any(a["labels"]["alertname"] == "MlgateLiveQuality" for a in out.transitions)


def _finish_job(jobs, roots, submitted: dict, version: int, passed: bool) -> None:
    jobs.status[submitted["job_id"]] = "SUCCEEDED"
    run_dir = Path(roots.runs_root) / submitted["run_id"]
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps({"model": "demo", "version": version, "stage": "candidate",
                                                     "gate": {"passed": passed}}))


@pytest.mark.parametrize("production", [True, False])
def test_a_retrained_version_that_passed_its_gate_starts_a_rollout_by_policy(setup, tmp_path, production):
    from registry import Registry
    from registry.rollouts import RolloutBook

    cfg, roots, jobs, clock, _ = setup
    registry_root = str(tmp_path / "own-registry")
    shutil.copytree(roots.registry_root, registry_root)  # the session's registry stays as it was
    roots = Roots(registry_root, roots.log_root, roots.data_root, roots.runs_root)
    reg = Registry(registry_root)
    if production:
        reg.promote("demo", 1, actor="t", force=True, reason="test data")
    v2 = reg.publish("demo", {f: reg.get("demo", 1).read(f) for f in reg.get("demo", 1).manifest["files"]}).version
    policy = {"steps": [10, 100], "step_s": 120, "shadow_first_s": 60}
    cfg = cfg.model_copy(update={"retrain": cfg.retrain.model_copy(update={
        "rollout": MonitoringConfig.model_validate({"retrain": {"rollout": policy}}).retrain.rollout})})
    m = ModelMonitor("demo", cfg, roots, job_client=lambda: jobs, training={"epochs": 1, "workers": 1}, clock=clock)
    ld.traffic(roots.log_root, "1", 300, ld.T0_US, 1000, seed=1)
    ld.traffic(roots.log_root, "1", 900, ld.T0_US + 10**6, 1000, seed=2, shift=1.5, first_id=300)
    clock.to(T0 + 100)
    submitted = m.tick().triggers[1]
    _finish_job(jobs, roots, submitted, v2, passed=True)
    reg.record_gate("demo", v2, {"passed": True, "reasons": []}, dataset={"name": "demo", "version": 2}, actor="job")
    clock.to(T0 + 200)
    finished, rollout = m.tick().triggers
    assert finished["event"] == "finished"
    if not production:
        assert rollout["event"] == "rollout_refused" and "no production version" in rollout["error"]
        return
    assert rollout["event"] == "rollout"
    state = RolloutBook(reg).get("demo")
    assert (state.spec.rollout_id, state.status, state.spec.candidate, state.spec.baseline) == (
        rollout["rollout_id"], "pending", v2, 1)
    assert (state.spec.steps_pct, state.spec.step_s, state.spec.shadow_first_s) == ((10, 100), 120, 60)
    assert state.events[0].actor == f"retrain:{submitted['trigger_id']}"
