"""The files in cluster/ are validated by the same typed config models the code uses."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import pytest
import yaml

from contracts.errors import ConfigError
from mlgate.config import load_config
from serving.config import ServingConfig

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
SERVE_CONFIGS = ["serve-config.yaml", "kuberay/rayservice.yaml"]


def _kuberay() -> list[dict]:
    return list(yaml.safe_load_all((CLUSTER / "kuberay/rayservice.yaml").read_text()))


def _serve_doc(source: str) -> dict:
    if source.startswith("kuberay"):
        service = next(d for d in _kuberay() if d["kind"] == "RayService")
        return yaml.safe_load(service["spec"]["serveConfigV2"])
    return yaml.safe_load((CLUSTER / source).read_text())


def _every_interface(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


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


def test_no_config_binds_the_gateway_to_every_interface():
    from serving.deployment import NODE_IP

    assert not _every_interface(load_config(str(CLUSTER / "mlgate.yaml"), environ={}).serving.host)
    for source in SERVE_CONFIGS:
        for app in _serve_apps(_serve_doc(source)):
            assert ServingConfig.model_validate(app["args"]["serving"]).host == NODE_IP  # the pod IP
    cmd = next(line for line in (CLUSTER / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    assert "0.0.0.0" not in cmd and "status.podIP" in (CLUSTER / "Dockerfile").read_text()
    # the one 0.0.0.0 left is Ray's dashboard (token auth; KubeRay probes it on localhost)
    for path in CLUSTER.rglob("*"):
        if path.is_file():
            for line in path.read_text().splitlines():
                if "0.0.0.0" in line and not line.lstrip().startswith("#"):
                    assert line.split(":")[0].strip() == "dashboard-host", f"{path}: {line}"


@pytest.mark.parametrize("source", SERVE_CONFIGS)
def test_serve_configs_keep_auth_on_and_name_secret_files_only(source):
    for app in _serve_apps(_serve_doc(source)):
        cfg = ServingConfig.model_validate(app["args"]["serving"])
        assert cfg.auth.enabled and cfg.auth.keys_file.startswith("/etc/mlgate/auth/")
        assert cfg.prediction_log.pii_salt is None and cfg.prediction_log.pii_salt_file


def test_kuberay_mounts_the_secrets_and_exposes_the_gateway_through_a_service_and_a_network_policy():
    docs = {d["kind"]: d for d in _kuberay()}
    serving = ServingConfig.model_validate(
        _serve_apps(yaml.safe_load(docs["RayService"]["spec"]["serveConfigV2"]))[0]["args"]["serving"])
    (workers,) = docs["RayService"]["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    pod = workers["template"]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    for file in (serving.auth.keys_file, serving.prediction_log.pii_salt_file):
        assert secrets[mounts[str(Path(file).parent)]], f"{file} is not on a mounted Secret"
    service = docs["Service"]["spec"]
    assert service.get("type", "ClusterIP") == "ClusterIP"
    assert [p["targetPort"] for p in service["ports"]] == [serving.port, serving.grpc.port]
    policy = docs["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["podSelector"]["matchLabels"] == {"ray.io/cluster": "mlgate"}
    ported = [rule for rule in policy["ingress"] if "ports" in rule]
    assert sorted(p["port"] for rule in ported for p in rule["ports"]) == [serving.port, serving.grpc.port, 8265]
    assert all(rule["from"] for rule in policy["ingress"])  # never from anywhere


def test_dockerfile_copies_every_package_the_wheel_includes():
    project = tomllib.loads((CLUSTER.parent / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    text = (CLUSTER / "Dockerfile").read_text()
    assert [p for p in packages if f"COPY {p} {p}" not in text] == []
