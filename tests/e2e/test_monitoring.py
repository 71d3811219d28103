"""Drift monitoring as a user runs it: `demo` served on Ray, demo traffic without and then with a
shift, the monitor as its own Ray actor, an Alertmanager-style webhook on 127.0.0.1, feedback
labels through the gateway, and a real training job submitted to a local Ray cluster. Access
control is on: the client's key (``infer:demo feedback:demo``) predicts and labels its own
predictions, a monitoring key (``metrics:read``) scrapes.

The module runs one scenario in order (each test is one step of it); the last steps, which
wait for the training job to finish and run `mlgate monitor run` as a subprocess, are slow.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from contracts import predlog
from tests.conftest import free_port
from tests.polling import until
from tests.webhook import Webhook
from training import demo_data

pytestmark = pytest.mark.e2e
ROWS = 2000  # per phase: one row window each
BATCH = 50
SHIFTED = set(demo_data.SHIFTED_FEATURES)
# the demo's recipe (20,000 rows, 8 epochs); a retrained model on live labels (half of them flipped by
# test 4) may be a little worse than the production version on the same test split: a gate that allows 5%
RETRAINING = {"epochs": 8, "gate": {"metric_tolerances": {"accuracy": 0.05, "roc_auc": 0.05, "log_loss": 0.2}}}
# two different models on the same rows: they agree on most labels, not 95% of them; few requests per step
# (and, as its gate, may estimate up to 5 points less accurate: CBPE, before any label)
ROLLOUT_CHECKS = {"min_requests": 20, "min_shadow_rows": 500, "min_shadow_agreement": 0.7, "latency_slack_ms": 100,
                  "max_accuracy_drop": 0.05}


def http_json(port: int, method: str, path: str, body=None, key: str | None = None) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), json.loads(data) if data.startswith(b"{") else {"text": data}


def send(port: int, key: str, cols: dict[str, np.ndarray]) -> list[tuple[str, list[str]]]:
    """All rows through the plain route with ``key``, BATCH per request: [(request id, predicted labels)]."""
    names = [*demo_data.NUMERIC, *demo_data.CATEGORICAL]
    out = []
    for start in range(0, len(cols["age"]), BATCH):
        rows = [{n: _plain(cols[n][i]) for n in names} for i in range(start, start + BATCH)]
        status, headers, doc = http_json(port, "POST", "/v1/models/demo:predict", {"instances": rows}, key)
        assert status == 200, doc
        out.append((headers["x-request-id"], [p["label"] for p in doc["predictions"]]))
    return out


def _plain(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v if isinstance(v, str) else float(v)


def scrape(port: int, key: str, needle: str) -> str | None:
    """The gateway's /metrics text when it contains ``needle`` (the monitor pushes asynchronously)."""
    status, _, doc = http_json(port, "GET", "/metrics", key=key)
    assert status == 200, doc
    text = doc["text"].decode()
    return text if needle in text else None


def logged_rows(log_root: str) -> int:
    segments = predlog.list_segments(log_root, "demo")
    return predlog.read_segments(log_root, segments, [predlog.REQUEST_ID]).num_rows if segments else 0


