"""The example Prometheus alerting rules load as YAML and use only series mlgate exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from contracts.prometheus import SERVING_METRICS
from monitoring.gauges import MONITOR_METRICS

RULES = Path(__file__).resolve().parents[3] / "cluster" / "prometheus" / "mlgate-alerts.yaml"
DURATION = re.compile(r"^\d+[smhdwy]$")


def rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    assert set(doc) == {"groups"} and doc["groups"]
    out = []
    for group in doc["groups"]:
        assert set(group) == {"name", "rules"} and group["rules"]
        out += group["rules"]
    return out


def test_every_rule_has_the_prometheus_structure():
    names = [r["alert"] for r in rules()]
    assert len(names) == len(set(names)) and {"MlgateDatasetDrift", "MlgateFeatureDrift",
                                              "MlgateLiveAccuracyLow"} <= set(names)
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert {"summary", "description"} <= set(rule["annotations"])
        if "for" in rule:
            assert DURATION.match(rule["for"]), rule["for"]


def test_expressions_use_exported_series_and_labels():
    known = {**MONITOR_METRICS, **SERVING_METRICS}
    for rule in rules():
        series = set(re.findall(r"\bmlgate_[a-z_]+", rule["expr"]))
        assert series and series <= set(known), rule["alert"]
        for name, selector in re.findall(r"\b(mlgate_[a-z_]+)\{([^}]*)\}", rule["expr"]):
            for label in re.findall(r"(\w+)\s*=", selector):
                assert label in known[name].labels, (rule["alert"], name, label)
        for grouping in re.findall(r"\b(?:by|on|ignoring)\s*\(([^)]*)\)", rule["expr"]):
            labels = {g.strip() for g in grouping.split(",")}
            assert any(labels <= set(known[s].labels) for s in series), (rule["alert"], labels)



def test_promtool_accepts_the_rules():
    """Prometheus's own checker (Debian's ``prometheus`` package ships ``promtool``)."""
    import subprocess

    import pytest

    from tests import debian

    promtool, why = debian.find_or_install(("promtool",), "prometheus")
    if promtool is None:
        pytest.skip(why)
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout
