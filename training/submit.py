"""Submitting a training run as a Ray job through the Job Submission API, with token auth.

Ray 2.60's dashboard and job API take the cluster token as ``Authorization: Bearer
<token>`` (``X-Ray-Authorization`` for proxies); the client here sends it explicitly, so
it works whatever ``RAY_AUTH_MODE`` this process has. The token never goes over plain
HTTP beyond this machine: ``HOST:PORT`` means ``https://`` unless the host is loopback
(Ray's dashboard speaks HTTP only, so a remote one sits behind a TLS proxy or ingress),
and an explicit ``http://`` to another host is refused unless ``insecure`` says so. The
entry point is the one a user would give ``ray job submit``: ``python -m training train ...``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

from contracts.clock import Clock, utc_now, wall_clock_s
from contracts.errors import ConfigError
from training.config import TrainingConfig
from training.runs import code_revision

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass
class JobSpec:
    """What one training job does; becomes the ``python -m training train`` command line."""

    run_id: str
    registry_root: str
    data_root: str
    runs_root: str
    data: str | None = None
    data_version: int | None = None
    model: str = "demo"
    resume: bool = False
    config: TrainingConfig = field(default_factory=TrainingConfig)
    code_revision: str = field(default_factory=code_revision)

    def submission_id(self, clock: Clock = wall_clock_s) -> str:
        """The Ray job's id: the run id plus the UTC time of submission (a resumed run is a new job)."""
        return f"mlgate-train-{self.run_id}-{utc_now(clock).strftime('%H%M%S')}"

    def entrypoint(self, submission_id: str | None = None) -> str:
        config = self.config.model_dump_json(exclude={"insecure_job_api"})  # the submitter's, not the job's
        args = ["python", "-m", "training", "train", "--run-id", self.run_id, "--model", self.model,
                "--registry-root", self.registry_root, "--data-root", self.data_root,
                "--runs-root", self.runs_root, "--config-json", config, "--code-revision", self.code_revision]
        if self.resume:
            args.append("--resume")
        if self.data:
            args += ["--data", self.data]
        if self.data_version is not None:
            args += ["--data-version", str(self.data_version)]
        if submission_id:
            args += ["--submission-id", submission_id]
        return shlex.join(args)


def is_loopback(host: str | None) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_url(address: str) -> str:
    """``host:port`` or a URL of the dashboard / job API -> a URL: ``http://`` for a
    loopback host, ``https://`` for any other."""
    if "://" in address:
        return address
    return f"{'http' if is_loopback(urlsplit(f'//{address}').hostname) else 'https'}://{address}"


def check_transport(url: str, token: str | None, insecure: bool = False) -> None:
    """Refuse to send a cluster token in clear to another machine. A token goes with the
    request when one is given, or when this process runs with ``RAY_AUTH_MODE=token`` (Ray's
    client then adds its own)."""
    parts = urlsplit(url)
    sends_token = bool(token) or os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    if parts.scheme == "http" and sends_token and not insecure and not is_loopback(parts.hostname):
        raise ConfigError(f"{url}: refusing to send the cluster token over plain HTTP to another host; "
                          "use https:// (a TLS proxy or ingress in front of the dashboard), or pass --insecure "
                          "(training.insecure_job_api: true) on a network you trust")


def job_client(address: str, token: str | None, *, insecure: bool = False):
    """A ``JobSubmissionClient`` sending the cluster token (if any) as a bearer token; see
    :func:`api_url` and :func:`check_transport` for the scheme."""
    from ray.job_submission import JobSubmissionClient

    url = api_url(address)
    check_transport(url, token, insecure)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return JobSubmissionClient(url, headers=headers)


def submit(client, spec: JobSpec, clock: Clock = wall_clock_s) -> str:
    submission_id = spec.submission_id(clock)
    return client.submit_job(entrypoint=spec.entrypoint(submission_id), submission_id=submission_id,
                             metadata={"mlgate_run_id": spec.run_id})


async def _tail(client, job_id: str, out: TextIO, until: Callable[[str], bool] | None) -> bool:
    seen = ""
    async for chunk in client.tail_job_logs(job_id):
        out.write(chunk)
        out.flush()
        if until is not None:
            seen = (seen + chunk)[-65_536:]
            if until(seen):
                return True
    return False


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def follow(client, job_id: str, out: TextIO = sys.stdout, until: Callable[[str], bool] | None = None) -> str:
    """Stream the job's logs until it ends (or ``until(recent logs)`` holds); returns its status.

    Ctrl-C (or SIGTERM) stops the job, then keeps streaming until it has stopped.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        if asyncio.run(_tail(client, job_id, out, until)):
            return str(client.get_job_status(job_id).value)
    except KeyboardInterrupt:
        print(f"\nstopping job {job_id} ...", file=out, flush=True)
        client.stop_job(job_id)
        asyncio.run(_tail(client, job_id, out, None))
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    return wait(client, job_id)


def wait(client, job_id: str, timeout_s: float = 60.0) -> str:
    """The terminal status; the log stream closing can precede the status change slightly."""
    give_up = time.monotonic() + timeout_s
    while True:
        status = str(client.get_job_status(job_id).value)
        if status in TERMINAL or time.monotonic() > give_up:
            return status
        time.sleep(0.2)


def run(spec: JobSpec, address: str | None, token: Callable[[], str | None], *, num_cpus: int | None = None,
        insecure: bool = False, out: TextIO = sys.stdout) -> str:
    """Submit ``spec`` to ``address``, or to a private local cluster started for it; follow it.
    ``insecure``: allow the token over plain HTTP to a non-loopback ``address``."""
    if address:
        client = job_client(address, token(), insecure=insecure)
        job_id = submit(client, spec)
        print(f"submitted job {job_id} (run {spec.run_id}) to {api_url(address)}", file=out, flush=True)
        return follow(client, job_id, out)
    from training.localcluster import LocalCluster

    print("starting a local Ray cluster with the dashboard ...", file=out, flush=True)
    with LocalCluster(num_cpus=num_cpus) as cluster:
        client = job_client(cluster.dashboard_url, token())
        job_id = submit(client, spec)
        print(f"submitted job {job_id} (run {spec.run_id}) to {cluster.dashboard_url}", file=out, flush=True)
        return follow(client, job_id, out)
