"""The HTML drift report: built from logs and labels, self-contained, and rendered by a real browser."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from contracts import feedback as fb
from monitoring.config import MonitoringConfig
from monitoring.report import build_report, write_report
from monitoring.retrain import Roots
from tests.clock import ManualClock
from tests.unit.monitoring import browser
from tests.unit.monitoring import logdata as ld

SHIFTED = {"income", "tenure_months", "balance", "plan"}


@pytest.fixture(scope="module")
def report(tmp_path_factory, registry_root) -> str:
    d = tmp_path_factory.mktemp("report")
    logs = str(d / "logs")
    ld.traffic(logs, "1", 2400, ld.T0_US, 1_500_000, seed=1, segments=4)  # 12:00 - 13:00
    ld.traffic(logs, "1", 2400, ld.T0_US + 3600 * 10**6, 1_500_000, seed=2, shift=1.5, segments=4, first_id=2400)
    ids = [f"r{i}" for i in range(0, 4800, 10)]
    clock = ManualClock(ld.T0 + dt.timedelta(hours=2))  # labels come in after the traffic; then the report
    fb.FeedbackWriter(logs).write("demo", fb.table(ids, [0] * len(ids), ["stay"] * len(ids), [None] * len(ids),
                                                   clock.utc()))
    cfg = MonitoringConfig(state_root=str(d / "state"), window={"size_s": 1200, "slide_s": 600},
                           live={"min_labelled_rows": 20})
    html = build_report("demo", cfg, Roots(registry_root, logs, "", ""), ld.T0, ld.T0 + dt.timedelta(hours=2),
                        clock=clock.advance(60))
    return str(write_report(str(d / "out" / "report.html"), html))


def test_report_is_self_contained_with_plots_and_a_summary(report):
    html = open(report, encoding="utf-8").read()
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//|@import|url\(", html)  # nothing fetched
    assert html.count('<svg class="chart" data-kind="cdf"') == 5 + 1  # numeric inputs (age: personal) + output
    assert html.count('<svg class="chart" data-kind="bars"') == 3 + 1  # categorical inputs + the output label
    assert 'id="summary-v1"' in html and "not tested: personal data" in html
    for feature in SHIFTED:
        assert f'data-feature="{feature}" data-drifted="true"' in html
    assert 'data-feature="credit_score" data-drifted="false"' in html
    assert "Live metrics per window" in html and "accuracy" in html
    assert "generated 2026-11-20T14:01:00+00:00" in html  # the report's clock, not the machine's


@pytest.fixture(scope="module")
def chromium() -> str:
    path, why = browser.find_or_install()
    if path is None:
        pytest.skip(f"no headless browser: {why}")
    return path


def test_report_renders_in_a_real_browser(report, chromium):
    dom = browser.dump_dom(chromium, report)
    (body,) = browser.attrs(dom, "body")
    charts = browser.attrs(dom, "svg")
    assert int(body["data-charts"]) == len(charts) == 2 + 2 * 10  # timeline, then 2 per feature
    drawn = [c for c in charts if c["data-kind"] != "empty"]
    assert int(body["data-charts-drawn"]) == len(drawn)  # every plot laid out marks with a real size
    assert all(int(c["data-visible-marks"]) > 0 for c in drawn)
    rows = browser.attrs(dom, "tr")
    drifted = {r["data-feature"] for r in rows if r.get("data-drifted") == "true"}
    assert drifted == SHIFTED | {"probabilities[churn]", "label"}


def test_report_screenshot_is_not_blank(report, chromium, tmp_path):
    pixels = browser.screenshot(chromium, report, str(tmp_path / "shot.png"))
    rgb = pixels[..., :3].astype(np.int32)
    assert pixels.shape[0] == 2000 and pixels.shape[1] == 1280
    inked = (rgb.min(axis=2) < 200).mean()
    assert 0.01 < inked < 0.6  # text, tables and plots, not an empty or failed page
    blue = ((rgb[..., 2] > 180) & (rgb[..., 0] < 80)).sum()  # the current-data lines and bars
    assert blue > 500
