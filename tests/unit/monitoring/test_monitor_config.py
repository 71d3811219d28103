"""The `monitoring` config section: typed, strict, described, set from YAML and environment."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from contracts.errors import ConfigError
from mlgate.config import load_config
from monitoring.config import MonitoringConfig


def test_defaults_and_environment():
    cfg = load_config(environ={"MLGATE_MONITORING__WINDOW__BY": "rows", "MLGATE_MONITORING__WINDOW__SIZE_ROWS": "500",
                               "MLGATE_MONITORING__DRIFT__METHODS": '{"income": "psi"}',
                               "MLGATE_MONITORING__ALERTS__WEBHOOK_URL": "http://127.0.0.1:9093/hook"})
    mon = cfg.monitoring
    assert (mon.window.by, mon.window.size_rows, mon.drift.methods) == ("rows", 500, {"income": "psi"})
    assert mon.alerts.webhook_url == "http://127.0.0.1:9093/hook" and mon.retrain.enabled is False


@pytest.mark.parametrize(("env", "field"), [
    ({"MLGATE_MONITORING__WINDOW__SIZE_S": "60", "MLGATE_MONITORING__WINDOW__SLIDE_S": "25"}, "monitoring.window"),
    ({"MLGATE_MONITORING__DRIFT__ALPHA": "2"}, "monitoring.drift.alpha"),
    ({"MLGATE_MONITORING__DRIFT__METHODS": '{"income": "magic"}'}, "monitoring.drift.methods.income"),
    ({"MLGATE_MONITORING__NOPE": "1"}, "monitoring.nope"),
])
def test_invalid_values_name_the_field(env, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(environ=env)


def _models(model: type[BaseModel]):
    yield model
    for f in model.model_fields.values():
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            yield from _models(f.annotation)


def test_every_field_is_described_and_strict():
    for model in _models(MonitoringConfig):
        assert model.model_config.get("extra") == "forbid", model.__name__
        for name, f in model.model_fields.items():
            assert f.description, f"{model.__name__}.{name}"
