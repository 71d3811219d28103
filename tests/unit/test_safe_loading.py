"""No pickle from disk: every ``torch.load`` of ours passes ``weights_only=True`` (a
checkpoint under ``runs_root`` must not run code for whoever can write there)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "registry", "serving", "training", "batch", "kernels", "monitoring", "mlgate")


def unsafe_loads(source: str) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
            safe = [k for k in node.keywords if k.arg == "weights_only"]
            if not safe or not (isinstance(safe[0].value, ast.Constant) and safe[0].value.value is True):
                lines.append(node.lineno)
    return lines


def test_the_scan_tells_safe_from_unsafe():
    assert unsafe_loads("torch.load(f)\ntorch.load(f, weights_only=False)\n") == [1, 2]
    assert unsafe_loads("torch.load(f, map_location='cpu', weights_only=True)\ntorch.jit.load(f)\n") == []


def test_every_torch_load_is_weights_only():
    sources = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    offenders = [f"{p.relative_to(REPO)}:{line}" for p in sources for line in unsafe_loads(p.read_text())]
    assert offenders == []
