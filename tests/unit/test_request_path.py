"""The request path has a shape a newcomer can follow (issue 14): one v2 JSON request that
succeeds enters at most ten modules of ours from the socket to the runner and back, with
metrics and the prediction log on, plus one for access control (issue 16: who asks, and
may they), and every module on the way imports only modules of its own layer or below it
(nothing calls back up)."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.request_path import ROOT, demo_request, trace_one_request
from registry import FeatureSpec, ModelSchema, Registry
from registry.torch_io import register_torch_model
from serving.config import ServingConfig

# the modules one demo (tabular) request enters, in the order a newcomer reads them
DEMO_PATH = [
    "serving/http/connection.py",  # bytes <-> HTTP/1.1 requests
    "serving/http/app.py",  # routes; HTTP <-> protocol-neutral types
    "access/authenticator.py",  # who asks (an API key verified once), and whether they may
    "serving/protocol/v2.py",  # the v2 REST documents
    "serving/protocol/json_data.py",  # a tensor's fields in JSON
    "serving/dataplane.py",  # the inference use case
    "serving/batching.py",  # the model's queue and batches
    "serving/pipeline.py",  # validation, preprocessing, postprocessing
    "registry/preprocess.py",  # the fitted preprocessor (the same code as training and batch)
    "serving/runner.py",  # torch
    "serving/observers.py",  # metrics tallies, error log, prediction-log rows
]

# Layers, top to bottom; a module may import modules of its own layer or below.
LAYERS = [
    ("serving.http", "serving.gateway", "serving.deployment"),
    ("serving.protocol", "serving.dataplane", "serving.feedback"),
    ("serving.model", "serving.predlog"),
    ("serving.observers", "serving.outcomes", "serving.batching"),
    ("serving.pipeline",),
    ("serving.runner", "registry"),
    ("access",),
    ("serving.types", "serving.config", "contracts"),
]
# the codec and the data plane sit side by side and never import one another
APART = [("serving.dataplane", "serving.protocol"), ("serving.protocol", "serving.dataplane")]


def _layer(module: str) -> int | None:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    """Runtime imports of ours (``if TYPE_CHECKING:`` blocks are annotations, not calls)."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
    return [(line, name) for line, name in out if _layer(name) is not None]


@pytest.fixture(scope="module")
def path_keys(keys) -> dict[str, str]:
    """Keys made before the gateway starts (a later key is seen within reload_interval_s)."""
    return {"demo": keys.create("path-demo", "infer:demo"), "mlp": keys.create("path-mlp", "infer:*")}


@pytest.fixture(scope="module")
def gateway(demo_registry, tmp_path_factory, keys, path_keys):
    from serving.gateway import Gateway

    root = tmp_path_factory.mktemp("path-registry")
    shutil.rmtree(root)
    shutil.copytree(demo_registry, root)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=-1))
    schema = ModelSchema(kind="tensor", task="classification", inputs=(FeatureSpec(name="x", datatype="FP32",
                         shape=(4,)),), outputs=ModelSchema.classifier_outputs(3), class_labels=("a", "b", "c"))
    register_torch_model(Registry(str(root)), "mlp", mlp, schema)
    # the key file is looked at once per reload interval, on the request that comes after it:
    # not every request's path (the keys are made before the gateway starts)
    cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth={**keys.auth, "reload_interval_s": 60})
    assert cfg.metrics.enabled and cfg.prediction_log.enabled and cfg.auth.enabled
    gw = Gateway(str(root), cfg, log_root=str(tmp_path_factory.mktemp("path-logs")))
    yield gw
    gw.stop()


def test_a_demo_request_enters_ten_modules_and_access_control_on_its_way(gateway, path_keys):
    assert trace_one_request(gateway, demo_request(), key=path_keys["demo"]) == sorted(DEMO_PATH)


def test_a_tensor_request_enters_no_more(gateway, path_keys):
    body = json.dumps({"id": "t-1", "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                                "data": [[0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]]}]}).encode()
    modules = trace_one_request(gateway, body, path="/v2/models/mlp/infer", key=path_keys["mlp"])
    assert len(modules) <= 11 and set(modules) <= set(DEMO_PATH), modules


def test_no_module_on_the_path_imports_a_layer_above_it():
    offenders = []
    for rel in DEMO_PATH + ["serving/model.py", "serving/outcomes.py", "serving/predlog.py", "serving/gateway.py"]:
        module = rel.removesuffix(".py").replace("/", ".")
        rank = _layer(module)
        for line, name in _imports(ROOT / rel):
            if _layer(name) < rank or any(module.startswith(a) and name.startswith(b) for a, b in APART):
                offenders.append(f"{rel}:{line} imports {name}")
    assert offenders == []
