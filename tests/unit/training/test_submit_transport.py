"""The cluster token never goes over plain HTTP beyond this machine (issue 16): ``HOST:PORT``
means https:// unless the host is loopback; an explicit http:// to another host is refused
unless the caller says --insecure. No Ray, no network."""

from __future__ import annotations

import pytest

from contracts.errors import ConfigError
from mlgate.cli import build_parser, main
from training.config import TrainingConfig
from training.submit import JobSpec, api_url, check_transport, job_client


@pytest.mark.parametrize("address,url", [
    ("HEAD:8265", "https://HEAD:8265"),
    ("10.0.0.5:8265", "https://10.0.0.5:8265"),
    ("ray-head.ml.svc:8265", "https://ray-head.ml.svc:8265"),
    ("127.0.0.1:8265", "http://127.0.0.1:8265"),
    ("127.4.5.6:8265", "http://127.4.5.6:8265"),
    ("localhost:8265", "http://localhost:8265"),
    ("[::1]:8265", "http://[::1]:8265"),
    ("http://10.0.0.5:8265", "http://10.0.0.5:8265"),  # explicit: kept, then checked
    ("https://ray.example:443", "https://ray.example:443"),
])
def test_api_url_is_https_beyond_loopback(address, url):
    assert api_url(address) == url


@pytest.fixture
def no_ray_auth_mode(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)


def test_token_over_plain_http_to_another_host_is_refused(no_ray_auth_mode):
    with pytest.raises(ConfigError, match="plain HTTP") as err:
        job_client("http://10.0.0.5:8265", "tok-123")  # refused before any connection
    assert "--insecure" in str(err.value) and "tok-123" not in str(err.value)
    check_transport("http://10.0.0.5:8265", "tok-123", insecure=True)
    for allowed in ("http://127.0.0.1:8265", "http://localhost:8265", "http://[::1]:8265", "https://10.0.0.5:8265"):
        check_transport(allowed, "tok-123")
    check_transport("http://10.0.0.5:8265", None)  # nothing secret is sent


def test_ray_adds_its_token_in_token_mode_so_that_is_refused_too(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(ConfigError, match="plain HTTP"):
        check_transport("http://10.0.0.5:8265", None)


def test_train_refuses_plain_http_with_the_token(no_ray_auth_mode, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "tok-123")
    monkeypatch.setenv("MLGATE_RUNS_ROOT", str(tmp_path / "runs"))
    assert main(["train", "--data", "churn", "--address", "http://10.0.0.5:8265"]) == 2
    err = capsys.readouterr().err
    assert "plain HTTP" in err and "--insecure" in err and "tok-123" not in err


def test_insecure_flag_and_config_field():
    args = build_parser().parse_args(["train", "--data", "churn", "--address", "http://h:8265", "--insecure"])
    assert args.insecure is True
    assert build_parser().parse_args(["train", "--data", "churn"]).insecure is False
    assert TrainingConfig().insecure_job_api is False


def test_the_submitters_transport_setting_is_not_part_of_the_job():
    spec = JobSpec(run_id="r1", registry_root="/r", data_root="/d", runs_root="/runs",
                   config=TrainingConfig(insecure_job_api=True), code_revision="abc")
    assert "insecure_job_api" not in spec.entrypoint()
