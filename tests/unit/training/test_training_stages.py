"""Stages: candidate -> production, promote refuses a failed or missing gate unless forced,
rollback, every change an atomic event in an append-only history."""

from __future__ import annotations

import json
import os

import pytest

from contracts.errors import Conflict, NotFound
from registry import Registry
from registry.schema import FeatureSpec, ModelSchema, OutputSpec
from registry.stages import GATE_FILE

SCHEMA = ModelSchema(kind="tensor", task="regression", inputs=(FeatureSpec(name="x", datatype="FP32", shape=(2,)),),
                     outputs=(OutputSpec(name="y", datatype="FP32"),))


PASSED = {"passed": True, "reasons": []}


def _publish(reg: Registry, gate: dict | None = PASSED) -> int:
    """A version whose published gate record is ``gate`` (None: ungated, as `models register` makes)."""
    files = {"model.pt": os.urandom(8), "schema.json": SCHEMA.model_dump_json().encode()}
    if gate is not None:
        files[GATE_FILE] = json.dumps(gate).encode()
    return reg.publish("m", files).version


@pytest.fixture
def reg(tmp_path) -> Registry:
    return Registry(str(tmp_path / "reg"))


def test_candidate_then_promote(reg):
    v1 = _publish(reg, {"passed": True, "reasons": []})
    reg.set_candidate("m", v1, actor="run:r1", reason="trained")
    assert reg.stage_of("m", v1) == "candidate" and reg.versions_in_stage("m", "candidate") == [v1]
    event = reg.promote("m", v1, actor="ana@box", reason="looks good")
    assert (event.stage, event.action, event.actor, event.reason, event.gate) == \
        ("production", "promote", "ana@box", "looks good", "passed")
    assert reg.versions_in_stage("m", "production") == [v1] and reg.versions_in_stage("m", "candidate") == []


def test_promoting_archives_the_previous_production(reg):
    v1, v2 = _publish(reg), _publish(reg)
    reg.promote("m", v1, actor="a")
    event = reg.promote("m", v2, actor="a")
    assert event.previous_production == v1
    assert reg.stage_of("m", v1) == "archived" and reg.stage_of("m", v2) == "production"


def test_failed_gate_refused_unless_forced_with_a_reason(reg):
    v1 = _publish(reg, {"passed": False, "reasons": ["accuracy 0.7 vs production 0.8"]})
    with pytest.raises(Conflict, match="failed its gate \\(accuracy 0.7 vs production 0.8\\)"):
        reg.promote("m", v1, actor="a")
    with pytest.raises(Conflict, match="needs a reason"):
        reg.promote("m", v1, actor="a", force=True)
    event = reg.promote("m", v1, actor="bob@box", reason="hotfix, accepted", force=True)
    assert event.forced and event.gate == "failed" and reg.stage_of("m", v1) == "production"


def test_ungated_versions_are_refused_unless_forced_with_a_reason(reg):
    v1 = _publish(reg, None)
    assert reg.set_candidate("m", v1, actor="a").gate == "ungated"
    with pytest.raises(Conflict, match=r"m version 1 is ungated .*`mlgate models evaluate m 1 --data DATASET`"
                                       r".*--force and a --reason") as refused:
        reg.promote("m", v1, actor="a")
    assert refused.value.status == 409
    with pytest.raises(Conflict, match="needs a reason"):
        reg.promote("m", v1, actor="a", force=True)
    event = reg.promote("m", v1, actor="bob@box", reason="hand-built hotfix", force=True)
    assert (event.forced, event.gate, event.reason) == (True, "ungated", "hand-built hotfix")
    assert reg.stage_history("m")[-1] == event and reg.stage_of("m", v1) == "production"


def test_a_passed_gate_is_not_forced_even_with_force(reg):
    event = reg.promote("m", _publish(reg), actor="a", reason="belt and braces", force=True)
    assert (event.forced, event.gate) == (False, "passed")


def test_old_events_with_gate_none_still_read(reg):
    """Before ``ungated`` existed, an ungated version's events said ``none`` (and rollbacks still do)."""
    from registry.stages import StageEvent

    old = {"seq": 1, "model": "m", "version": 1, "stage": "production", "action": "promote", "actor": "a",
           "gate": "none", "at": 1.0}
    assert StageEvent.model_validate_json(json.dumps(old)).gate == "none"


def test_rollback_returns_to_the_previous_production_repeatedly(reg):
    v1, v2, v3 = _publish(reg), _publish(reg), _publish(reg)
    for v in (v1, v2, v3):
        reg.promote("m", v, actor="a")
    event = reg.rollback("m", actor="c", reason="latency regression")
    assert (event.version, event.previous_production, event.action) == (v2, v3, "rollback")
    assert reg.stage_of("m", v3) == "archived" and reg.versions_in_stage("m", "production") == [v2]
    assert reg.rollback("m", actor="c", reason="again").version == v1
    with pytest.raises(Conflict, match="no previous production version"):
        reg.rollback("m", actor="c", reason="once more")


def test_history_is_append_only_and_ordered(reg):
    v1, v2 = _publish(reg), _publish(reg)
    reg.set_candidate("m", v1, actor="run:a")
    reg.promote("m", v1, actor="a")
    reg.promote("m", v2, actor="a")
    reg.rollback("m", actor="a", reason="r")
    history = reg.stage_history("m")
    assert [(e.seq, e.action, e.version) for e in history] == \
        [(1, "candidate", v1), (2, "promote", v1), (3, "promote", v2), (4, "rollback", v1)]
    assert history[0].at <= history[-1].at


def test_a_writer_that_loses_the_race_decides_again(reg):
    v1, v2 = _publish(reg), _publish(reg)
    other = Registry(reg.root)  # a second writer on the same registry
    seen = []

    def decide(state):
        seen.append(state.production)
        if len(seen) == 1:  # the other writer commits while we are deciding
            other.promote("m", v2, actor="other")
        return {"version": v1, "stage": "production", "action": "promote", "actor": "me"}

    event = reg.stages.commit("m", decide)
    assert seen == [None, v2]  # decided again on the new state
    assert (event.seq, event.previous_production) == (2, v2)
    assert [e.actor for e in reg.stage_history("m")] == ["other", "me"]


def test_candidate_only_once_and_unknown_things(reg):
    v1 = _publish(reg)
    reg.set_candidate("m", v1, actor="a")
    with pytest.raises(Conflict):
        reg.set_candidate("m", v1, actor="a")
    with pytest.raises(NotFound):
        reg.promote("m", 99, actor="a")
    with pytest.raises(NotFound):
        reg.versions_in_stage("m", "staging")
    with pytest.raises(Conflict, match="already in production"):
        reg.promote("m", v1, actor="a")
        reg.promote("m", v1, actor="a")


def test_stage_dirs_are_not_versions_or_models(reg):
    v1 = _publish(reg)
    reg.promote("m", v1, actor="a")
    assert reg.list_models() == ["m"] and reg.list_versions("m") == [v1]
