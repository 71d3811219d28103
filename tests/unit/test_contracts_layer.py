"""``contracts`` is the bottom layer: it imports nothing of ours but itself."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OURS = {"access", "registry", "serving", "training", "batch", "kernels", "monitoring", "mlgate", "benchmarks", "tests"}


def test_contracts_import_only_contracts_and_libraries():
    offenders = []
    for path in sorted((REPO / "contracts").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.relative_to(REPO)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in OURS]
    assert offenders == []


def _imports_of(package: str, forbidden: tuple[str, ...]) -> list[str]:
    offenders = []
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.relative_to(REPO)}:{node.lineno}: {n}" for n in names
                          if n in forbidden or n.startswith(tuple(f + "." for f in forbidden))]
    return offenders


def test_serving_never_imports_training():
    assert _imports_of("serving", ("training",)) == []


def test_batch_does_not_import_the_cli():
    """``python -m batch`` is an entrypoint of its own: the CLI (``mlgate.cli``, its commands)
    sits above batch, never below it."""
    assert _imports_of("batch", ("mlgate.cli", "mlgate.commands")) == []


def test_access_sits_below_the_runtime_packages():
    """Access control is a layer of its own: the transports and the CLI call it at their
    edge; it never reaches up into them."""
    assert _imports_of("access", ("serving", "training", "monitoring", "batch", "mlgate", "registry")) == []
