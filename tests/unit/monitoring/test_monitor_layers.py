"""monitoring reaches training through one narrow module: ``monitoring/retrain.py``."""

from __future__ import annotations

import ast
from pathlib import Path

MONITORING = Path(__file__).resolve().parents[3] / "monitoring"
NARROW = "retrain.py"


def training_imports(source: str) -> list[int]:
    """Lines of ``source`` that import from the ``training`` package (at any depth)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if any(n == "training" or n.startswith("training.") for n in names):
            lines.append(node.lineno)
    return lines


def test_the_scan_finds_imports_inside_functions():
    assert training_imports("def f():\n    from training.submit import submit\n") == [2]
    assert training_imports("import training.datastore as d\nimport trainingwheels\n") == [1]


def test_only_retrain_imports_training():
    paths = sorted(MONITORING.rglob("*.py"))
    assert (MONITORING / NARROW) in paths and training_imports((MONITORING / NARROW).read_text())
    offenders = [f"{p.relative_to(MONITORING.parent)}:{line}" for p in paths if p.name != NARROW
                 for line in training_imports(p.read_text())]
    assert offenders == []
