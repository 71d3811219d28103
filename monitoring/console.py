"""Plain-text renderings for the command line (``mlgate monitor check`` and ``history``)."""

from __future__ import annotations

from collections import OrderedDict

from monitoring.offline import RangeResult


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def check_text(res: RangeResult) -> str:
    lines = [f"{res.model}: {res.since.isoformat()} .. {res.until.isoformat()}: {res.rows} rows "
             f"from {res.segments} segments"]
    if not res.overall:
        lines.append("  no logged rows of a version with a reference profile in this range")
    for version, r in res.overall.items():
        verdict = "DRIFT" if r.dataset_drift else ("no drift" if r.judged else "too few rows for a verdict")
        lines.append(f"version {version}: {verdict}; drifted share {r.drifted_share:.2f} "
                     f"({', '.join(r.drifted_features) or 'no feature drifted'}); prediction drift: "
                     f"{'yes' if r.prediction_drift else 'no'}")
        live = {k: v for k, v in (r.live or {}).items()}
        if live.get("labelled_rows"):
            lines.append("  live: " + ", ".join(f"{k} {_fmt(v)}" for k, v in live.items()))
        lines.append(f"  {'feature':<22} {'role':<6} {'method':<16} {'statistic':>10} {'p corr.':>9} "
                     f"{'thresh.':>7} {'miss ref':>8} {'miss cur':>8}  drifted")
        for f in r.features:
            lines.append(f"  {f.feature:<22} {f.role:<6} {f.method:<16} {_fmt(f.value):>10} "
                         f"{_fmt(f.pvalue_adjusted):>9} {_fmt(f.threshold):>7} {f.missing_share_ref:>8.3f} "
                         f"{f.missing_share_cur:>8.3f}  {'DRIFT' if f.drifted else ''}"
                         f"{' MISSING' if f.missing_drifted else ''}")
        for name, why in r.excluded.items():
            lines.append(f"  {name:<22} not tested: {why}")
    return "\n".join(lines)


def history_text(model: str, triggers: list[dict], alerts: list[dict], limit: int) -> str:
    """Triggers grouped by id (reason, job, outcome), newest last; then the alert log."""
    grouped: OrderedDict[str, dict] = OrderedDict()
    for rec in triggers:
        grouped.setdefault(rec["trigger_id"], {}).update({k: v for k, v in rec.items() if v is not None} |
                                                        {f"{rec['event']}_at": rec.get("at")})
    lines = [f"retraining history of {model}: {len(grouped)} trigger(s)"]
    for tid, g in list(grouped.items())[-limit:]:
        outcome = g.get("status") or ("submission failed: " + g["error"] if "error" in g else "running")
        result = g.get("result") or {}
        registered = f", registered v{result['version']} as {result.get('stage', 'candidate')}" \
            if result.get("version") is not None else ""
        gate = result.get("gate") or {}
        gate_text = f", gate {'passed' if gate.get('passed') else 'failed'}" if gate else ""
        lines.append(f"{g.get('triggered_at', '?')}  {tid}  version {g.get('version')}: {g.get('reason')}")
        lines.append(f"    job {g.get('job_id', '-')} (run {g.get('run_id', '-')}, data {g.get('data_name', '-')}"
                     f" v{g.get('data_version', '-')}, {g.get('live_rows', 0)} live rows): "
                     f"{outcome}{registered}{gate_text}")
    if alerts:
        lines.append(f"alert log of {model}: {len(alerts)} transition(s)")
        for a in alerts[-limit:]:
            labels = a["labels"]
            target = labels.get("feature") or labels.get("metric") or ""
            lines.append(f"{a['at']}  {a['status']:<8} {labels.get('alertname')} v{labels.get('version')} {target} "
                         f"- {a['annotations'].get('summary', '')} (delivered: {a.get('delivered')})")
    return "\n".join(lines)
