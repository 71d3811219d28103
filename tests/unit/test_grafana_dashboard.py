"""The rollout dashboard (``cluster/grafana/mlgate-rollout.json``): a well-formed Grafana
dashboard on a Prometheus datasource variable, and every query names only metrics, and labels,
that a real gateway exports: checked against a live scrape of one (its own HTTP server on
loopback, no Ray) after the traffic and the events those series count (requests, a refusal,
an admin's unload and load, a stalled shadow's dropped copies)."""

from __future__ import annotations

import http.client
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

from contracts.prometheus import SERVING_METRICS
from tests.keys import make_keys
from tests.models import promote_by_hand
from tests.polling import until
from tests.reference import ROW

DASHBOARD = Path(__file__).resolve().parents[2] / "cluster" / "grafana" / "mlgate-rollout.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
V2 = json.dumps({"inputs": [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64",
                             "data": [v]} for k, v in ROW.items()]}).encode()
BAD = json.dumps({"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": ["old"]}]}).encode()

# -- PromQL: just enough of a tokenizer to find the metric names and labels a query names -------
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
             "unless", "inf", "nan"}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def _blank(expr: str) -> str:
    """``expr`` with string literals, label matchers and range/subscript brackets emptied and
    grouping clauses removed: what is left names metrics, functions and keywords."""
    expr = _STRING.sub('""', expr)
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)
    return _GROUPING.sub(" ", expr)  # ``sum by (a) (x)`` -> ``sum   (x)``: an aggregation reads as a function


def metric_names(expr: str) -> set[str]:
    """The metrics a PromQL expression names: identifiers that are not functions (followed by
    ``(``), keywords, or numbers."""
    text = _blank(expr)
    names = set()
    for m in _IDENT.finditer(text):
        if m.start() > 0 and text[m.start() - 1] in "$0123456789.":
            continue  # a variable's or a number's tail (1e3)
        rest = text[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in _KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def matcher_labels(expr: str) -> dict[str, set[str]]:
    """Per metric named with matchers (``name{a="x", b=~"y"}``): the label names matched."""
    out: dict[str, set[str]] = {}
    for name, body in _SELECTOR.findall(_STRING.sub('""', expr)):
        out.setdefault(name, set()).update(m.group(1) for m in re.finditer(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)",
                                                                            body))
    return out


def grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in _GROUPING.findall(_STRING.sub('""', expr)) for label in group.split(",")
            if label.strip()}


def variable_metric(query: str) -> tuple[str, str]:
    """(metric, label) of a Grafana ``label_values(metric, label)`` variable query."""
    m = re.fullmatch(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_]\w*)\s*\)", query.strip())
    assert m is not None, query
    return m.group(1), m.group(2)


def test_the_tokenizer():
    expr = ('histogram_quantile(0.99, sum by (version, le) (rate(mlgate_x_bucket{model="$model", '
            'route!="a{b}"}[$__rate_interval]))) / ignoring(version) group_left sum(up offset 5m) * 1e3')
    assert metric_names(expr) == {"mlgate_x_bucket", "up"}
    assert matcher_labels(expr) == {"mlgate_x_bucket": {"model", "route"}}
    assert grouping_labels(expr) == {"version", "le"}
    assert variable_metric("label_values(mlgate_requests_total, model)") == ("mlgate_requests_total", "model")


