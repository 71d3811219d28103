"""The Ray-free runner benchmark runs on CPU (``--device cpu --quick``) and writes its JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_runner_gpu.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_runner_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_cpu_run_writes_a_table_and_json(tmp_path, capsys):
    bench = _load()
    assert bench.main(["--device", "cpu", "--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "runner" in printed and "torch" in printed
    doc = json.loads((tmp_path / "bench_runner_cpu-latest.json").read_text())
    modes = {(r["mode"], r["batch"]) for r in doc["rows"]}
    assert {("torch", 1), ("runner", 1), ("torch", 64), ("runner", 64)} <= modes
    assert all(r["matches_oracle"] and r["rows_per_s"] > 0 for r in doc["rows"])
