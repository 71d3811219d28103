"""The training commands as a user types them, no Ray: data, models promote/rollback/stages
(ungated hand-registered versions forced; `models evaluate` in test_models_evaluate.py),
runs; and the job command line `mlgate train` submits, parsed back by `python -m training`."""

from __future__ import annotations

import json
import shlex

import pytest

from mlgate.cli import main
from training.__main__ import build_parser, request_from
from training.config import TrainingConfig
from training.submit import JobSpec, api_url


@pytest.fixture
def roots(tmp_path, monkeypatch):
    for name in ("registry", "data", "runs", "log"):
        monkeypatch.setenv(f"MLGATE_{name.upper()}_ROOT", str(tmp_path / name))
    monkeypatch.delenv("MLGATE_CONFIG", raising=False)
    return tmp_path


def test_data_ingest_list_show(roots, capsys):
    assert main(["data", "ingest", "demo:600", "--name", "churn", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "published dataset churn version 1" in out and "rejected 0" in out
    assert main(["data", "ingest", "demo:600", "--name", "churn", "--seed", "3"]) == 0
    assert "unchanged, same content as dataset churn version 1" in capsys.readouterr().out
    assert main(["data", "list"]) == 0
    assert capsys.readouterr().out.startswith("churn\tversions: 1")
    assert main(["data", "show", "churn"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["split"]["seed"] == 3 and shown["rows"]["source"] == 600


def test_data_ingest_reports_rejected_rows(roots, capsys, tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("x,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(60)) + "oops,a\n7,\n")
    assert main(["data", "ingest", str(csv), "--name", "t", "--target", "label"]) == 0
    out = capsys.readouterr().out
    assert "rejected row 60: x: not a number ('oops')" in out and "rejected row 61: target label: missing" in out
    assert "rejected.parquet" in out


def test_data_root_inside_the_live_logs_is_refused(roots, monkeypatch, capsys):
    monkeypatch.setenv("MLGATE_DATA_ROOT", str(roots / "log" / "data"))
    assert main(["data", "ingest", "demo:100", "--name", "x"]) == 2
    assert "must not be inside log_root" in capsys.readouterr().err


def test_promote_rollback_stages(roots, capsys, monkeypatch):
    """The actor is the credential's identity (here the admin key file's key, named ana);
    --by is only recorded in the audit trail (tests/unit/test_audit_cli.py)."""
    from access.keys import KeyStore
    from registry import Registry
    from training.quickfit import fit_demo

    monkeypatch.setenv("MLGATE_AUDIT_ROOT", str(roots / "audit"))
    monkeypatch.setenv("MLGATE_SERVING__AUTH__KEYS_FILE", str(roots / "keys.json"))
    monkeypatch.setenv("MLGATE_SERVING__AUTH__ADMIN_KEY_FILE", str(roots / "admin.key"))
    monkeypatch.delenv("MLGATE_TOKEN", raising=False)
    monkeypatch.delenv("MLGATE_TOKEN_FILE", raising=False)
    ana, key = KeyStore(str(roots / "keys.json")).create("ana", ["admin"])
    (roots / "admin.key").write_text(key)
    reg = Registry(str(roots / "registry"))
    fit_demo(reg, rows=500, epochs=1)
    fit_demo(reg, rows=500, epochs=1)
    assert main(["models", "promote", "demo", "1", "--by", "ana", "--force", "--reason", "first"]) == 0
    assert main(["models", "promote", "demo", "2", "--by", "ana", "--force", "--reason", "second"]) == 0
    assert "demo version 2 is production (forced past a missing gate); version 1 archived" in \
        capsys.readouterr().out
    assert main(["models", "rollback", "demo", "--by", "bo", "--reason", "bad latency"]) == 0
    assert "version 1 is production again (version 2 archived)" in capsys.readouterr().out
    assert main(["models", "rollback", "demo", "--reason", "x"]) == 2
    assert "no previous production version" in capsys.readouterr().err
    assert main(["models", "stages", "demo"]) == 0
    stages = json.loads(capsys.readouterr().out)
    assert stages["production"] == 1 and stages["stages"] == {"1": "production", "2": "archived"}
    assert [(e["action"], e["actor"], e["reason"]) for e in stages["history"]] == \
        [("promote", "ana", "first"), ("promote", "ana", "second"), ("rollback", "ana", "bad latency")]
    assert {e["actor_id"] for e in stages["history"]} == {ana.identity.id}  # the key's id, not only its name


def test_runs_list_and_show(roots, capsys):
    from training.runs import RunStore

    run = RunStore(str(roots / "runs")).create("r1", {"model": "demo", "parameters": {"epochs": 4},
                                                      "data": {"name": "churn", "version": 2}})
    run.record_epoch({"epoch": 1, "val_loss": 0.5})
    run.set_status("training", attempt=1)
    assert main(["runs", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "r1\ttraining\tdemo\tchurn:v2\t1/4\t-"
    assert main(["runs", "show", "r1"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == [{"epoch": 1, "val_loss": 0.5}]
    assert main(["runs", "show", "nope"]) == 2


def test_train_needs_data_or_resume(roots, capsys):
    assert main(["train"]) == 2
    assert "--data" in capsys.readouterr().err


def test_job_command_line_round_trips_into_the_job():
    cfg = TrainingConfig(epochs=7, workers=2, hidden=(16,), use_gpu=False)
    spec = JobSpec(run_id="r-1", registry_root="/r", data_root="s3://b/data", runs_root="/u", data="churn",
                   data_version=3, model="churn", config=cfg, code_revision="abc")
    argv = shlex.split(spec.entrypoint("sub-1"))
    assert argv[:4] == ["python", "-m", "training", "train"]
    req = request_from(build_parser().parse_args(argv[3:]))
    assert (req.run_id, req.data, req.data_version, req.model, req.resume) == ("r-1", "churn", 3, "churn", False)
    assert (req.registry_root, req.data_root, req.runs_root) == ("/r", "s3://b/data", "/u")
    assert req.config == cfg and req.code_revision == "abc" and req.submission_id == "sub-1"


def test_job_flags_override_the_config_and_resume():
    args = build_parser().parse_args(["train", "--run-id", "r", "--resume", "--epochs", "2", "--no-gpu",
                                      "--config-json", TrainingConfig(epochs=9).model_dump_json()])
    req = request_from(args)
    assert req.resume and req.config.epochs == 2 and req.config.use_gpu is False


@pytest.mark.parametrize("address,url", [("127.0.0.1:8265", "http://127.0.0.1:8265"),
                                         ("https://ray.example:443", "https://ray.example:443")])
def test_api_url(address, url):
    assert api_url(address) == url
