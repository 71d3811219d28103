"""The files in cluster/ are validated by the same typed config models the code uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contracts.errors import ConfigError
from mlgate.config import load_config
from serving.config import ServingConfig

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


def test_example_config_loads():
    cfg = load_config(str(CLUSTER / "mlgate.yaml"), environ={})
    assert cfg.serving.port == 8000
    assert cfg.serving.for_model("demo").version_policy.policy == "latest"


def _serve_apps(doc: dict) -> list[dict]:
    assert doc["proxy_location"] == "Disabled"
    return doc["applications"]


@pytest.mark.parametrize("source", ["serve-config.yaml", "kuberay/rayservice.yaml"])
def test_serve_configs_validate_with_serving_config(source):
    docs = list(yaml.safe_load_all((CLUSTER / source).read_text()))
    if source.startswith("kuberay"):
        service = next(d for d in docs if d["kind"] == "RayService")
        assert service["spec"]["rayClusterConfig"]["rayVersion"] == "2.60.0"
        serve_doc = yaml.safe_load(service["spec"]["serveConfigV2"])
    else:
        serve_doc = docs[0]
    for app in _serve_apps(serve_doc):
        assert app["import_path"] == "serving.deployment:app_builder"
        ServingConfig.model_validate(app["args"]["serving"])
        assert app["args"]["registry_root"]


def test_app_builder_rejects_bad_config_naming_the_field():
    from serving.deployment import app_builder

    with pytest.raises(ConfigError, match="port"):
        app_builder({"registry_root": "/tmp/x", "serving": {"port": 70000}})
    with pytest.raises(ConfigError, match="registry_root"):
        app_builder({"serving": {}})


def test_invalid_config_names_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("serving:\n  num_replicas: 0\n  nope: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(bad), environ={})
    assert "serving.num_replicas" in str(err.value) and "serving.nope" in str(err.value)
