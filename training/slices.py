"""Per-slice metrics of an evaluation (pure numpy). The task metrics themselves are
``contracts.scores``, shared with the monitor's live quality."""

from __future__ import annotations

from typing import Any

import numpy as np

MISSING_LEVEL = "<missing>"


def slice_metrics(task: str, y: np.ndarray, out: np.ndarray, categorical: dict[str, np.ndarray],
                  min_rows: int) -> dict[str, Any]:
    """Per categorical feature: a metric per level and the largest gap between gated slices.

    Classifiers use accuracy; regressors MAE, and their gap is relative to the overall MAE.
    Slices with fewer than ``min_rows`` rows are reported but left out of the gap.
    """
    if task == "classification":
        per_row = (out.argmax(axis=1) == y).astype(np.float64)
        name, scale = "accuracy", 1.0
    else:
        per_row = np.abs(np.asarray(out, dtype=np.float64).reshape(-1) - y)
        name, scale = "mae", float(per_row.mean()) or 1.0
    report: dict[str, Any] = {}
    for feature, values in categorical.items():
        levels = np.array([MISSING_LEVEL if v is None else str(v) for v in values], dtype=object)
        slices = {}
        for level in sorted(set(levels.tolist())):
            mask = levels == level
            slices[level] = {"rows": int(mask.sum()), name: float(per_row[mask].mean())}
        gated = [s[name] for s in slices.values() if s["rows"] >= min_rows]
        gap = (max(gated) - min(gated)) / scale if len(gated) >= 2 else 0.0
        report[feature] = {"metric": name, "slices": slices, "gap": float(gap)}
    return report


def max_slice_gap(slices: dict[str, Any]) -> tuple[str | None, float]:
    """The feature with the largest gap, and that gap."""
    if not slices:
        return None, 0.0
    feature = max(slices, key=lambda f: slices[f]["gap"])
    return feature, float(slices[feature]["gap"])
