"""The typed config root: defaults < YAML < environment < flags; invalid -> ConfigError naming the field.

Every test passes its own ``environ``: nothing global is read or set.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.errors import ConfigError
from mlgate.config import MlgateConfig, load_config

REPO = Path(__file__).resolve().parents[2]


def write_yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mlgate.yaml"
    path.write_text(text)
    return str(path)


def test_defaults():
    cfg = load_config(environ={})
    assert cfg.serving.port == 8000 and cfg.serving.host == "127.0.0.1"
    assert cfg.ray.address is None
    assert Path(cfg.registry_root).is_absolute()  # local roots are made absolute for Ray workers
    assert cfg.serving.for_model("anything").max_batch_size == 64


def test_yaml_file(tmp_path):
    path = write_yaml(tmp_path, """
serving:
  port: 9100
  max_body_bytes: 4096
  models:
    demo: {max_batch_size: 8, version_policy: {policy: latest, latest_n: 2}}
registry_root: s3://bucket/registry
""")
    cfg = load_config(path, environ={})
    assert cfg.serving.port == 9100 and cfg.serving.max_body_bytes == 4096
    assert cfg.serving.for_model("demo").max_batch_size == 8
    assert cfg.serving.for_model("demo").version_policy.latest_n == 2
    assert cfg.serving.for_model("other").max_batch_size == 64
    assert cfg.registry_root == "s3://bucket/registry"  # URIs stay as they are


def test_config_file_from_environment(tmp_path):
    path = write_yaml(tmp_path, "serving: {port: 9200}\n")
    assert load_config(environ={"MLGATE_CONFIG": path}).serving.port == 9200


def test_precedence_yaml_then_environment_then_flags(tmp_path):
    path = write_yaml(tmp_path, "serving: {port: 9100, host: 127.0.0.2, num_replicas: 3}\n")
    environ = {"MLGATE_SERVING__PORT": "9300", "MLGATE_SERVING__HOST": "127.0.0.3"}
    cfg = load_config(path, overrides={"serving.port": 9400, "serving.host": None}, environ=environ)
    assert cfg.serving.port == 9400  # flag beats environment
    assert cfg.serving.host == "127.0.0.3"  # an unset flag (None) leaves the environment's value
    assert cfg.serving.num_replicas == 3  # only in YAML
    assert load_config(path, environ=environ).serving.port == 9300  # environment beats YAML


def test_environment_json_values_and_nested_sections(tmp_path):
    environ = {
        "MLGATE_SERVING__MODELS": '{"demo": {"max_batch_size": 128, "max_queue_size": 4}}',
        "MLGATE_SERVING__SERVE_MODELS": '["demo", "mlp"]',
        "MLGATE_SERVING__DEFAULT_MODEL__BATCH_WAIT_TIMEOUT_S": "0.01",
        "MLGATE_RAY__ADDRESS": "auto",
        "MLGATE_REGISTRY_ROOT": str(tmp_path / "reg"),
        "OTHER_VARIABLE": "ignored",
    }
    cfg = load_config(environ=environ)
    assert cfg.serving.for_model("demo").max_batch_size == 128
    assert cfg.serving.for_model("demo").max_queue_size == 4
    assert cfg.serving.serve_models == ("demo", "mlp")
    assert cfg.serving.default_model.batch_wait_timeout_s == 0.01
    assert cfg.ray.address == "auto"
    assert cfg.registry_root == str(tmp_path / "reg")


@pytest.mark.parametrize(
    "environ, field",
    [
        ({"MLGATE_SERVING__PORT": "not-a-port"}, "serving.port"),
        ({"MLGATE_SERVING__PORT": "70000"}, "serving.port"),
        ({"MLGATE_SERVING__MAX_BODY_BYTES": "10"}, "serving.max_body_bytes"),
        ({"MLGATE_SERVING__DEFAULT_MODEL__MAX_BATCH_SIZE": "0"}, "serving.default_model.max_batch_size"),
        ({"MLGATE_SERVING__MODELS": '{"demo": {"precision": "fp8"}}'}, "serving.models.demo.precision"),
        ({"MLGATE_SERVING__MODELS": '{"demo": {"version_policy": {"policy": "newest"}}}'},
         "serving.models.demo.version_policy.policy"),
        ({"MLGATE_RAY__NUM_CPUS": "0"}, "ray.num_cpus"),
        ({"MLGATE_SERVING__REPLICA_NUM_GPUS": "-1"}, "serving.replica_num_gpus"),
    ],
)
def test_invalid_values_name_the_field(environ, field):
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert field in info.value.message


@pytest.mark.parametrize(
    "environ, field",
    [
        ({"MLGATE_SERVING__PROT": "9000"}, "serving.prot"),
        ({"MLGATE_NOPE": "1"}, "nope"),
        ({"MLGATE_SERVING__MODELS": '{"demo": {"batch_size": 3}}'}, "serving.models.demo.batch_size"),
    ],
)
def test_unknown_keys_are_rejected(environ, field):
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert field in info.value.message


def test_invalid_yaml_values_and_unknown_yaml_keys(tmp_path):
    with pytest.raises(ConfigError, match="serving.port"):
        load_config(write_yaml(tmp_path, "serving: {port: -1}\n"), environ={})
    with pytest.raises(ConfigError, match="serving.colour"):
        load_config(write_yaml(tmp_path, "serving: {colour: blue}\n"), environ={})


def test_unreadable_or_malformed_config_files(tmp_path):
    with pytest.raises(ConfigError, match="config file"):
        load_config(str(tmp_path / "missing.yaml"), environ={})
    with pytest.raises(ConfigError, match="config file"):
        load_config(write_yaml(tmp_path, "serving: [unclosed\n"), environ={})
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write_yaml(tmp_path, "- 1\n- 2\n"), environ={})


def test_environment_conflicting_with_a_scalar(tmp_path):
    path = write_yaml(tmp_path, "serving: 5\n")
    with pytest.raises(ConfigError, match="serving.port"):
        load_config(path, environ={"MLGATE_SERVING__PORT": "9000"})


def test_cluster_example_config_is_valid():
    examples = sorted((REPO / "cluster").glob("*.yaml"))
    examples = [p for p in examples if "mlgate" in p.name]
    if not examples:
        pytest.skip("no cluster/mlgate*.yaml example in this checkout")
    for path in examples:
        assert isinstance(load_config(str(path), environ={}), MlgateConfig)
