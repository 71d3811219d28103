"""Scoring one window: per-feature results, the dataset verdict and the prediction drift.

The kernels compute every statistic (``ReferenceProfile.score``); this module applies
the method rule (``monitoring.methods``), corrects the p-values of the tested input
features together (``kernels.adjust_pvalues``) and decides with
``kernels.dataset_drift``. Outputs are judged apart, with their own correction: the
dataset verdict is about the inputs, ``prediction_drift`` about the outputs. The multivariate
score (``kernels.ReconstructionWindow``, where the version has its reference) is reported
beside them, with its own verdict (``multivariate_drift``): a change in how features move
together that no per-feature test sees. A binary classifier's metrics estimated from its
probabilities (CBPE, ``estimated``) are reported beside the live metrics that labels give.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from contracts.clock import iso_s
from kernels import adjust_pvalues, dataset_drift
from monitoring import methods
from monitoring.config import DriftConfig
from monitoring.reference import VersionContext
from monitoring.windows import ClosedWindow

LEVEL_CAP = 1e6  # severity of p-value 0 (JSON has no infinity)


@dataclass
class FeatureResult:
    feature: str
    role: str  # input | output
    kind: str  # numeric | categorical
    method: str
    rule: str
    value: float
    pvalue: float | None
    pvalue_adjusted: float | None
    threshold: float
    evaluated: bool
    drifted: bool
    level: float  # >= 1: over the threshold (alpha / p_adjusted, or value / threshold)
    missing_share_ref: float
    missing_share_cur: float
    missing_drifted: bool
    n_cur: int
    stats: dict = field(default_factory=dict)


@dataclass
class WindowResult:
    model: str
    version: str
    window_id: str
    by: str
    start_us: int
    end_us: int
    rows: int
    judged: bool  # rows >= window.min_rows; otherwise no verdict, no alerts
    features: list[FeatureResult]
    drifted_share: float
    dataset_drift: bool
    prediction_drift: bool
    alpha: float
    correction: str
    excluded: dict = field(default_factory=dict)
    live: dict | None = None
    evaluated_at: float = 0.0
    multivariate: dict | None = None  # score, lower, upper, reference, rows, level, drifted; None: not scored
    estimated: dict | None = None  # CBPE: metric -> estimate, and scored_rows; None: no CBPE reference

    @property
    def multivariate_drift(self) -> bool:
        return bool(self.multivariate and self.multivariate["drifted"])

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.role == "input" and f.drifted]

    @property
    def start(self) -> str:
        return _iso(self.start_us)

    @property
    def end(self) -> str:
        return _iso(self.end_us)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "features"}
        out["features"] = [dict(f.__dict__) for f in self.features]
        return {**out, "start": self.start, "end": self.end, "drifted_features": self.drifted_features}

    @classmethod
    def from_dict(cls, d: dict) -> WindowResult:
        d = {k: v for k, v in d.items() if k not in ("start", "end", "drifted_features")}
        d["features"] = [FeatureResult(**f) for f in d["features"]]
        return cls(**d)


def _iso(us: int) -> str:
    return iso_s(us / 1e6)


def judge(rows: list[dict], role: str, cfg: DriftConfig) -> list[FeatureResult]:
    """Apply the method rule and the correction to the kernel rows of one profile."""
    chosen = [methods.choose(r["feature"], r["kind"], r["n_ref"], r["n_cur"], cfg) for r in rows]
    tested = [i for i, (m, _) in enumerate(chosen) if methods.is_test(m) and rows[i]["evaluated"]]
    pvals = np.array([rows[i][methods.TESTS[chosen[i][0]][1]] for i in tested], dtype=np.float64)
    adjusted = dict(zip(tested, adjust_pvalues(pvals, cfg.correction).tolist())) if tested else {}
    out = []
    for i, (row, (method, why)) in enumerate(zip(rows, chosen)):
        threshold = methods.threshold_of(method, cfg)
        value = float(row[methods.statistic_of(method)])
        pvalue = float(row[methods.TESTS[method][1]]) if methods.is_test(method) else None
        p_adj = adjusted.get(i, 1.0) if pvalue is not None else None
        evaluated = bool(row["evaluated"])
        if pvalue is not None:
            drifted = evaluated and p_adj < cfg.alpha
            level = min(cfg.alpha / max(p_adj, 1e-300), LEVEL_CAP) if evaluated else 0.0
        else:
            drifted = evaluated and value > threshold
            level = min(value / threshold, LEVEL_CAP) if evaluated else 0.0
        miss_ref, miss_cur = float(row["missing_share_ref"]), float(row["missing_share_cur"])
        seen = row["n_cur"] > 0 or miss_cur > 0
        out.append(FeatureResult(
            feature=row["feature"], role=role, kind=row["kind"], method=method, rule=why, value=value,
            pvalue=pvalue, pvalue_adjusted=p_adj, threshold=threshold, evaluated=evaluated,
            drifted=bool(drifted), level=float(level), missing_share_ref=miss_ref, missing_share_cur=miss_cur,
            missing_drifted=bool(seen and miss_cur - miss_ref > cfg.max_missing_increase),
            n_cur=int(row["n_cur"]), stats=_stats(row)))
    return out


def _stats(row: dict) -> dict:
    skip = {"feature", "kind", "evaluated", "drifted", "pvalue", "pvalue_adjusted"}
    return {k: float(v) for k, v in row.items() if k not in skip}


def evaluate(window: ClosedWindow, ctx: VersionContext, cfg: DriftConfig, min_rows: int,
             now_s: float) -> WindowResult:
    """Score one closed window against the version's references (``evaluated_at`` = ``now_s``)."""
    kw = {"alpha": cfg.alpha, "correction": cfg.correction, "drift_share": cfg.drift_share, "base": cfg.js_base}
    report = ctx.profile.score(window.inputs, **kw)
    inputs = judge([r for r in report.to_rows() if r["feature"] not in ctx.excluded], "input", cfg)
    judged = window.rows >= min_rows
    share, verdict = dataset_drift([f.drifted for f in inputs], [f.evaluated for f in inputs], cfg.drift_share)
    outputs: list[FeatureResult] = []
    if cfg.outputs and window.outputs is not None and ctx.outputs_profile is not None:
        outputs = judge(ctx.outputs_profile.score(window.outputs, **kw).to_rows(), "output", cfg)
    if not judged:  # too few rows: statistics are kept, nothing is called drifted
        for f in inputs + outputs:
            f.drifted = f.missing_drifted = False
    multivariate = None if window.multivariate is None else multivariate_of(window.multivariate.score(), judged)
    return WindowResult(
        model=window.model, version=window.version, window_id=window.window_id, by=window.spec.by,
        start_us=int(window.start_us), end_us=int(window.end_us), rows=int(window.rows), judged=judged,
        features=inputs + outputs, drifted_share=float(share), dataset_drift=bool(judged and verdict),
        prediction_drift=bool(judged and any(f.drifted for f in outputs)), alpha=cfg.alpha,
        correction=cfg.correction, excluded=dict(ctx.excluded),
        evaluated_at=now_s, multivariate=multivariate,
        estimated=None if window.cbpe is None else estimated_of(window.cbpe))


def estimated_of(cbpe) -> dict:
    """A ``kernels.CbpeWindow``'s estimates as a record (None where undefined: JSON has no NaN)."""
    return {**{k: (v if v == v else None) for k, v in cbpe.estimate().items()}, "scored_rows": cbpe.rows}


def multivariate_of(score, judged: bool) -> dict:
    """A ``kernels.MultivariateScore`` as a record; ``level``: distance above the reference
    mean in units of the upper bound's (>= 1: over it)."""
    half = score.upper - score.reference
    level = max(score.score - score.reference, 0.0) / half if score.evaluated and half > 0 else 0.0
    return {"score": score.score, "lower": score.lower, "upper": score.upper, "reference": score.reference,
            "rows": score.rows, "level": min(level, LEVEL_CAP), "drifted": bool(judged and score.drifted),
            "below": bool(judged and score.below)}
