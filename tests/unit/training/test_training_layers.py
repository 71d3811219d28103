"""Dependency rules of the training package (DESIGN.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[3] / "training"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_training_never_imports_serving_or_the_cli():
    offenders = {p.name: _imports(p) & {"serving", "mlgate"} for p in TRAINING.glob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_training_and_its_config_does_not_import_ray():
    code = ("import sys, training, training.config, training.ingest, training.gate, training.runs; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
