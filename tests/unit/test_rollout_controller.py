"""The rollout controller on a real registry, real prediction-log segments (Parquet, in the
contract's layout), real feedback files and a real webhook on loopback: the steps, the
promotion, the automatic rollback and its alert, pause/resume, a restart mid-step, and the
records each leaves (stage events, traffic history, rollouts.jsonl, the audit trail)."""

from __future__ import annotations

import datetime as dt
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from access.audit import AuditLog
from contracts import feedback as fb
from contracts import predlog
from contracts.errors import Conflict
from control.rollout.controller import ALERT_NAME, RolloutController, Roots
from monitoring.config import AlertConfig
from registry import Registry
from registry.rollouts import RolloutBook, RolloutChecks, plan
from registry.torch_io import register_torch_model
from registry.traffic import TrafficBook, TrafficPolicy
from tests.clock import ManualClock
from tests.models import MLP_SCHEMA, mlp, promote_by_hand
from tests.webhook import Webhook

T0 = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC).timestamp()
CHECKS = RolloutChecks(min_requests=50, min_shadow_rows=50, min_labels=20)


@pytest.fixture
def world(tmp_path):
    clock = ManualClock(T0)
    reg = Registry(str(tmp_path / "registry"), clock)
    for seed in (1, 2):
        register_torch_model(reg, "mlp", mlp(seed), MLP_SCHEMA)
    promote_by_hand(reg, 1)
    reg.record_gate("mlp", 2, {"passed": True, "reasons": []}, dataset={"name": "d", "version": 1}, actor="test")
    hook = Webhook()
    roots = Roots(str(tmp_path / "registry"), str(tmp_path / "logs"), str(tmp_path / "state"), str(tmp_path / "audit"))
    alerts = AlertConfig(webhook_url=hook.url, retries=0)
    yield {"clock": clock, "reg": reg, "roots": roots, "hook": hook, "tmp": tmp_path,
           "controller": RolloutController(roots, alerts, clock), "alerts": alerts}
    hook.close()


_seq = iter(range(1, 10**6))


def log(world, version: int, n: int, *, route: str = "infer", status: int = 200, latency_ms: float = 5.0,
        labels=None, ids=None, probabilities=None) -> list[str]:
    """Publish one segment of ``n`` one-row requests answered by ``version`` just before now."""
    ts = dt.datetime.fromtimestamp(world["clock"]() - 1, dt.UTC)
    seq = next(_seq)
    ids = ids or [f"r{seq}-{i}" for i in range(n)]
    labels = labels if labels is not None else ["a"] * n
    ok = status < 300
    table = pa.table({
        predlog.REQUEST_ID: ids, predlog.ROW_INDEX: pa.array([0] * n, pa.int32()),
        predlog.TIMESTAMP: pa.array([ts] * n, pa.timestamp("us", tz="UTC")), predlog.MODEL: ["mlp"] * n,
        predlog.VERSION: [str(version)] * n, predlog.ROUTE: [route] * n,
        predlog.STATUS: pa.array([status] * n, pa.int16()),
        predlog.LATENCY_MS: pa.array(np.full(n, latency_ms), pa.float32()),
        predlog.ERROR: [None if ok else "boom"] * n, predlog.IDENTITY: pa.array([None] * n, pa.string()),
        "out_label": pa.array(list(labels) if ok else [None] * n, pa.string()),
    })
    if probabilities is not None:
        table = table.append_column("out_probabilities", pa.array([list(map(float, p)) for p in probabilities],
                                                                  pa.list_(pa.float32())))
    part = predlog.partition_dir(world["roots"].log_root, "mlp", ts.date())
    os.makedirs(part, exist_ok=True)
    pq.write_table(table, f"{part}/{predlog.segment_name('test', seq)}")
    return ids


def start(world, **kw):
    spec = plan(world["reg"], "mlp", 2, steps_pct=kw.pop("steps_pct", (10, 50, 100)), step_s=60, checks=CHECKS, **kw)
    RolloutBook(world["reg"]).start(spec, actor="alice")
    return spec


def traffic(world) -> TrafficPolicy:
    return TrafficBook(world["reg"]).current("mlp")


def jsonl(world) -> list[dict]:
    path = world["tmp"] / "state" / "model=mlp" / "rollouts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def healthy_minute(world) -> None:
    world["clock"].advance(60)
    log(world, 1, 200)
    log(world, 2, 100)