# -- the dashboard --------------------------------------------------------------------------------
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(doc: dict) -> list[dict]:
    """Every panel, rows' nested panels included."""
    out = []
    for p in doc["panels"]:
        out += [p, *p.get("panels", [])]
    return out


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target."""
    return [(p["title"], t["expr"]) for p in panels(dashboard()) for t in p.get("targets", [])]


def variable(doc: dict, name: str) -> dict:
    return next(v for v in doc["templating"]["list"] if v["name"] == name)


def test_the_dashboard_is_well_formed():
    doc = dashboard()
    assert doc["uid"] == "mlgate-rollout" and doc["title"] and isinstance(doc["schemaVersion"], int)
    ids = [p["id"] for p in panels(doc)]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids)
    source = variable(doc, "datasource")
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    model = variable(doc, "model")
    assert model["type"] == "query" and model["datasource"] == DATASOURCE and not model["multi"]
    metric, label = variable_metric(model["query"]["query"])
    assert model["definition"] == model["query"]["query"] and label in SERVING_METRICS[metric].labels
    graphs = [p for p in panels(doc) if p["type"] != "row"]
    assert len(graphs) >= 9
    for p in graphs:
        assert p["datasource"] == DATASOURCE, p["title"]
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(set(refs)) == len(refs), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE, p["title"]
            assert 'model="$model"' in t["expr"], p["title"]
            if all("version" in SERVING_METRICS[_base(n)].labels for n in metric_names(t["expr"])):
                assert "version" in grouping_labels(t["expr"]), (p["title"], "a per-version panel")


def test_the_dashboard_has_the_rollout_panels():
    named = {name for _, expr in queries() for name in metric_names(expr)}
    assert named >= {"mlgate_requests_total", "mlgate_request_duration_seconds_bucket",
                     "mlgate_queue_wait_seconds_bucket", "mlgate_model_compute_seconds_bucket",
                     "mlgate_shadow_dropped_total", "mlgate_model_version_state", "mlgate_model_loads_total",
                     "mlgate_model_unloads_total"}
    quantiles = [expr for _, expr in queries() if "histogram_quantile" in expr]
    assert {q.split("(")[1].split(",")[0] for q in quantiles} == {"0.5", "0.99"}


def test_queries_name_declared_metrics_and_their_labels():
    for title, expr in queries():
        names = metric_names(expr)
        defs = {n: SERVING_METRICS[_base(n)] for n in names}  # KeyError: a metric the gateway never exports
        allowed = {label for n, d in defs.items() for label in d.labels} | {"le"}
        assert grouping_labels(expr) <= allowed, (title, expr)
        for name, labels in matcher_labels(expr).items():
            own = set(defs[name].labels) | ({"le"} if name.endswith("_bucket") else set())
            assert labels <= own, (title, name, labels)
            assert defs[name].kind == "histogram" or name == defs[name].name, (title, name)


def test_promtool_parses_every_query(tmp_path):
    from tests import debian

    promtool, why = debian.find_or_install(("promtool",), "prometheus")
    if promtool is None:
        pytest.skip(why)
    concrete = [expr.replace("$__rate_interval", "1m").replace("$model", "demo") for _, expr in queries()]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e}
                                                        for i, e in enumerate(concrete)]}]}
    path = tmp_path / "rules.yaml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _base(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in SERVING_METRICS:
            return name[: -len(suffix)]
    return name


# -- a live gateway --------------------------------------------------------------------------------
class Stalls(nn.Module):
    """The demo model, after a few hundred dependent matrix products: a shadow that cannot keep up."""

    def __init__(self, inner: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.inner = inner
        self.w = torch.randn(192, 192) / 14.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acc = self.w
        for _ in range(100):
            acc = torch.tanh(acc @ self.w)
        return self.inner(x) + 0.0 * acc.sum()


def _stalling_copy(reg) -> int:
    """Demo version 1 published again with a slow model: the next version."""
    source = reg.get("demo", 1)
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(Stalls(source.load_torch())), buf)
    files = {f: source.read(f) for f in source.manifest["files"]}
    return reg.publish("demo", {**files, "model.pt": buf.getvalue()}).version


def call(port: int, method: str, path: str, key: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def sample_names(text: str) -> set[str]:
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and line[0] != "#"}


@pytest.fixture(scope="module")
def scrape(demo_registry, tmp_path_factory) -> set[str]:
    """The sample names of a live gateway's /metrics after requests, a refusal, an admin's unload
    and load of ``demo``, and copies a stalled shadow version had to drop."""
    from registry import Registry
    from registry.traffic import TrafficBook, TrafficPolicy
    from serving.config import ServingConfig
    from serving.gateway import Gateway

    root = tmp_path_factory.mktemp("grafana") / "registry"
    shutil.copytree(demo_registry, root)
    reg = Registry(str(root))
    promote_by_hand(reg, 1, "demo")  # the primary: without production the newest version would be
    shadow = _stalling_copy(reg)
    TrafficBook(reg).set("demo", TrafficPolicy(shadows={shadow: 1.0}), actor="test")
    keys = make_keys(tmp_path_factory.mktemp("grafana-auth"))
    scraper = keys.create("prometheus", "metrics:read")
    cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth=keys.auth, torch_num_threads=1,
                        models={"demo": {"max_batch_size": 1, "max_queue_size": 1}},
                        prediction_log={"flush_interval_s": 3600})
    gw = Gateway(str(root), cfg, log_root=str(tmp_path_factory.mktemp("grafana-logs")))
    try:
        def metrics() -> str:
            status, body = call(gw.port, "GET", "/metrics", scraper)
            assert status == 200
            return body.decode()

        def serving_shadow() -> bool:
            return f'mlgate_model_version_state{{model="demo",version="{shadow}",state="serving"}}' in metrics()

        until(serving_shadow, 120.0, "the shadow version serving")

        def infer_until_a_copy_drops() -> bool:  # one at a time: the shadow's queue of one fills behind it
            assert call(gw.port, "POST", "/v2/models/demo/infer", keys.admin, V2)[0] == 200
            return "mlgate_shadow_dropped_total" in metrics()

        until(infer_until_a_copy_drops, 60.0, "a shadow copy dropped", interval_s=0.0)
        assert call(gw.port, "POST", "/v2/models/demo/infer", keys.admin, BAD)[0] == 400
        assert call(gw.port, "POST", "/v2/repository/models/demo/unload", keys.admin, b"")[0] == 200
        until(lambda: "mlgate_model_unloads_total" in metrics(), 60.0, "demo unloaded")
        assert call(gw.port, "POST", "/v2/repository/models/demo/load", keys.admin, b"")[0] == 200
        assert call(gw.port, "POST", "/v2/models/demo/infer", keys.admin, V2)[0] == 200
        return until(lambda: (lambda names: names if "mlgate_model_loads_total" in names else None)(
            sample_names(metrics())), 30.0, "demo loaded again")
    finally:
        gw.stop()


def test_every_metric_a_query_names_is_in_a_live_scrape(scrape):
    named = {n for _, expr in queries() for n in metric_names(expr)}
    named.add(variable_metric(variable(dashboard(), "model")["query"]["query"])[0])
    missing = sorted(n for n in named if n not in scrape)
    assert missing == [], f"named by the dashboard, absent from the gateway's /metrics: {missing}"
    assert "mlgate_rejections_total" in scrape and "mlgate_request_duration_seconds_bucket" in scrape
