"""The drift report: one self-contained HTML page (inline CSS and SVG, no network).

Per version: the verdict over the whole range, a summary table (one row per input and
output feature: method and why, statistic, corrected p-value, threshold, missing
shares, drifted windows), the drifted share, the multivariate score (where the version
has its reference) and live metrics over the windows, then
per feature the reference-vs-current distribution (CDFs for numbers, category shares
for categories) and its deciding statistic over the windows. Then the alert log and
the retraining history of the range, when the monitor has run.
"""

from __future__ import annotations

from html import escape

import numpy as np

from monitoring.drift import FeatureResult, WindowResult
from monitoring.offline import RangeResult
from monitoring.report import svg

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:18px 0 4px}.meta{color:#57606a}.verdict{padding:8px 12px;border-radius:6px;margin:8px 0}
.verdict.drift{background:#ffebe9;border:1px solid #ff8182}.verdict.ok{background:#dafbe1;border:1px solid #4ac26b}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}
th{background:#f6f8fa}td.l,th.l{text-align:left}tr.drifted td{background:#fff5f5}.badge{font-size:11px;padding:1px 6px;
border-radius:10px;background:#d1242f;color:#fff;vertical-align:middle}.row{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{border:1px solid #eaeef2;border-radius:4px;background:#fff}.ct{font-size:12px;font-weight:600}
.tk{font-size:10px;fill:#57606a}
"""
SCRIPT = """
window.addEventListener('load', function () {
  var charts = document.querySelectorAll('svg.chart'), drawn = 0;
  charts.forEach(function (c) {
    var visible = 0;
    c.querySelectorAll('.mark').forEach(function (m) {
      var b = m.getBBox(); if (b.width > 0 || b.height > 0) { visible++; }
    });
    c.setAttribute('data-visible-marks', String(visible));
    if (visible > 0) { drawn++; }
  });
  document.body.setAttribute('data-charts', String(charts.length));
  document.body.setAttribute('data-charts-drawn', String(drawn));
});
"""


def _num(v, digits: int = 4) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return escape(str(v))


def _label(r: WindowResult) -> str:
    if r.by == "time":
        return r.end[11:16] if r.end[:10] == r.start[:10] else r.end[5:16]
    return str(int(r.window_id.rsplit(":", 1)[1]) + 1)


def _summary_table(version: str, overall: WindowResult, windows: list[WindowResult]) -> str:
    head = ("feature", "role", "kind", "method", "why", "statistic", "p (corrected)", "threshold", "drifted",
            "missing ref", "missing cur", "drifted windows")
    rows = []
    for f in overall.features:
        per = [w for w in windows if any(g.feature == f.feature and g.role == f.role for g in w.features)]
        hits = sum(1 for w in per for g in w.features if g.feature == f.feature and g.role == f.role and g.drifted)
        cls = ' class="drifted"' if f.drifted else ""
        rows.append(
            f'<tr{cls} data-feature="{escape(f.feature)}" data-drifted="{str(f.drifted).lower()}">'
            f'<td class="l">{escape(f.feature)}</td><td class="l">{f.role}</td><td class="l">{f.kind}</td>'
            f'<td class="l">{f.method}</td><td class="l">{escape(f.rule)}</td><td>{_num(f.value)}</td>'
            f'<td>{_num(f.pvalue_adjusted, 3)}</td><td>{_num(f.threshold, 3)}</td>'
            f'<td>{"yes" if f.drifted else "no"}</td><td>{f.missing_share_ref:.3f}</td>'
            f'<td>{f.missing_share_cur:.3f}{" &#9888;" if f.missing_drifted else ""}</td>'
            f'<td>{hits}/{len(per)}</td></tr>')
    for name, why in overall.excluded.items():
        rows.append(f'<tr data-feature="{escape(name)}" data-drifted="false"><td class="l">{escape(name)}</td>'
                    f'<td class="l">input</td><td class="l" colspan="10">not tested: {escape(why)}</td></tr>')
    th = "".join(f'<th class="l">{h}</th>' if i < 5 else f"<th>{h}</th>" for i, h in enumerate(head))
    return (f'<table class="summary" id="summary-v{escape(version)}"><thead><tr>{th}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _distribution(res: RangeResult, version: str, f: FeatureResult) -> str:
    ctx, closed = res.contexts[version], res.closed[version]
    profile = ctx.profile if f.role == "input" else ctx.outputs_profile
    window = closed.inputs if f.role == "input" else closed.outputs
    title = f"{f.feature}: reference vs current"
    if profile is None or window is None:
        return svg.empty(title, "no reference")
    if f.kind == "numeric":
        i = profile.numeric.names.index(f.feature)
        return svg.cdf(profile.numeric.sorted.column(i), window.numeric_values().column(i), title + " (CDF)")
    i = profile.categorical.names.index(f.feature)
    ref_counts = profile.categorical.counts[profile.categorical.counts_slice(i)].astype(np.float64)
    cur_all, cur_missing = window.categorical_counts()
    cur_counts = cur_all[profile.categorical.counts_slice(i)].astype(np.float64)
    ref = np.append(ref_counts, profile.categorical.n_missing[i])
    cur = np.append(cur_counts, cur_missing[i])
    cats = [str(v) for v in profile.categorical.vocabularies[i]] + ["(unseen)", "(missing)"]
    return svg.bars(cats, ref / max(ref.sum(), 1), cur / max(cur.sum(), 1), title + " (shares)")


def _over_time(f: FeatureResult, windows: list[WindowResult]) -> str:
    labels, values, flagged = [], [], []
    for w in windows:
        g = next((g for g in w.features if g.feature == f.feature and g.role == f.role), None)
        if g is None:
            continue
        labels.append(_label(w))
        values.append(g.pvalue_adjusted if g.pvalue is not None else g.value)
        flagged.append(g.drifted)
    if f.pvalue is not None:
        return svg.series(labels, [(f.method, values)], f"{f.feature}: corrected {f.method} p-value per window",
                          threshold=f.threshold, log_y=True, flagged=flagged)
    return svg.series(labels, [(f.method, values)], f"{f.feature}: {f.method} per window",
                      threshold=f.threshold, flagged=flagged)


def _timeline(windows: list[WindowResult], drift_share: float) -> str:
    labels = [_label(w) for w in windows]
    share = svg.series(labels, [("drifted share", [w.drifted_share for w in windows])],
                       "Share of drifted input features per window", threshold=drift_share,
                       flagged=[w.dataset_drift for w in windows])
    names = [m for m in ("accuracy", "roc_auc", "log_loss", "rmse", "mae")
             if any(w.live and m in w.live for w in windows)]
    estimated = [m for m in ("accuracy", "roc_auc") if any(w.estimated and m in w.estimated for w in windows)]
    lines = [(m, [(w.live or {}).get(m) for w in windows]) for m in names]
    lines += [(f"{m} (estimated)", [(w.estimated or {}).get(m) for w in windows]) for m in estimated]
    title = "Live metrics per window (feedback labels" + (", and estimated by CBPE)" if estimated else ")")
    live = svg.series(labels, lines, title) if lines else svg.empty(title, "no labelled windows")
    return f'<div class="row timeline">{share}{_multivariate(windows, labels)}{live}</div>'


def _multivariate(windows: list[WindowResult], labels: list[str]) -> str:
    """The reconstruction score per window beside its bounds (none: the version has no reference)."""
    scored = [w.multivariate for w in windows]
    if not any(scored):
        return ""
    pick = lambda key: [m[key] if m and m["rows"] else None for m in scored]  # noqa: E731
    return svg.series(labels, [("reconstruction error", pick("score")), ("upper bound", pick("upper")),
                               ("lower bound", pick("lower"))],
                      "Multivariate drift: PCA reconstruction error per window",
                      flagged=[w.multivariate_drift for w in windows])


def _mv_verdict(res: RangeResult, version: str, overall: WindowResult) -> str:
    """The whole range's multivariate verdict, and the slower domain-classifier test on it."""
    m = overall.multivariate
    if m is None or not m["rows"]:
        return ""
    domain = res.closed[version].multivariate.domain_test()
    test = "" if domain is None or not domain.evaluated else (
        f'; domain classifier AUC <span data-domain-auc="{domain.auc:.4f}">{domain.auc:.3f}</span>, permutation p '
        f'{domain.p_value:.3g}, {domain.rows_ref} + {domain.rows_cur} rows')
    return (f'multivariate drift: <b data-multivariate-drift="{str(overall.multivariate_drift).lower()}">'
            f'{"yes" if overall.multivariate_drift else "no"}</b> (reconstruction error {m["score"]:.4g}, '
            f'upper bound {m["upper"]:.4g}{test}); ')


def _version(res: RangeResult, version: str, drift_share: float) -> str:
    overall = res.overall[version]
    windows = [w for w in res.windows if w.version == version]
    drift = overall.dataset_drift or overall.prediction_drift
    live = ", ".join(f"{k} {_num(v)}" for k, v in (overall.live or {}).items())
    tested = sum(f.role == "input" and f.evaluated for f in overall.features)
    verdict = (f'<div class="verdict {"drift" if drift else "ok"}" '
               f'data-dataset-drift="{str(overall.dataset_drift).lower()}">'
               f'Dataset drift: <b>{"yes" if overall.dataset_drift else "no"}</b> '
               f'({len(overall.drifted_features)} of {tested} '
               f'features: {escape(", ".join(overall.drifted_features) or "none")}); prediction drift: '
               f'<b>{"yes" if overall.prediction_drift else "no"}</b>; {_mv_verdict(res, version, overall)}'
               f'{overall.rows} rows; '
               f'{len(windows)} windows; live: {escape(live or "no labels")}</div>')
    parts = [f'<section class="version" id="v{escape(version)}"><h2>Version {escape(version)}</h2>', verdict,
             _summary_table(version, overall, windows), _timeline(windows, drift_share)]
    for f in overall.features:
        badge = ' <span class="badge">drifted</span>' if f.drifted else ""
        parts.append(f'<div class="feature" id="f-{escape(version)}-{escape(f.feature)}"><h3>{escape(f.feature)}'
                     f' <small class="meta">({f.role}, {f.kind})</small>{badge}</h3><div class="row">'
                     f'{_distribution(res, version, f)}{_over_time(f, windows)}</div></div>')
    return "".join(parts + ["</section>"])


def _log_table(title: str, anchor: str, records: list[dict], columns: list[tuple[str, callable]]) -> str:
    if not records:
        return f'<section id="{anchor}"><h2>{title}</h2><p class="meta">none in this range</p></section>'
    head = "".join(f'<th class="l">{c}</th>' for c, _ in columns)
    body = "".join("<tr>" + "".join(f'<td class="l">{escape(str(fn(r)))}</td>' for _, fn in columns) + "</tr>"
                   for r in records)
    return (f'<section id="{anchor}"><h2>{title}</h2><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table></section>')


def render(res: RangeResult, drift_share: float, alerts: list[dict] = (), triggers: list[dict] = (),
           settings: str = "", generated_at: str = "") -> str:
    """The whole page as a string; ``generated_at``: when it was made (ISO), shown in its header."""
    versions = "".join(_version(res, v, drift_share) for v in res.overall)
    versions = versions or '<p class="meta">No logged rows in range.</p>'
    alert_cols = [("at", lambda r: r["at"]), ("status", lambda r: r["status"]),
                  ("alert", lambda r: r["labels"].get("alertname")), ("version", lambda r: r["labels"].get("version")),
                  ("feature / metric", lambda r: r["labels"].get("feature") or r["labels"].get("metric") or ""),
                  ("summary", lambda r: r["annotations"].get("summary", "")),
                  ("delivered", lambda r: r.get("delivered"))]
    trigger_cols = [("at", lambda r: r["at"]), ("trigger", lambda r: r["trigger_id"]), ("event", lambda r: r["event"]),
                    ("detail", lambda r: r.get("reason") or r.get("job_id") or r.get("error") or r.get("status"))]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Drift report: {escape(res.model)}'
            f'</title><style>{CSS}</style></head><body data-model="{escape(res.model)}">'
            f'<header><h1>Drift report: {escape(res.model)}</h1><p class="meta">{res.since.isoformat()} to '
            f'{res.until.isoformat()} &middot; {res.rows} rows from {res.segments} log segments &middot; windows: '
            f'{escape(res.spec.describe())} &middot; {escape(settings)} &middot; '
            f'generated {escape(generated_at)}</p></header>'
            f'{versions}{_log_table("Alerts", "alerts", list(alerts), alert_cols)}'
            f'{_log_table("Retraining", "retraining", list(triggers), trigger_cols)}'
            f'<script>{SCRIPT}</script></body></html>')
