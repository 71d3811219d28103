"""Evaluation on the held-out test split: task metrics, slices, runner latency.

A :class:`Scorer` is a version's compute path on raw columns: the registry's fitted
``Preprocessor`` (the code serving applies) and the TorchScript module, called on CPU
tensors in inference mode as the serving runner does. Training never imports serving;
this is the same two calls with plain torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from contracts import scores
from registry.preprocess import Preprocessor
from registry.schema import ModelSchema
from registry.store import ModelVersion
from training import slices as m
from training.config import EvalConfig
from training.featurize import encode_target


@dataclass
class Scorer:
    module: torch.jit.ScriptModule
    preprocessor: Preprocessor
    schema: ModelSchema

    @classmethod
    def from_version(cls, mv: ModelVersion) -> Scorer:
        pre = mv.preprocessor()
        if pre is None:
            raise ValueError(f"{mv.name} version {mv.version} has no preprocessor (not a tabular model)")
        return cls(mv.load_torch("cpu").eval(), pre, mv.schema)

    def features(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        return self.preprocessor.transform({n: columns[n] for n in self.schema.feature_names})

    def run(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        return self.run(self.features(columns))

    def incompatibility(self, columns: dict[str, np.ndarray], task: str, labels: tuple[str, ...]) -> str | None:
        """Why this scorer cannot be evaluated on these columns, or None."""
        absent = [n for n in self.schema.feature_names if n not in columns]
        if absent:
            return f"the test split lacks its input(s) {', '.join(absent)}"
        if self.schema.task != task or tuple(self.schema.class_labels) != tuple(labels):
            return f"it predicts {self.schema.task} {list(self.schema.class_labels)}, not {task} {list(labels)}"
        return None


def evaluate(scorer: Scorer, columns: dict[str, np.ndarray], target: str, categorical: list[str],
             cfg: EvalConfig) -> dict[str, Any]:
    """Metrics and slice metrics of ``scorer`` on the test columns."""
    schema = scorer.schema
    y = encode_target(schema.task, schema.class_labels, columns[target])
    out = scorer.predict(columns)
    if schema.task == "classification":
        metrics = scores.classification_metrics(y, out)
    else:
        metrics = scores.regression_metrics(y, out)
    slices = m.slice_metrics(schema.task, y, out, {c: columns[c] for c in categorical}, cfg.min_slice_rows)
    feature, gap = m.max_slice_gap(slices)
    return {"rows": int(len(y)), "metrics": metrics, "slices": slices,
            "max_slice_gap": {"feature": feature, "gap": gap}}


def latency(scorers: dict[str, Scorer], columns: dict[str, np.ndarray], cfg: EvalConfig) -> dict[str, Any]:
    """Model-call latency and throughput per batch size; scorers timed in turn, call by call,
    so that they see the same machine load."""
    n = len(next(iter(columns.values())))
    rows = np.resize(np.arange(n), max(cfg.latency_batch_sizes))
    inputs = {name: s.features({k: v[rows] for k, v in columns.items()}) for name, s in scorers.items()}
    report: dict[str, Any] = {name: {"device": "cpu", "threads": torch.get_num_threads(), "batch_sizes": {}}
                              for name in scorers}
    for bs in cfg.latency_batch_sizes:
        timings = {name: [] for name in scorers}
        for i in range(cfg.latency_repeats + 3):
            for name, scorer in scorers.items():
                x = inputs[name][:bs]
                started = time.perf_counter()
                scorer.run(x)
                if i >= 3:  # the first calls warm up
                    timings[name].append(time.perf_counter() - started)
        for name, t in timings.items():
            t_ms = np.array(t) * 1e3
            report[name]["batch_sizes"][str(bs)] = {
                "p50_ms": float(np.percentile(t_ms, 50)),
                "p95_ms": float(np.percentile(t_ms, 95)),
                "rows_per_s": float(bs / (t_ms.mean() / 1e3)),
            }
    return report
