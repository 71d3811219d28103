"""The service loop without Ray: every model once per tick, and gauges in the hub's format."""

from __future__ import annotations

from contracts.prometheus import MetricsHub
from monitoring.config import MonitoringConfig
from monitoring.service import MonitorService
from tests.clock import ManualClock
from tests.unit.monitoring import logdata as ld


def test_tick_scores_every_model_and_exports_gauges(tmp_path, registry_root):
    logs = str(tmp_path / "logs")
    ld.traffic(logs, "1", 600, ld.T0_US, 1000, seed=1)
    ld.traffic(logs, "1", 600, ld.T0_US + 10**6, 1000, seed=2, shift=1.5, first_id=600)
    cfg = MonitoringConfig(state_root=str(tmp_path / "state"), backfill_s=10**9, window={"by": "rows",
                           "size_rows": 600})
    roots = {"registry_root": registry_root, "log_root": logs, "data_root": "", "runs_root": ""}
    clock = ManualClock(ld.T0)
    service = MonitorService(cfg.model_dump(mode="json"), roots, clock=clock)
    clock.to(ld.T0.timestamp() + 100)
    summary = service.tick()
    assert list(summary) == ["demo"] and [w["dataset_drift"] for w in summary["demo"]["windows"]] == [False, True]
    lines = [line for _, line in service.status()["lines"]]
    assert any("DRIFT [income, tenure_months, balance, plan]" in line for line in lines)
    assert any("alert firing: MlgateDatasetDrift" in line for line in lines)
    hub = MetricsHub()
    hub.push("monitor", service.rec.drain())
    text = hub.render()
    assert 'mlgate_drift_dataset_drifted{model="demo",version="1"} 1' in text
    assert 'mlgate_drift_feature_drifted{model="demo",version="1",feature="income",role="input"} 1' in text
    assert 'mlgate_drift_feature_statistic{model="demo",version="1",feature="income",statistic="ks_pvalue"}' in text
    assert 'mlgate_drift_rows_total{model="demo"} 1200' in text
    assert 'mlgate_drift_alerts_firing{model="demo",version="1",alertname="MlgateDatasetDrift"} 1' in text
    clock.to(ld.T0.timestamp() + 200)
    assert service.tick()["demo"]["windows"] == []  # nothing new
