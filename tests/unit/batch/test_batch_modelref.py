"""``--model NAME[:VERSION|@STAGE]``: parsing, and resolution against a real registry."""

from __future__ import annotations

import pytest
import torch

from batch.modelref import ModelRef, parse_model_ref, resolve
from contracts.errors import InvalidInput, NotFound
from registry import FeatureSpec, ModelSchema, Registry
from registry.torch_io import register_torch_model

SCHEMA = ModelSchema(kind="tensor", task="classification", inputs=(FeatureSpec(name="x", datatype="FP32", shape=(2,)),),
                     outputs=ModelSchema.classifier_outputs(2), class_labels=("a", "b"))


@pytest.mark.parametrize("text, ref", [
    ("demo", ModelRef("demo")),
    ("demo:3", ModelRef("demo", version=3)),
    ("demo@production", ModelRef("demo", stage="production")),
    (" churn-v2.1_x@candidate ", ModelRef("churn-v2.1_x", stage="candidate")),
])
def test_parses_name_version_and_stage(text, ref):
    assert parse_model_ref(text) == ref
    assert parse_model_ref(str(ref)) == ref


@pytest.mark.parametrize("text", ["", "demo:", "demo:x", "demo@", ":3", "demo:1@production", "de mo", "demo:-1"])
def test_rejects_malformed_references(text):
    with pytest.raises(InvalidInput, match="--model"):
        parse_model_ref(text)


@pytest.fixture
def registry(tmp_path) -> Registry:
    reg = Registry(str(tmp_path))
    for _ in range(3):
        register_torch_model(reg, "m", torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(-1)), SCHEMA)
    return reg


def test_resolves_latest_and_numbered_versions(registry):
    assert resolve(registry, parse_model_ref("m")).version == 3
    assert resolve(registry, parse_model_ref("m:2")).version == 2
    with pytest.raises(NotFound, match="no version 9"):
        resolve(registry, parse_model_ref("m:9"))
    with pytest.raises(NotFound, match="unknown model"):
        resolve(registry, parse_model_ref("nope"))


def test_resolves_stages_through_the_registry(registry):
    if not hasattr(Registry, "versions_in_stage"):
        pytest.skip("model stages land with registry/stages.py")
    with pytest.raises(NotFound, match="no version in stage 'production'"):
        resolve(registry, parse_model_ref("m@production"))
    registry.promote("m", 1, actor="test", reason="ungated test version", force=True)
    registry.set_candidate("m", 2, actor="test")
    registry.set_candidate("m", 3, actor="test")
    assert resolve(registry, parse_model_ref("m@production")).version == 1
    assert resolve(registry, parse_model_ref("m@candidate")).version == 3  # the newest candidate
    with pytest.raises(NotFound, match="unknown stage"):
        resolve(registry, parse_model_ref("m@nightly"))


def test_a_registry_without_stages_names_the_alternative():
    class NoStages:  # the registry API before registry.stages
        def get(self, name, version=None):
            raise AssertionError("not reached")

    with pytest.raises(NotFound, match=r"no stages; name a version \(m:N\)"):
        resolve(NoStages(), parse_model_ref("m@production"))