def test_healthy_candidate_goes_through_every_step_to_production(world):
    c, reg = world["controller"], world["reg"]
    spec = start(world)
    c.tick()
    assert traffic(world) == TrafficPolicy(canaries={2: 0.1})
    world["clock"].advance(30)
    log(world, 1, 200), log(world, 2, 100)
    (held,) = c.tick()
    assert (held["action"], held["phase"]) == ("hold", "canary:10") and traffic(world).canaries == {2: 0.1}
    healthy_minute(world)
    (advanced,) = c.tick()
    assert advanced["action"] == "advance" and traffic(world).canaries == {2: 0.5}
    assert advanced["evidence"]["candidate"]["requests"] == 200  # the whole step's window, both segments
    healthy_minute(world)
    c.tick()
    assert reg.stages.state("mlp").production == 2 and traffic(world) == TrafficPolicy()
    promotion = reg.stage_history("mlp")[-1]
    assert (promotion.action, promotion.version, promotion.actor) == ("promote", 2, f"rollout:{spec.rollout_id}")
    state = RolloutBook(reg).get("mlp")
    assert state.status == "completed" and [e.kind for e in state.events] == [
        "started", "phase", "phase", "completed"]
    assert [r["event"] for r in jsonl(world)] == ["phase", "evaluation", "evaluation", "phase", "evaluation",
                                                  "completed"]
    assert c.tick() == []  # nothing active
    actions = [(r["action"], r["identity"]["id"]) for r in AuditLog(world["roots"].audit_root).records()]
    assert actions == [("traffic.set", "service:rollout-controller")] * 2 + [
        ("rollout.promote", "service:rollout-controller"), ("traffic.clear", "service:rollout-controller")]
    assert [e.actor for e in TrafficBook(reg).history("mlp")] == ["rollout-controller"] * 3


def test_failing_candidate_is_rolled_back_at_once_archived_and_alerted(world):
    c, reg = world["controller"], world["reg"]
    spec = start(world)
    c.tick()
    world["clock"].advance(5)  # long before the step's 60 s
    log(world, 1, 200), log(world, 2, 80, status=500)
    (failed,) = c.tick()
    assert failed["action"] == "fail" and "error_rate" in failed["reason"]
    assert traffic(world) == TrafficPolicy()
    stages = reg.stages.state("mlp")
    assert stages.production == 1 and stages.stages[2] == "archived"
    reject = reg.stage_history("mlp")[-1]
    assert reject.action == "reject" and "error_rate" in reject.reason and spec.rollout_id in reject.reason
    state = RolloutBook(reg).get("mlp")
    assert state.status == "failed" and "canary:10" in state.reason
    actions = [r["action"] for r in AuditLog(world["roots"].audit_root).records()]
    assert actions == ["traffic.set", "traffic.clear", "rollout.reject"]
    (body,) = world["hook"].bodies
    (alert,) = body["alerts"]
    assert alert["labels"] == {"alertname": ALERT_NAME, "model": "mlp", "version": "2", "severity": "critical"}
    assert alert["annotations"]["rollout_id"] == spec.rollout_id and "error_rate" in alert["annotations"]["reason"]
    assert c.tick() == []


def test_diverging_predictions_fail_the_step(world):
    c = world["controller"]
    start(world)
    c.tick()
    world["clock"].advance(5)
    log(world, 1, 200, labels=["a", "b"] * 100)
    log(world, 2, 100, labels=["c"] * 100)
    (failed,) = c.tick()
    assert failed["action"] == "fail" and failed["reason"].startswith("js_divergence")


def test_live_accuracy_from_feedback_labels_fails_a_worse_candidate(world):
    c = world["controller"]
    start(world)
    c.tick()
    world["clock"].advance(5)
    base_ids, cand_ids = log(world, 1, 100, labels=["a"] * 100), log(world, 2, 100, labels=["b"] * 100)
    ids = base_ids + cand_ids
    now = dt.datetime.fromtimestamp(world["clock"](), dt.UTC)
    fb.FeedbackWriter(world["roots"].log_root).write("mlp", fb.table(ids, [0] * 200, ["a"] * 200, [None] * 200, now))
    (failed,) = c.tick()
    checks = {ch["name"]: ch for ch in failed["checks"]}
    assert checks["accuracy_drop"]["verdict"] == "failed" and checks["accuracy_drop"]["value"] == 1.0


def test_shadow_phase_pairs_copies_with_their_primary_answers(world):
    c = world["controller"]
    start(world, shadow_first_s=60)
    c.tick()
    assert traffic(world) == TrafficPolicy(shadows={2: 1.0})
    world["clock"].advance(60)
    ids = log(world, 1, 100, labels=["a", "b"] * 50)
    log(world, 2, 100, route="shadow", ids=ids, labels=["a", "b"] * 50)
    (passed,) = c.tick()
    assert passed["action"] == "advance" and passed["evidence"]["shadow_agreement"] == 1.0
    assert traffic(world) == TrafficPolicy(canaries={2: 0.1})
    world["clock"].advance(5)
    ids = log(world, 1, 100, labels=["a"] * 100)
    log(world, 2, 100, route="shadow", ids=ids, labels=["a"] * 100)  # a late copy: not the canary's evidence
    (held,) = c.tick()
    assert held["phase"] == "canary:10" and held["evidence"]["candidate"]["requests"] == 0


