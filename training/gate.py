"""The evaluation gate: may a candidate replace production? Pure: evaluations in, decision out.

Both versions are evaluated on the same test split (and timed in the same process) before
this is called. Checks, each recorded with its numbers:

* ``comparable``: production can be evaluated on this split at all (same inputs, task, labels);
* ``metric:<name>``: no worse than production beyond a relative tolerance;
* ``slice_gap``: the largest gap between slices of one categorical feature within the limit;
* ``latency:<batch size>``: p50 at most ``max_latency_ratio`` x production's plus a slack,
  and p95 under the absolute limit when one is set.

Without a production version only the absolute checks apply.
"""

from __future__ import annotations

import math
from typing import Any

from contracts.scores import HIGHER_IS_BETTER
from training.config import GateConfig


def _check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "passed": bool(passed), "detail": detail}


def _metric_checks(cand: dict[str, float], prod: dict[str, float], cfg: GateConfig) -> list[dict[str, Any]]:
    checks = []
    for name, tol in sorted(cfg.metric_tolerances.items()):
        if name not in cand or name not in prod:
            continue
        c, p = cand[name], prod[name]
        if HIGHER_IS_BETTER.get(name, True):
            limit, ok, word = p - tol * abs(p), c >= p - tol * abs(p), "at least"
        else:
            limit, ok, word = p + tol * abs(p), c <= p + tol * abs(p), "at most"
        ok = ok and not math.isnan(c)
        checks.append(_check(f"metric:{name}", ok,
                             f"{name} {c:.4f} vs production {p:.4f}: must be {word} {limit:.4f} (tolerance {tol:.0%})"))
    return checks


def _latency_checks(cand: dict[str, Any], prod: dict[str, Any] | None, cfg: GateConfig) -> list[dict[str, Any]]:
    checks = []
    for bs, c in cand["batch_sizes"].items():
        problems, notes = [], [f"p50 {c['p50_ms']:.3f} ms, p95 {c['p95_ms']:.3f} ms"]
        if prod is not None and bs in prod["batch_sizes"]:
            p50 = prod["batch_sizes"][bs]["p50_ms"]
            limit = p50 * cfg.max_latency_ratio + cfg.latency_slack_ms
            notes.append(f"production p50 {p50:.3f} ms (limit {limit:.3f} ms)")
            if c["p50_ms"] > limit:
                problems.append(f"p50 over {limit:.3f} ms")
        if cfg.max_p95_latency_ms is not None and c["p95_ms"] > cfg.max_p95_latency_ms:
            problems.append(f"p95 over {cfg.max_p95_latency_ms:.3f} ms")
        detail = f"batch {bs}: " + ", ".join(notes) + ("; " + ", ".join(problems) if problems else "")
        checks.append(_check(f"latency:{bs}", not problems, detail))
    return checks


def decide(candidate: dict[str, Any], production: dict[str, Any] | None, cfg: GateConfig, *,
           production_version: int | None = None, incompatible: str | None = None) -> dict[str, Any]:
    """The gate record: ``passed``, the failed checks' ``reasons``, every check, the settings.

    ``candidate`` / ``production``: ``evaluate()`` output plus a ``latency`` entry.
    ``incompatible``: why production could not be evaluated on this split, if it could not.
    """
    checks = []
    if production_version is not None and incompatible:
        checks.append(_check("comparable", False,
                             f"production version {production_version} cannot be evaluated here: {incompatible}"))
    if production is not None:
        checks += _metric_checks(candidate["metrics"], production["metrics"], cfg)
    feature, gap = candidate["max_slice_gap"]["feature"], candidate["max_slice_gap"]["gap"]
    checks.append(_check("slice_gap", gap <= cfg.max_slice_gap,
                         f"largest slice gap {gap:.4f} ({feature or 'no categorical feature'}); "
                         f"limit {cfg.max_slice_gap:.4f}"))
    checks += _latency_checks(candidate["latency"], production["latency"] if production else None, cfg)
    return {
        "passed": all(c["passed"] for c in checks),
        "reasons": [c["detail"] for c in checks if not c["passed"]],
        "checks": checks,
        "compared_with": production_version if production is not None else None,
        "config": cfg.model_dump(mode="json"),
    }