@pytest.fixture(scope="module")
def world(ray_session, demo_registry, tmp_path_factory, keys):
    """Serving, a job cluster, the webhook and the monitor actor; torn down in reverse."""
    import ray
    from ray import serve

    from mlgate.raycluster import auth_token
    from monitoring.config import MonitoringConfig
    from monitoring.retrain import Roots
    from monitoring.service import start_actor, stop_actor
    from registry import Registry
    from serving.config import ServingConfig
    from serving.deployment import APP_NAME, deploy, shutdown_hub
    from training.datastore import DataStore
    from training.ingest import ingest
    from training.localcluster import LocalCluster

    d = tmp_path_factory.mktemp("monitoring-e2e")
    registry_root = str(d / "registry")
    shutil.copytree(demo_registry, registry_root)  # the retraining job registers a new version here
    roots = Roots(registry_root, str(d / "logs"), str(d / "data"), str(d / "runs"))
    ingest(DataStore(roots.data_root), "demo:20000", "demo")  # as much as the demo was fitted on
    cluster = LocalCluster(num_cpus=2)
    starting = threading.Thread(target=cluster.start, daemon=True)  # boots while serving deploys
    starting.start()
    client_key = keys.create("monitoring-client", "infer:demo", "feedback:demo")
    metrics_key = keys.create("monitoring-scraper", "metrics:read")
    port = free_port()
    deploy(registry_root, ServingConfig(port=port, replica_num_cpus=0.5, prediction_log={"flush_interval_s": 0.3},
                                        metrics={"push_interval_s": 0.2}, auth=keys.auth), log_root=roots.log_root)
    webhook = Webhook()
    starting.join(300)
    assert cluster.process is not None and cluster.process.poll() is None, cluster.log_tail()
    cfg = MonitoringConfig(
        state_root=str(d / "state"), interval_s=3600, backfill_s=3600, actor_num_cpus=0.5,
        window={"by": "rows", "size_rows": ROWS}, live={"min_labelled_rows": 100},
        alerts={"webhook_url": webhook.url, "external_url": "http://127.0.0.1/monitor"},
        retrain={"enabled": True, "drift_windows": 1, "cooldown_s": 3600, "data": "demo",
                 "job_address": cluster.dashboard_url, "training_overrides": RETRAINING,
                 "rollout": {"steps": [50, 100], "step_s": 4, "shadow_first_s": 4, "checks": ROLLOUT_CHECKS}})
    # the demo is fitted without a gate: made production by hand, the way a new user starts
    Registry(registry_root).promote("demo", 1, actor="test", force=True, reason="the demo, fitted without a gate")
    until(lambda: http_json(port, "GET", "/v2/health/ready")[0] == 200, 120, "gateway ready")
    state = {"port": port, "roots": roots, "cfg": cfg, "webhook": webhook, "cluster": cluster, "dir": d,
             "client_key": client_key, "metrics_key": metrics_key}
    try:
        state["monitor"] = start_actor(cfg, roots, "demo", {"workers": 1}, auth_token)  # read in the actor
        # the actor's own first evaluation (at start) must not race the traffic of test 1 for its segments
        until(lambda: ray.get(state["monitor"].status.remote(), timeout=60)["ticks"] >= 1, 120, "monitor's first tick")
        yield state
    finally:
        stop_actor("demo")
        serve.delete(APP_NAME)
        shutdown_hub()
        cluster.stop()
        webhook.close()


def tick(world) -> dict:
    import ray

    return ray.get(world["monitor"].tick.remote(), timeout=300)["demo"]


def test_1_traffic_without_shift_raises_no_alert(world):
    import ray

    cols = demo_data.generate(ROWS, seed=11)
    world["phase1"] = (cols, send(world["port"], world["client_key"], cols))
    until(lambda: logged_rows(world["roots"].log_root) == ROWS, 60, "phase 1 rows published")
    out = tick(world)
    assert [(w["window_id"], w["rows"], w["dataset_drift"], w["prediction_drift"]) for w in out["windows"]] == [
        ("1:rows:0", ROWS, False, False)]
    assert out["alerts"] == [] and world["webhook"].bodies == []
    monitor_pid = ray.get(world["monitor"].__ray_call__.remote(lambda self: os.getpid()))
    assert monitor_pid != os.getpid()  # its own actor process, apart from this driver and the replicas


def test_2_feedback_gives_live_accuracy(world):
    cols, sent = world["phase1"]
    port, key = world["port"], world["client_key"]
    status, _, doc = http_json(port, "POST", "/v2/models/demo/feedback", {"request_id": "no-such-id", "label": "stay"},
                               key)
    assert status == 404 and "no-such-id" in doc["error"]
    truth = [list(cols["churn"][i:i + BATCH]) for i in range(0, ROWS, BATCH)]
    body = {"feedback": [{"request_id": rid, "labels": labels} for (rid, _), labels in zip(sent, truth)]}
    status, _, doc = http_json(port, "POST", "/v2/models/demo/feedback", body, key)
    assert (status, doc["accepted"]) == (200, ROWS)
    predicted = np.concatenate([p for _, p in sent])
    expected = float(np.mean(predicted == np.concatenate(truth)))
    world["accuracy"] = expected
    tick(world)
    live = json.loads((world["dir"] / "state" / "model=demo" / "live.jsonl").read_text().splitlines()[-1])
    assert (live["window_id"], live["labelled_rows"]) == ("1:rows:0", ROWS)
    assert live["accuracy"] == pytest.approx(expected, abs=1e-12) and 0.6 < expected < 0.95
    metrics = until(lambda: scrape(port, world["metrics_key"], "mlgate_live_metric{"), 30, "live gauge scraped")
    assert f'mlgate_live_metric{{model="demo",version="1",metric="accuracy"}} {expected!r}' in metrics


