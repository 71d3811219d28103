"""The ``mlgate`` command line as a user runs it (subprocesses): help everywhere,
demo data files, and the registry commands on a temporary registry."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch

from training.demo_data import demo_schema

pytestmark = pytest.mark.e2e

# This checkout's packages, whatever state the environment's (editable) install is in.
REPO = Path(__file__).resolve().parents[2]


def mlgate(*args: str, cwd=None, registry: str | None = None, timeout_s: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_") and k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if registry is not None:
        env["MLGATE_REGISTRY_ROOT"] = registry
    return subprocess.run([sys.executable, "-m", "mlgate", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout_s)


def command_paths() -> list[list[str]]:
    """Every command and subcommand the parser knows, e.g. ["models", "show"]."""
    from mlgate.cli import build_parser

    paths: list[list[str]] = [[]]

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    paths.append(prefix + [name])
                    walk(sub, prefix + [name])

    walk(build_parser(), [])
    return paths


def test_help_on_every_command(tmp_path):
    paths = command_paths()
    assert ["up"] in paths and ["models", "list"] in paths and ["models", "show"] in paths
    assert ["models", "register"] in paths and ["demo-data"] in paths
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda path: (path, mlgate(*path, "--help", cwd=tmp_path)), paths))
    for path, done in results:
        assert done.returncode == 0, (path, done.stderr)
        assert "usage: mlgate" in done.stdout, (path, done.stdout)
        if path:
            assert " ".join(["mlgate", *path]) in done.stdout
    up_help = next(done for path, done in results if path == ["up"])
    for flag in ("--host", "--port", "--config", "--address"):
        assert flag in up_help.stdout


def test_no_command_is_a_usage_error(tmp_path):
    done = mlgate(cwd=tmp_path)
    assert done.returncode == 2 and "usage: mlgate" in done.stderr


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_demo_data_writes_rows(tmp_path, suffix):
    out = tmp_path / f"rows.{suffix}"
    done = mlgate("demo-data", "--rows", "500", "--output", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "500" in done.stdout
    table = pq.read_table(out) if suffix == "parquet" else pacsv.read_csv(out)
    assert table.num_rows == 500
    assert set(demo_schema().feature_names) <= set(table.column_names)
    assert "churn" in table.column_names


def test_demo_data_shift_moves_the_shifted_features(tmp_path):
    base, shifted = tmp_path / "base.parquet", tmp_path / "shifted.parquet"
    assert mlgate("demo-data", "--rows", "4000", "--output", str(base), cwd=tmp_path).returncode == 0
    assert mlgate("demo-data", "--rows", "4000", "--output", str(shifted), "--shift", "1.0",
                  cwd=tmp_path).returncode == 0
    a, b = pq.read_table(base).to_pandas(), pq.read_table(shifted).to_pandas()
    for name in ("tenure_months", "balance"):
        assert (b[name].mean() - a[name].mean()) / a[name].std() > 0.5
    assert abs(b["credit_score"].mean() - a["credit_score"].mean()) / a["credit_score"].std() < 0.1


def test_demo_data_refuses_bad_arguments(tmp_path):
    done = mlgate("demo-data", "--rows", "10", "--output", str(tmp_path / "rows.txt"), cwd=tmp_path)
    assert done.returncode == 2 and "--output" in done.stderr
    done = mlgate("demo-data", "--rows", "0", "--output", str(tmp_path / "rows.csv"), cwd=tmp_path)
    assert done.returncode == 2 and "--rows" in done.stderr


@pytest.fixture
def registry_copy(demo_registry, tmp_path) -> str:
    root = tmp_path / "registry-root"  # not a name in the working directory: `-m` puts cwd on sys.path
    shutil.copytree(demo_registry, root)
    return str(root)


def test_models_list_and_show(registry_copy, tmp_path):
    listed = mlgate("models", "list", cwd=tmp_path, registry=registry_copy)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["demo", "versions:", "1"]
    shown = mlgate("models", "show", "demo", cwd=tmp_path, registry=registry_copy)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["name"] == "demo" and doc["version"] == 1
    assert "model.pt" in doc["files"] and "preprocessor.json" in doc["files"]
    assert [i["name"] for i in doc["schema"]["inputs"]] == demo_schema().feature_names
    assert doc["metrics"]["test_accuracy"] > 0.5
    assert json.loads(mlgate("models", "show", "demo", "--version", "1", cwd=tmp_path,
                             registry=registry_copy).stdout)["version"] == 1


def test_models_show_unknown_is_a_clean_error(registry_copy, tmp_path):
    done = mlgate("models", "show", "nope", cwd=tmp_path, registry=registry_copy)
    assert done.returncode == 2 and "unknown model 'nope'" in done.stderr and "Traceback" not in done.stderr
    done = mlgate("models", "show", "demo", "--version", "9", cwd=tmp_path, registry=registry_copy)
    assert done.returncode == 2 and "no version 9" in done.stderr


def test_models_register_a_torchscript_file(registry_copy, tmp_path):
    from registry import FeatureSpec, ModelSchema, OutputSpec

    torch.manual_seed(0)
    module = torch.jit.trace(torch.nn.Linear(4, 2), torch.zeros(1, 4))
    model_path, schema_path = tmp_path / "model.pt", tmp_path / "schema.json"
    torch.jit.save(module, str(model_path))
    schema = ModelSchema(kind="tensor", task="regression",
                         inputs=(FeatureSpec(name="x", datatype="FP32", shape=(4,)),),
                         outputs=(OutputSpec(name="y", datatype="FP32", shape=(2,)),))
    schema_path.write_text(schema.model_dump_json())
    for expected in (1, 2):
        done = mlgate("models", "register", "lin", "--model", str(model_path), "--schema", str(schema_path),
                      cwd=tmp_path, registry=registry_copy)
        assert done.returncode == 0, done.stderr
        assert f"registered lin version {expected}" in done.stdout
    from registry import Registry

    reg = Registry(registry_copy)
    assert reg.list_models() == ["demo", "lin"] and reg.list_versions("lin") == [1, 2]
    loaded = reg.get("lin", 2).load_torch()
    x = torch.randn(3, 4)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), module(x).numpy(), rtol=1e-6)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torchscript")
    done = mlgate("models", "register", "lin", "--model", str(bad), "--schema", str(schema_path),
                  cwd=tmp_path, registry=registry_copy)
    assert done.returncode == 2 and "not a TorchScript file" in done.stderr
