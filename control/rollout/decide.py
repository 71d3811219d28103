"""A rollout's decision at one evaluation, from its phase and that phase's evidence: pure.

Each check compares the candidate with the production version on the same window and is
``passed``, ``failed`` or, below its minimum evidence, ``waiting``. One failed check fails
the rollout at once, whatever the time in the phase (a broken candidate is taken out of
traffic within one evaluation interval). The phase passes when its time is up and every
check it needs passed; the live accuracy (or loss) check counts once each version has
``min_labels`` labelled rows and never holds a phase (labels may never come). Time up
with too little evidence holds the phase (the decision says which check waits).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from control.rollout.evidence import Evidence
from registry.rollouts import SHADOW, RolloutChecks

Verdict = Literal["passed", "failed", "waiting"]
# labels (and estimates) may never come: waiting on them holds nothing
OPTIONAL = frozenset({"accuracy_drop", "loss_ratio", "estimated_accuracy_drop"})
Action = Literal["hold", "advance", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    value: float | None
    threshold: float
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"action": self.action, "reason": self.reason, "checks": [c.to_dict() for c in self.checks]}


def _verdict(enough: bool, ok: bool) -> Verdict:
    return "waiting" if not enough else ("passed" if ok else "failed")


def _errors(ev: Evidence, c: RolloutChecks) -> Check:
    b, k = ev.baseline, ev.candidate
    enough = b.requests >= c.min_requests and k.requests >= c.min_requests
    delta = (k.error_rate - b.error_rate) if enough else None
    detail = f"candidate {k.failed}/{k.requests} failed, production {b.failed}/{b.requests}"
    return Check("error_rate", _verdict(enough, delta is not None and delta <= c.max_error_rate_increase), delta,
                 c.max_error_rate_increase, detail)


def _latency(ev: Evidence, c: RolloutChecks, which: str, limit: float) -> Check:
    b, k = getattr(ev.baseline, which), getattr(ev.candidate, which)
    enough = ev.baseline.requests >= c.min_requests and ev.candidate.requests >= c.min_requests \
        and b is not None and k is not None
    ratio = k / b if enough and b > 0 else (1.0 if enough else None)
    ok = enough and (k <= limit * b + c.latency_slack_ms)
    detail = f"candidate {k:.3g} ms, production {b:.3g} ms" if enough else "too few answered requests"
    return Check(which.replace("_ms", "_ratio"), _verdict(enough, ok), ratio, limit, detail)


def _divergence(ev: Evidence, c: RolloutChecks) -> Check:
    enough = ev.js_divergence is not None and ev.compared_rows >= c.min_requests
    ok = enough and ev.js_divergence <= c.max_js_divergence
    return Check("js_divergence", _verdict(enough, ok), ev.js_divergence, c.max_js_divergence,
                 f"{ev.compared_rows} rows compared")


def _agreement(ev: Evidence, c: RolloutChecks) -> Check:
    enough = ev.shadow_agreement is not None and ev.shadow_rows >= c.min_shadow_rows
    ok = enough and ev.shadow_agreement >= c.min_shadow_agreement
    return Check("shadow_agreement", _verdict(enough, ok), ev.shadow_agreement, c.min_shadow_agreement,
                 f"{ev.shadow_rows} shadowed rows paired")


def _quality(ev: Evidence, c: RolloutChecks) -> Check | None:
    """Live accuracy (or loss) from labels; None when neither version has any label yet."""
    b, k = ev.baseline, ev.candidate
    if not b.labelled and not k.labelled:
        return None
    enough = b.labelled >= c.min_labels and k.labelled >= c.min_labels
    detail = f"{k.labelled} labelled candidate rows, {b.labelled} production"
    if b.accuracy is not None or k.accuracy is not None:
        drop = (b.accuracy - k.accuracy) if enough and None not in (b.accuracy, k.accuracy) else None
        return Check("accuracy_drop", _verdict(drop is not None, drop is not None and drop <= c.max_accuracy_drop),
                     drop, c.max_accuracy_drop, detail)
    ratio = k.mae / b.mae if enough and b.mae and k.mae is not None else (1.0 if enough and b.mae == 0 == k.mae
                                                                            else None)
    return Check("loss_ratio", _verdict(ratio is not None, ratio is not None and ratio <= c.max_loss_ratio), ratio,
                 c.max_loss_ratio, detail)


def _estimated_quality(ev: Evidence, c: RolloutChecks) -> Check | None:
    """Before labels: the accuracy CBPE estimates for each version from its own calibrated
    scores (binary classifiers whose versions store a CBPE reference); None without estimates."""
    b, k = ev.baseline, ev.candidate
    if b.estimated_accuracy is None or k.estimated_accuracy is None:
        return None
    enough = b.estimated_rows >= c.min_requests and k.estimated_rows >= c.min_requests
    drop = b.estimated_accuracy - k.estimated_accuracy if enough else None
    return Check("estimated_accuracy_drop", _verdict(enough, enough and drop <= c.max_accuracy_drop), drop,
                 c.max_accuracy_drop, f"estimated {k.estimated_accuracy:.4g} for the candidate on {k.estimated_rows} "
                 f"rows, {b.estimated_accuracy:.4g} for production on {b.estimated_rows} (CBPE, no labels needed)")


def checks_of(phase: str, ev: Evidence, c: RolloutChecks, has_prediction: bool = True) -> list[Check]:
    """The checks of ``phase`` on ``ev``: errors and latency always, the divergence of the
    predictions (when the model has one per row), agreement in the shadow phase, live
    quality once labels exist, else the accuracy CBPE estimates."""
    out = [_errors(ev, c), _latency(ev, c, "p50_ms", c.max_p50_ratio), _latency(ev, c, "p99_ms", c.max_p99_ratio)]
    if has_prediction:
        out.append(_divergence(ev, c))
        if phase == SHADOW:
            out.append(_agreement(ev, c))
    quality = _quality(ev, c) or _estimated_quality(ev, c)  # labels when there are some, else the estimate
    return out + ([quality] if quality is not None else [])


def decide(phase: str, elapsed_s: float, phase_s: float, ev: Evidence, c: RolloutChecks,
           has_prediction: bool = True) -> Decision:
    """Fail on any failed check; advance when ``elapsed_s >= phase_s`` and all passed; else hold."""
    checks = checks_of(phase, ev, c, has_prediction)
    failed = [ch for ch in checks if ch.verdict == "failed"]
    if failed:
        return Decision("fail", "; ".join(f"{ch.name} {_fmt(ch.value)} beyond {ch.threshold:g} ({ch.detail})"
                                          for ch in failed), checks)
    waiting = [ch.name for ch in checks if ch.verdict == "waiting" and ch.name not in OPTIONAL]
    if elapsed_s < phase_s:
        return Decision("hold", f"{phase}: {elapsed_s:.0f} of {phase_s:.0f} s", checks)
    if waiting:
        return Decision("hold", f"{phase}: too little evidence for {', '.join(waiting)}", checks)
    return Decision("advance", f"{phase}: every check passed", checks)


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"
