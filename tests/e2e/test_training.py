"""Training as a user runs it, on a local Ray cluster with the dashboard and token auth on.

One scenario, two real jobs (Ray startup dominates their cost, so the tests share them):

1. ``mlgate data ingest demo:3000``, then ``mlgate train --address ... --workers 2``: the job
   goes through the Job Submission API with the cluster token; after epoch 2's checkpoint
   the CLI gets SIGTERM (as Ctrl-C), stops the job and the run is ``stopped``;
2. a bare ``ray job submit -- python -m training train --run-id ... --resume`` continues the
   run from its checkpoint and registers the version.

The tests then check the stop, the resume, and the registered version's artifact, metrics,
lineage, gate record and reference profile.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from registry import Registry
from registry.references import PROFILE_FILE, load_profile
from training.datastore import DataStore
from training.localcluster import LocalCluster
from training.runs import RunStore
from training.submit import job_client

pytestmark = pytest.mark.e2e
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
EPOCHS = 8  # small batches: the run is still busy when the stop lands after epoch 2
RUN = "e2e-run"


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(num_cpus=4) as c:
        yield c


def _env(roots: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_") and k != "RAY_ADDRESS"}
    env.update({f"MLGATE_{name.upper()}_ROOT": path for name, path in roots.items()})
    env["MLGATE_TRAINING__BATCH_SIZE"] = "16"
    return env


def mlgate(roots, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlgate", *args], env=_env(roots), capture_output=True,
                          text=True, timeout=300)


def _train_until_stopped(roots, cluster) -> tuple[int, str]:
    """`mlgate train`, signalled once epoch 2 is checkpointed; (exit status, output)."""
    proc = subprocess.Popen([sys.executable, "-m", "mlgate", "train", "--data", "churn", "--epochs", str(EPOCHS),
                             "--workers", "2", "--run-id", RUN, "--address", cluster.dashboard_url],
                            env=_env(roots), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if f"epoch 2/{EPOCHS} checkpointed" in line:  # epoch 2's report returned: checkpoint 1 is taken
            proc.send_signal(signal.SIGTERM)
            break
    lines += list(proc.stdout)
    return proc.wait(timeout=300), "".join(lines)


@pytest.fixture(scope="module")
def scenario(cluster, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("training")
    roots = {name: str(base / name) for name in ("registry", "data", "runs")}
    ingested = mlgate(roots, "data", "ingest", "demo:3000", "--name", "churn")
    assert ingested.returncode == 0, ingested.stderr
    first_rc, first_out = _train_until_stopped(roots, cluster)
    run = RunStore(roots["runs"]).get(RUN)
    stopped = {"status": run.status, "epochs": [e["epoch"] for e in run.epochs()]}
    resumed = subprocess.run(  # the README's bare form; the token comes from ~/.ray/auth_token
        [RAY, "job", "submit", "--address", cluster.dashboard_url, "--submission-id", f"{RUN}-resume", "--",
         "python", "-m", "training", "train", "--run-id", RUN, "--resume", "--registry-root", roots["registry"],
         "--data-root", roots["data"], "--runs-root", roots["runs"]],
        env={**_env(roots), "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=480)
    return {"roots": roots, "first_rc": first_rc, "first_out": first_out, "stopped": stopped,
            "resumed_rc": resumed.returncode, "resumed_out": resumed.stdout + resumed.stderr}


def test_the_job_api_refuses_a_wrong_token(cluster):
    from ray.exceptions import AuthenticationError

    with pytest.raises(AuthenticationError):
        job_client(cluster.dashboard_url, "not-the-token").list_jobs()


def test_signalled_cli_stops_its_job_and_the_run(scenario):
    out = scenario["first_out"]
    assert f"submitted job mlgate-train-{RUN}-" in out and "[mlgate] run e2e-run attempt 1" in out
    assert scenario["first_rc"] == 1, out[-4000:]
    assert f"job for run {RUN}: STOPPED" in out
    stopped = scenario["stopped"]
    assert stopped["status"]["state"] == "stopped"
    assert stopped["epochs"][:2] == [1, 2] and len(stopped["epochs"]) < EPOCHS


def test_resubmitted_run_continues_from_its_checkpoint(scenario):
    logs = scenario["resumed_out"]
    assert scenario["resumed_rc"] == 0, logs[-4000:]
    checkpoint_epoch = int(logs.split("[mlgate] resuming from checkpoint after epoch ")[1].split()[0])
    assert 1 <= checkpoint_epoch < EPOCHS  # not from scratch
    assert "epoch 1/" not in logs and f"epoch {checkpoint_epoch + 1}/{EPOCHS} checkpointed" in logs
    run = RunStore(scenario["roots"]["runs"]).get(RUN)
    assert [a["attempt"] for a in run.attempts()] == [1, 2]
    assert run.status["state"] == "registered" and [e["epoch"] for e in run.epochs()] == list(range(1, EPOCHS + 1))
    mv = Registry(scenario["roots"]["registry"]).get("demo")
    assert [h["epoch"] for h in mv.read_json("training_history.json")] == list(range(1, EPOCHS + 1))
    assert mv.lineage["attempts"] == 2


def test_registered_version_has_artifact_metrics_lineage_and_profile(scenario):
    roots = scenario["roots"]
    dataset = DataStore(roots["data"]).get("churn")
    reg = Registry(roots["registry"])
    mv = reg.get("demo", 1)
    assert reg.stage_of("demo", 1) == "candidate" and reg.stage_history("demo")[0].actor == f"run:{RUN}"
    # artifact: the served path (preprocessor + TorchScript) gives probabilities on the test split
    test = dataset.columns("test")
    x = mv.preprocessor().transform({n: test[n] for n in mv.schema.feature_names})
    with torch.inference_mode():
        proba = mv.load_torch()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # metrics
    assert 0.5 < mv.metrics["test_roc_auc"] <= 1.0 and mv.metrics["epochs"] == EPOCHS
    assert {"test_accuracy", "test_log_loss", "max_slice_gap", "latency_p50_ms_batch_1"} <= set(mv.metrics)
    assert set(mv.read_json("evaluation.json")["slices"]) == {"region", "plan", "channel"}
    # lineage
    lineage = mv.lineage
    assert lineage["data"]["fingerprint"] == dataset.fingerprint and lineage["run_id"] == RUN
    assert lineage["parameters"]["workers"] == 2 and lineage["parameters"]["batch_size"] == 16
    assert lineage["parent_version"] is None and lineage["code_revision"]
    # gate record and reference profile
    gate = mv.gate
    assert isinstance(gate["passed"], bool) and gate["compared_with"] is None
    assert {c["check"] for c in gate["checks"]} >= {"slice_gap", "latency:1"}
    profile = load_profile(mv.read(PROFILE_FILE))
    assert set(profile.features) == set(dataset.schema.feature_names)
    age = profile.numeric.sorted.column(profile.numeric.names.index("age"))
    np.testing.assert_array_equal(age, np.sort(dataset.columns("train")["age"]))
    # the run, as `mlgate runs show` prints it
    shown = json.loads(mlgate(roots, "runs", "show", RUN).stdout)
    assert shown["result"]["version"] == 1 and shown["spec"]["data"]["version"] == dataset.version
