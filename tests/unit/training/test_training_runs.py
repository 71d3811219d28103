"""Run directories: isolated, created once, status/epochs/attempts/result recorded."""

from __future__ import annotations

import pytest

from contracts.errors import Conflict, InvalidInput, NotFound
from training.runs import RunStore, new_run_id


@pytest.fixture
def runs(tmp_path) -> RunStore:
    return RunStore(str(tmp_path / "runs"))


def test_create_and_read_back(runs):
    run = runs.create("r1", {"model": "demo", "parameters": {"epochs": 3}})
    assert run.spec["model"] == "demo" and run.spec["run_id"] == "r1"
    assert run.status["state"] == "created"
    run.set_status("training", attempt=1)
    run.set_status("evaluating")
    assert run.status["state"] == "evaluating" and run.status["attempt"] == 1
    assert [r.run_id for r in runs.list()] == ["r1"]


def test_epochs_attempts_result(runs):
    run = runs.create("r1", {})
    run.record_epoch({"epoch": 2, "val_loss": 0.5})
    run.record_epoch({"epoch": 1, "val_loss": 0.7})
    run.record_epoch({"epoch": 2, "val_loss": 0.4})  # a rerun epoch replaces its record
    assert [e["val_loss"] for e in run.epochs()] == [0.7, 0.4]
    assert run.start_attempt(submission_id="j1") == 1 and run.start_attempt(submission_id="j2") == 2
    assert [a["submission_id"] for a in run.attempts()] == ["j1", "j2"]
    run.set_result({"version": 4})
    assert runs.get("r1").describe()["result"] == {"version": 4}


def test_runs_are_created_once(runs):
    runs.create("r1", {})
    with pytest.raises(Conflict):
        runs.create("r1", {})


@pytest.mark.parametrize("bad", ["", "a/b", ".hidden"])
def test_bad_ids(runs, bad):
    with pytest.raises(InvalidInput):
        runs.create(bad, {})


def test_unknown_run_and_unknown_state(runs):
    with pytest.raises(NotFound):
        runs.get("nope")
    with pytest.raises(ValueError):
        runs.create("r", {}).set_status("exploded")


def test_generated_ids_are_unique():
    assert new_run_id("demo").startswith("demo-") and new_run_id("demo") != new_run_id("demo")
