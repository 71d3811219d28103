"""Names that become paths (models, datasets, runs, monitors) follow one pattern."""

from __future__ import annotations

import pytest

from contracts.errors import InvalidInput
from contracts.names import check_name
from monitoring.state import StateStore
from registry import Registry
from training.datastore import DataStore
from training.runs import RunStore

BAD = ["", ".", "..", "../etc", "a/b", "/abs", ".hidden", "-flag", "a b", "x" * 129, "naïve", "a\nb", None, 7]


@pytest.mark.parametrize("name", ["demo", "m", "churn_v2", "demo-20261206-120000-abc123", "a.b", "9lives", "x" * 128])
def test_valid_names(name):
    assert check_name(name, "model name") == name


@pytest.mark.parametrize("name", BAD)
def test_invalid_names_are_refused_naming_the_field(name):
    with pytest.raises(InvalidInput, match=r"^run id: .* is not a valid name"):
        check_name(name, "run id")


@pytest.mark.parametrize("name", ["../outside", "a/b", ".staging"])
def test_every_store_checks_the_name_before_touching_a_path(tmp_path, name):
    with pytest.raises(InvalidInput, match="model name"):
        Registry(str(tmp_path / "reg")).get(name)
    with pytest.raises(InvalidInput, match="model name"):
        Registry(str(tmp_path / "reg")).publish(name, {"model.pt": b"x", "schema.json": b"{}"})
    with pytest.raises(InvalidInput, match="dataset name"):
        DataStore(str(tmp_path / "data")).get(name)
    with pytest.raises(InvalidInput, match="run id"):
        RunStore(str(tmp_path / "runs")).create(name, {})
    with pytest.raises(InvalidInput, match="model name"):
        StateStore(str(tmp_path / "state"), name)
    assert not (tmp_path / "outside").exists() and sorted(p.name for p in tmp_path.iterdir()) in ([], ["runs"])