def test_3_shifted_traffic_alerts_naming_the_shifted_features_and_triggers_training(world):
    from mlgate.raycluster import auth_token
    from training.submit import job_client

    cols = demo_data.generate(ROWS, seed=12, shift=1.5)
    send(world["port"], world["client_key"], cols)
    until(lambda: logged_rows(world["roots"].log_root) == 2 * ROWS, 60, "phase 2 rows published")
    out = tick(world)
    (window,) = out["windows"]
    assert window["dataset_drift"] and window["prediction_drift"]
    assert set(window["drifted_features"]) == SHIFTED
    (body,) = world["webhook"].bodies
    assert body["version"] == "4" and body["status"] == "firing"
    names = {(a["labels"]["alertname"], a["labels"].get("feature")) for a in body["alerts"]}
    assert ("MlgateDatasetDrift", None) in names and ("MlgatePredictionDrift", None) in names
    assert {f for a, f in names if a == "MlgateFeatureDrift"} == SHIFTED
    dataset = next(a for a in body["alerts"] if a["labels"]["alertname"] == "MlgateDatasetDrift")
    assert set(dataset["annotations"]["drifted_features"].split(", ")) == SHIFTED
    triggered, submitted = out["triggers"]
    assert triggered["event"] == "triggered" and "dataset drift" in triggered["reason"]
    assert submitted["event"] == "submitted" and submitted["live_rows"] == ROWS and submitted["data_version"] == 2
    client = job_client(world["cluster"].dashboard_url, auth_token())
    assert str(client.get_job_status(submitted["job_id"]).value) in ("PENDING", "RUNNING", "SUCCEEDED")
    world["job"] = submitted
    drifted = 'mlgate_drift_feature_drifted{model="demo",version="1",feature="income",role="input"} 1'
    until(lambda: scrape(world["port"], world["metrics_key"], drifted), 30, "drift gauge scraped")


def test_4_late_labels_move_the_accuracy_of_their_own_window(world):
    cols, sent = world["phase1"]
    flipped = [["stay" if v == "churn" else "churn" for v in cols["churn"][i:i + BATCH]] for i in range(0, ROWS, BATCH)]
    body = {"feedback": [{"request_id": rid, "labels": labels} for (rid, _), labels in zip(sent, flipped)]}
    assert http_json(world["port"], "POST", "/v2/models/demo/feedback", body, world["client_key"])[0] == 200
    tick(world)
    path = world["dir"] / "state" / "model=demo" / "live.jsonl"
    live = [json.loads(line) for line in path.read_text().splitlines()]
    assert live[-1]["window_id"] == "1:rows:0"  # the window of the predictions, not the newest one
    assert live[-1]["accuracy"] == pytest.approx(1.0 - world["accuracy"], abs=1e-12)


def mlgate(world, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    roots, env = world["roots"], {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_")}
    env.update(MLGATE_REGISTRY_ROOT=roots.registry_root, MLGATE_LOG_ROOT=roots.log_root,
               MLGATE_DATA_ROOT=roots.data_root, MLGATE_RUNS_ROOT=roots.runs_root,
               MLGATE_MONITORING__STATE_ROOT=world["cfg"].state_root, MLGATE_MONITORING__WINDOW__SIZE_ROWS=str(ROWS),
               MLGATE_MONITORING__WINDOW__BY="rows")
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "mlgate", *args], env=env, capture_output=True, text=True,
                          timeout=timeout_s)


