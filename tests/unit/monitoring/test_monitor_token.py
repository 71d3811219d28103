"""The monitor's cluster token is read where it is used, never passed in (issue 16): the actor's
arguments (kept in Ray's GCS) hold a function, and a rotated token reaches the job API. No Ray:
a stand-in job API on 127.0.0.1 records the Authorization header of each request."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from ray import cloudpickle  # what Ray serializes an actor's arguments with

from mlgate import raycluster
from monitoring.config import MonitoringConfig
from monitoring.service import MonitorService

ROOTS = {"registry_root": "/registry", "log_root": "/logs", "data_root": "/data", "runs_root": "/runs"}


class JobApi:
    """Answers Ray's version check (the request every new JobSubmissionClient makes)."""

    def __init__(self) -> None:
        self.authorization: list[str | None] = []
        seen = self.authorization

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                seen.append(self.headers.get("Authorization"))
                body = json.dumps({"ray_version": "2.60.0", "version": "4", "ray_commit": "x"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def job_api():
    api = JobApi()
    yield api
    api.close()


def _service(job_api: JobApi, token_source) -> MonitorService:
    cfg = MonitoringConfig(retrain={"enabled": True, "job_address": job_api.url})
    return MonitorService(cfg.model_dump(mode="json"), ROOTS, ["demo"], {"workers": 1}, token_source)


def test_a_rotated_token_reaches_the_job_api(job_api, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "token-1")
    service = _service(job_api, raycluster.auth_token)
    first = service.job_client()
    made = len(job_api.authorization)  # the requests a new client makes
    assert service.job_client() is first and len(job_api.authorization) == made  # same token, same client
    monkeypatch.setenv("RAY_AUTH_TOKEN", "token-2")  # rotated while the monitor runs
    assert service.job_client() is not first
    assert job_api.authorization == ["Bearer token-1"] * made + ["Bearer token-2"] * made


def test_the_actor_arguments_hold_no_token(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "token-in-the-environment")
    cfg = MonitoringConfig(retrain={"enabled": True, "job_address": "http://127.0.0.1:8265"})
    # the constructor arguments start_actor gives Ray (which keeps them in the GCS)
    args = (cfg.model_dump(mode="json"), ROOTS, ["demo"], {"workers": 1}, raycluster.auth_token, True)
    assert b"token-in-the-environment" not in cloudpickle.dumps(args)
    with pytest.raises(TypeError, match="not the token"):
        MonitorService(cfg.model_dump(mode="json"), ROOTS, ["demo"], None, "token-in-the-environment")