def test_disagreeing_shadow_fails_before_any_caller_sees_it(world):
    c = world["controller"]
    start(world, shadow_first_s=600)
    c.tick()
    world["clock"].advance(5)
    ids = log(world, 1, 100, labels=["a", "b"] * 50)
    log(world, 2, 100, route="shadow", ids=ids, labels=["b", "a"] * 50)
    (failed,) = c.tick()
    assert failed["action"] == "fail" and "shadow_agreement" in failed["reason"]
    assert traffic(world) == TrafficPolicy()


def test_pause_holds_the_step_resume_opens_a_new_window(world):
    c, reg = world["controller"], world["reg"]
    spec = start(world)
    c.tick()
    book = RolloutBook(reg)
    book.record("mlp", spec.rollout_id, "paused", actor="alice", expect=("running",))
    healthy_minute(world)
    assert c.tick() == [] and traffic(world).canaries == {2: 0.1}
    with pytest.raises(Conflict, match="paused"):
        book.record("mlp", spec.rollout_id, "paused", actor="alice", expect=("running",))
    world["clock"].advance(60)
    book.record("mlp", spec.rollout_id, "resumed", actor="alice", expect=("paused",))
    (held,) = c.tick()  # the minute before the resume is not this window's evidence
    assert held["action"] == "hold" and held["evidence"]["candidate"]["requests"] == 0


def test_a_restarted_controller_resumes_mid_step_from_the_journal(world):
    start(world)
    world["controller"].tick()
    world["clock"].advance(40)
    log(world, 1, 200), log(world, 2, 100)
    again = RolloutController(world["roots"], world["alerts"], world["clock"])  # a new process: nothing in memory
    world["clock"].advance(20)
    (advanced,) = again.tick()
    assert advanced["action"] == "advance" and traffic(world).canaries == {2: 0.5}


def test_plan_refuses_what_cannot_be_rolled_out(world):
    reg = world["reg"]
    register_torch_model(reg, "mlp", mlp(3), MLP_SCHEMA)  # v3: registered by hand, ungated
    with pytest.raises(Conflict, match="ungated"):
        plan(reg, "mlp", 3)
    with pytest.raises(Conflict, match="reason"):
        plan(reg, "mlp", 3, force=True)
    assert plan(reg, "mlp", 3, force=True, reason="hotfix").forced
    with pytest.raises(Conflict, match="production version already"):
        plan(reg, "mlp", 1)
    start(world)
    with pytest.raises(Conflict, match="in progress"):
        start(world)


def test_a_candidate_whose_estimated_accuracy_drops_is_rolled_back_before_any_label(tmp_path):
    """Binary classifiers store a CBPE calibration (registry.references.fit_cbpe): the controller
    estimates each version's accuracy from its own calibrated scores in the window."""
    from registry import ModelSchema
    from registry.references import CBPE_FILE, fit_cbpe

    schema = ModelSchema(kind="tensor", task="classification", inputs=MLP_SCHEMA.inputs,
                         outputs=ModelSchema.classifier_outputs(2), class_labels=("no", "yes"))
    rng = np.random.default_rng(3)
    clock = ManualClock(T0)
    reg = Registry(str(tmp_path / "registry"), clock)
    held_out = rng.random(4000)
    calibrations = {  # production's scores predict its labels; the candidate's scores carry no information
        1: fit_cbpe(schema, np.c_[1 - held_out, held_out], (rng.random(4000) < held_out).astype(int)),
        2: fit_cbpe(schema, np.c_[1 - held_out, held_out], (rng.random(4000) < 0.5).astype(int))}
    for version in (1, 2):
        net = torch.nn.Sequential(torch.nn.Linear(32, 2), torch.nn.Softmax(dim=-1))
        register_torch_model(reg, "mlp", net, schema, extra_files={CBPE_FILE: calibrations[version]})
    promote_by_hand(reg, 1)
    reg.record_gate("mlp", 2, {"passed": True, "reasons": []}, dataset={"name": "d", "version": 1}, actor="test")
    roots = Roots(str(tmp_path / "registry"), str(tmp_path / "logs"), str(tmp_path / "state"), str(tmp_path / "audit"))
    world = {"clock": clock, "roots": roots}
    RolloutBook(reg).start(plan(reg, "mlp", 2, steps_pct=(10, 100), step_s=60, checks=CHECKS), actor="alice")
    controller = RolloutController(roots, AlertConfig(), clock)
    controller.tick()
    clock.advance(5)
    for version, n in ((1, 200), (2, 100)):
        scores = rng.random(n)  # the same scores: only the calibrations differ
        log(world, version, n, labels=np.where(scores > 0.5, "yes", "no").tolist(),
            probabilities=np.c_[1 - scores, scores])
    (failed,) = controller.tick()
    checks = {c["name"]: c for c in failed["checks"]}
    assert failed["action"] == "fail" and checks["estimated_accuracy_drop"]["verdict"] == "failed", failed["reason"]
    assert failed["evidence"]["baseline"]["estimated_accuracy"] > 0.7 > failed["evidence"]["candidate"][
        "estimated_accuracy"]
    assert RolloutBook(reg).get("mlp").status == "failed"