def test_5_cli_check_report_and_history(world, tmp_path):
    done = mlgate(world, "monitor", "check", "demo", "--since", "1h", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["rows"] == 2 * ROWS and doc["versions"]["1"]["dataset_drift"]  # half the rows shifted
    out = tmp_path / "report.html"
    done = mlgate(world, "monitor", "report", "demo", "--since", "1h", "--output", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert html.count('data-kind="series"') >= 10 and "MlgateDatasetDrift" in html  # alert log included
    done = mlgate(world, "monitor", "history", "demo", "--alerts")
    assert done.returncode == 0, done.stderr
    assert world["job"]["job_id"] in done.stdout and "MlgateFeatureDrift" in done.stdout


@pytest.mark.slow
def test_6_the_training_job_finishes_and_its_outcome_is_recorded(world):
    from mlgate.raycluster import auth_token
    from training.submit import job_client

    client = job_client(world["cluster"].dashboard_url, auth_token())

    def finished() -> str | None:
        status = str(client.get_job_status(world["job"]["job_id"]).value)
        return status if status in ("SUCCEEDED", "FAILED", "STOPPED") else None

    status = until(finished, 900, "training job", interval_s=2)
    assert status == "SUCCEEDED", client.get_job_logs(world["job"]["job_id"])[-4000:]
    triggers = tick(world)["triggers"]
    finished = triggers[0]
    assert finished["event"] == "finished" and finished["result"]["version"] == 2
    assert finished["result"]["gate"]["passed"], finished["result"]["gate"]
    (rollout,) = triggers[1:]
    assert rollout["event"] == "rollout"  # retrain.rollout: the gated version goes on without a person
    world["rollout_id"] = rollout["rollout_id"]
    from registry import Registry

    assert Registry(world["roots"].registry_root).stage_of("demo", 2) == "candidate"  # gated, not yet promoted
    done = mlgate(world, "monitor", "history", "demo")
    assert "SUCCEEDED" in done.stdout and "registered v2 as candidate" in done.stdout


@pytest.mark.slow
def test_6b_the_rollout_controller_takes_the_retrained_version_to_production(world, tmp_path):
    """drift -> retraining job -> gated candidate -> shadow -> canary -> production, on live traffic."""
    from control.config import RolloutConfig
    from control.rollout.controller import Roots
    from control.rollout.service import ensure_actor, stop_actor
    from registry import Registry
    from registry.rollouts import RolloutBook

    roots = world["roots"]
    reg = Registry(roots.registry_root)
    ensure_actor(RolloutConfig(interval_s=1, actor_num_cpus=0),
                 Roots(roots.registry_root, roots.log_root, world["cfg"].state_root, str(tmp_path / "audit")),
                 world["cfg"].alerts)
    stop = threading.Event()

    def traffic() -> None:
        seed = 100
        while not stop.is_set():
            send(world["port"], world["client_key"], demo_data.generate(ROWS // 4, seed=seed))
            seed += 1

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        until(lambda: not RolloutBook(reg).get("demo").active, 300, "the rollout ends", interval_s=1)
    finally:
        stop.set()
        sender.join(120)
        stop_actor()
    state = RolloutBook(reg).get("demo")
    assert (state.spec.rollout_id, state.status) == (world["rollout_id"], "completed"), state.reason
    assert [e.phase or e.kind for e in state.events] == ["started", "shadow", "canary:50", "completed"]
    assert reg.stages.state("demo").production == 2
    promotion = reg.stage_history("demo")[-1]
    assert (promotion.action, promotion.version, promotion.actor) == ("promote", 2, f"rollout:{state.spec.rollout_id}")
    done = mlgate(world, "rollout", "status", "demo")
    assert done.returncode == 0, done.stderr
    for told in ("demo version 2 against 1: completed", "shadow", "canary:50", "advance: shadow: every check passed",
                 "shadow_agreement passed"):
        assert told in done.stdout, done.stdout


@pytest.mark.slow
def test_7_monitor_run_as_a_user_starts_it(world, tmp_path):
    roots = world["roots"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_") and k != "RAY_ADDRESS"}
    env.update(MLGATE_REGISTRY_ROOT=roots.registry_root, MLGATE_LOG_ROOT=roots.log_root,
               MLGATE_MONITORING__STATE_ROOT=str(tmp_path / "state"), MLGATE_MONITORING__BACKFILL_S="3600",
               MLGATE_MONITORING__WINDOW__BY="rows", MLGATE_MONITORING__WINDOW__SIZE_ROWS=str(ROWS),
               MLGATE_RAY__NUM_CPUS="2")
    proc = subprocess.Popen([sys.executable, "-m", "mlgate", "monitor", "run", "--model", "demo", "--every", "2s"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        until(lambda: any("DRIFT [" in line for line in lines), 240, "a drifted window printed")
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(120)
    assert rc == 0, "".join(lines)[-3000:]
    assert any("no drift" in line for line in lines)
