"""Tiny inline-SVG charts for the drift report: no scripts, no fonts, no network.

Every chart is a ``<svg class="chart" data-kind=...>`` with a title, axes, tick labels
and its marks (``polyline``/``rect``/``circle`` with ``<title>`` tooltips).
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

W, H = 440, 230
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 28, 42
REF, CUR, BAD, GRID = "#7a869a", "#1f6feb", "#d1242f", "#e4e7eb"
PALETTE = ("#1f6feb", "#2da44e", "#bf8700", "#8250df", "#d1242f", "#57606a")


def _fmt(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    a = abs(v)
    return f"{v:.3g}" if 1e-3 <= a < 1e4 else f"{v:.2e}"


class Frame:
    """Maps data coordinates to the plot area of one chart."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, log_y: bool = False) -> None:
        self.log_y = log_y
        if log_y:
            y0, y1 = math.log10(max(y0, 1e-300)), math.log10(max(y1, 1e-300))
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1.0)
        self.y0, self.y1 = y0, (y1 if y1 > y0 else y0 + 1.0)

    def x(self, v: float) -> float:
        return LEFT + (v - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)

    def y(self, v: float) -> float:
        if self.log_y:
            v = math.log10(max(v, 10.0 ** self.y0))
        return H - BOTTOM - (v - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)


def _open(kind: str, title: str) -> list[str]:
    return [f'<svg class="chart" data-kind="{kind}" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
            f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">',
            f'<text x="{LEFT}" y="16" class="ct">{escape(title)}</text>']


def _axes(f: Frame, x_ticks: list[tuple[float, str]], y_ticks: list[float]) -> list[str]:
    out = []
    for v in y_ticks:
        y = f.y(v)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" class="tk" text-anchor="end">{escape(_fmt(v))}</text>')
    for v, label in x_ticks:
        x = f.x(v)
        out.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" class="tk" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{H - BOTTOM}" y2="{H - BOTTOM}" stroke="#8c959f"/>')
    out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{H - BOTTOM}" stroke="#8c959f"/>')
    return out


def _legend(items: list[tuple[str, str]]) -> list[str]:
    out, x = [], LEFT
    for name, color in items:
        out.append(f'<rect x="{x}" y="{H - 16}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 14}" y="{H - 7}" class="tk">{escape(name)}</text>')
        x += 18 + 7 * len(name)
    return out


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def cdf(reference: np.ndarray, current: np.ndarray, title: str, points: int = 200) -> str:
    """Empirical CDFs of sorted reference and current values."""
    both = [a for a in (reference, current) if a.size]
    if not both:
        return empty(title, "no values")
    lo = min(float(np.quantile(a, 0.005)) for a in both)
    hi = max(float(np.quantile(a, 0.995)) for a in both)
    f = Frame(lo, hi, 0.0, 1.0)
    out = _open("cdf", title) + _axes(f, [(v, _fmt(v)) for v in _ticks(f.x0, f.x1)], _ticks(0.0, 1.0))
    for values, color, name in ((reference, REF, "reference"), (current, CUR, "current")):
        if not values.size:
            continue
        idx = np.unique(np.linspace(0, values.size - 1, min(points, values.size)).astype(np.int64))
        xs = np.clip(values[idx], f.x0, f.x1)
        pts = " ".join(f"{f.x(x):.1f},{f.y((i + 1) / values.size):.1f}" for x, i in zip(xs, idx))
        out.append(f'<polyline class="mark" fill="none" stroke="{color}" stroke-width="2" points="{pts}">'
                   f'<title>{name}: {values.size} values</title></polyline>')
    return "".join(out + _legend([("reference", REF), ("current", CUR)]) + ["</svg>"])


def bars(categories: list[str], reference: np.ndarray, current: np.ndarray, title: str) -> str:
    """Grouped bars of category shares, reference next to current."""
    if not categories:
        return empty(title, "no categories")
    top = float(max(reference.max(initial=0), current.max(initial=0), 1e-9))
    f = Frame(0, len(categories), 0.0, top * 1.1)
    slot = (W - LEFT - RIGHT) / len(categories)
    out = _open("bars", title) + _axes(f, [(i + 0.5, c[:10]) for i, c in enumerate(categories)],
                                       _ticks(0.0, top * 1.1))
    for i, cat in enumerate(categories):
        for j, (shares, color, name) in enumerate(((reference, REF, "reference"), (current, CUR, "current"))):
            x = LEFT + i * slot + slot * (0.12 + 0.38 * j)
            y = f.y(float(shares[i]))
            out.append(f'<rect class="mark" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.36:.1f}" '
                       f'height="{H - BOTTOM - y:.1f}" fill="{color}"><title>{escape(cat)} {name}: '
                       f'{float(shares[i]):.3f}</title></rect>')
    return "".join(out + _legend([("reference", REF), ("current", CUR)]) + ["</svg>"])


def series(x_labels: list[str], lines: list[tuple[str, list[float | None]]], title: str,
           threshold: float | None = None, log_y: bool = False, flagged: list[bool] | None = None) -> str:
    """Values over windows (one polyline per series); red dots where ``flagged``."""
    values = [v for _, ys in lines for v in ys if v is not None and math.isfinite(v)]
    if not values:
        return empty(title, "no windows")
    if threshold is not None:
        values.append(threshold)
    lo, hi = min(values), max(values)
    if log_y:
        lo, hi = max(min(v for v in values if v > 0) if any(v > 0 for v in values) else 1e-12, 1e-300), max(hi, 1.0)
    f = Frame(0, max(len(x_labels) - 1, 1), min(lo, 0.0) if not log_y else lo, hi * (1.0 if log_y else 1.05),
              log_y=log_y)
    step = max(1, len(x_labels) // 5)
    y_ticks = [10.0 ** v for v in _ticks(f.y0, f.y1)] if log_y else _ticks(f.y0, f.y1)
    out = _open("series", title) + _axes(f, [(i, x_labels[i]) for i in range(0, len(x_labels), step)], y_ticks)
    if threshold is not None:
        y = f.y(threshold)
        out.append(f'<line class="threshold" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="{BAD}" stroke-dasharray="4 3"><title>threshold {_fmt(threshold)}</title></line>')
    for k, (name, ys) in enumerate(lines):
        color = PALETTE[k % len(PALETTE)]
        pts = [(i, v) for i, v in enumerate(ys) if v is not None and math.isfinite(v)]
        if len(pts) > 1:
            path = " ".join(f"{f.x(i):.1f},{f.y(v):.1f}" for i, v in pts)
            out.append(f'<polyline class="mark" fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        for i, v in pts:
            bad = flagged is not None and flagged[i]
            out.append(f'<circle class="mark" cx="{f.x(i):.1f}" cy="{f.y(v):.1f}" r="{4 if bad else 2.5}" '
                       f'fill="{BAD if bad else color}"><title>{escape(x_labels[i])} {escape(name)}: '
                       f'{_fmt(v)}</title></circle>')
    if len(lines) > 1:
        out += _legend([(name, PALETTE[k % len(PALETTE)]) for k, (name, _) in enumerate(lines)])
    return "".join(out + ["</svg>"])


def empty(title: str, why: str) -> str:
    return "".join(_open("empty", title) + [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" class="tk">'
                                            f'{escape(why)}</text></svg>'])
