"""The servers under test and their names on the command line: mlgate (``mlgate up`` on
Ray), its gateway without Ray (diagnostics), plain Ray Serve (optionally with its
HAProxy ingress), the bare uvicorn reference, and the peers in their own venvs
(``external``: TorchServe, PyTriton).

Every mlgate variant runs with access control on, as a user runs it: its key store and
admin key file under the run's work dir (``credentials.api_key``), and every request the
harness sends carries the run's ``bench`` API key. The ``-noauth`` variants switch access
control off (``serving.auth.enabled=false``) and get no key: with their auth-on twins, what
access control costs. The ``-tls`` variants serve HTTPS (``serving.tls``) with the run's
certificate; ``nginx-tls`` is ``mlgate-noray`` behind nginx terminating TLS (``peers/nginx_tls.py``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass, field

from benchmarks.serving import credentials
from benchmarks.serving import models as bm
from benchmarks.serving.base import PEERS_DIR, Context, Launch, Server, Unavailable, base_env
from benchmarks.serving.external import PyTriton, TorchServe
from benchmarks.serving.procs import free_port

BATCH = {"max_batch_size": 64, "batch_wait_timeout_s": 0.002}
NO_BATCH = {"max_batch_size": 1, "batch_wait_timeout_s": 0.0}


# -- mlgate --------------------------------------------------------------------------
OBSERVABILITY = ("prediction_log", "metrics")  # sections of ServingConfig with an ``enabled`` switch


def observability_overrides() -> tuple[dict[str, str], list[str]]:
    """Env overrides switching prediction logging and metrics on, for those of the
    sections that this build of ``serving.config.ServingConfig`` has."""
    from serving.config import ServingConfig

    env: dict[str, str] = {}
    switched: list[str] = []
    for section in OBSERVABILITY:
        info = ServingConfig.model_fields.get(section)
        if info is not None and "enabled" in getattr(info.annotation, "model_fields", {}):
            env[f"MLGATE_SERVING__{section.upper()}__ENABLED"] = "true"
            switched.append(f"serving.{section}.enabled")
    return env, switched


@dataclass
class Mlgate(Server):
    """``mlgate up`` on a private local Ray (as a user runs it), all bench models deployed."""

    name: str = "mlgate"
    ready_timeout_s: float = 420.0
    ready_log_marker: str = "mlgate serving on"  # printed by `mlgate up` once deploy() returned
    observability: list[str] = field(default_factory=list)
    auth: bool = True  # serving.auth on, requests with the run's API key
    tls: bool = False  # serving.tls on with the run's certificate

    def served(self, ctx: Context) -> list[str]:
        out = super().served(ctx)
        return out + [bm.HEAVY_NOBATCH] if bm.HEAVY in out else out

    def model_configs(self, ctx: Context) -> dict:
        return {m: (NO_BATCH if m == bm.HEAVY_NOBATCH else BATCH) for m in self.served(ctx)}

    def launch(self, ctx: Context) -> Launch:
        obs_env, self.observability = observability_overrides()
        env = base_env(
            RAY_ADDRESS="local",  # never join another engineer's cluster
            MLGATE_REGISTRY_ROOT=ctx.bench.registry_root,
            MLGATE_LOG_ROOT=str(ctx.work / "mlgate-logs"),
            MLGATE_SERVING__MODELS=json.dumps(self.model_configs(ctx)),
            MLGATE_SERVING__SERVE_MODELS=json.dumps(self.served(ctx)),
            MLGATE_RAY__DASHBOARD_PORT=str(free_port()),
            **obs_env,
            **(credentials.api_key(ctx.work).env() if self.auth else credentials.AUTH_OFF_ENV),
            **(credentials.certificates(ctx.work).env() if self.tls else {}),
        )
        return Launch([sys.executable, "-m", "mlgate", "up", "--host", "127.0.0.1", "--port", str(self.port)],
                      env, str(ctx.repo))

    def request_headers(self, ctx: Context) -> dict[str, str]:
        return credentials.api_key(ctx.work).headers() if self.auth else {}

    def ca_file(self, ctx: Context) -> str | None:
        return str(credentials.certificates(ctx.work).ca_file) if self.tls else None


@dataclass
class MlgateReplicas(Mlgate):
    """``mlgate up`` with several gateway replicas sharing the port (SO_REUSEPORT)."""

    name: str = "mlgate-2replicas"
    replicas: int = 2

    def launch(self, ctx: Context) -> Launch:
        launch = super().launch(ctx)
        launch.env["MLGATE_SERVING__NUM_REPLICAS"] = str(self.replicas)
        return launch


@dataclass
class MlgateNoRay(Mlgate):
    """mlgate's gateway (same config) in one process without Ray: what Ray costs."""

    name: str = "mlgate-noray"
    ready_timeout_s: float = 180.0
    ready_log_marker: str = "ready on"

    def launch(self, ctx: Context) -> Launch:
        launch = super().launch(ctx)
        launch.argv = [sys.executable, str(PEERS_DIR / "mlgate_noray.py"), "--port", str(self.port)]
        return launch


@dataclass
class MlgateAsgi(MlgateNoRay):
    """mlgate's gateway without Ray behind another HTTP server over ASGI (uvicorn's httptools
    or h11 protocol, granian; ``peers/mlgate_asgi.py``): compared with ``mlgate-noray``, what
    mlgate's own server is worth (issue 15)."""

    name: str = "mlgate-uvicorn-httptools"
    ready_log_marker: str = ""

    def prepare(self, ctx: Context) -> None:
        if self.name == "mlgate-granian" and importlib.util.find_spec("granian") is None:
            raise Unavailable("granian is not installed: pip install -e '.[bench]' (make bench does it)")

    def launch(self, ctx: Context) -> Launch:
        launch = super().launch(ctx)
        launch.argv = [sys.executable, str(PEERS_DIR / "mlgate_asgi.py"), "--server", self.name.removeprefix("mlgate-"),
                       "--port", str(self.port)]
        launch.env["PYTHONPATH"] = str(ctx.repo)  # granian's worker imports the bridge by module name
        return launch


@dataclass
class NginxTls(MlgateNoRay):
    """``mlgate-noray`` (plain HTTP, access control on) behind nginx terminating TLS on the
    port, keep-alive on both sides (``peers/nginx_tls.py``): what mlgate's own TLS is worth
    against the usual deployment."""

    name: str = "nginx-tls"

    def prepare(self, ctx: Context) -> None:
        if shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            raise Unavailable("nginx not found: apt-get install -y nginx-light (Debian's package)")

    def launch(self, ctx: Context) -> Launch:
        launch = super().launch(ctx)
        certs = credentials.certificates(ctx.work)
        launch.argv = [sys.executable, str(PEERS_DIR / "nginx_tls.py"), "--port", str(self.port),
                       "--upstream-port", str(free_port()), "--dir", str(ctx.work / f"nginx-{self.port}"),
                       "--cert-file", str(certs.cert_file), "--key-file", str(certs.key_file)]
        return launch

    def ca_file(self, ctx: Context) -> str | None:
        return str(credentials.certificates(ctx.work).ca_file)


# -- peers in the main environment ---------------------------------------------------
@dataclass
class Bare(Server):
    name: str = "bare-uvicorn"
    ready_timeout_s: float = 120.0

    def launch(self, ctx: Context) -> Launch:
        return Launch([sys.executable, str(PEERS_DIR / "bare_uvicorn.py"), "--port", str(self.port),
                       *self._model_args(ctx)], base_env(), str(ctx.repo))


@dataclass
class PlainRayServe(Server):
    name: str = "ray-serve"
    haproxy: bool = False

    def launch(self, ctx: Context) -> Launch:
        env = base_env(RAY_ADDRESS="local", PYTHONPATH=str(PEERS_DIR))
        if self.haproxy:
            state = ctx.work / "hap"
            state.mkdir(parents=True, exist_ok=True)
            env.update(RAY_SERVE_ENABLE_HA_PROXY="1", RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=str(state / "haproxy.cfg"),
                       RAY_SERVE_HAPROXY_SOCKET_PATH=str(state / "admin.sock"),
                       RAY_SERVE_HAPROXY_SERVER_STATE_BASE=str(state),
                       RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH=str(state / "metrics.sock"),
                       RAY_SERVE_HAPROXY_STATS_PORT=str(free_port()),
                       RAY_SERVE_HAPROXY_METRICS_PORT=str(free_port()))
        return Launch([sys.executable, str(PEERS_DIR / "plain_ray_serve.py"), "--port", str(self.port),
                       *self._model_args(ctx)], env, str(ctx.repo))


SERVERS = {
    "mlgate": Mlgate,
    "ray-serve": PlainRayServe,
    "torchserve": TorchServe,
    "pytriton": PyTriton,
    "bare-uvicorn": Bare,
    # opt-in: diagnostics
    "mlgate-noray": MlgateNoRay,
    "mlgate-2replicas": MlgateReplicas,
    "mlgate-uvicorn-httptools": MlgateAsgi,
    "mlgate-uvicorn-h11": lambda: MlgateAsgi(name="mlgate-uvicorn-h11"),
    "mlgate-granian": lambda: MlgateAsgi(name="mlgate-granian"),
    # opt-in: what access control and TLS cost
    "mlgate-noauth": lambda: Mlgate(name="mlgate-noauth", auth=False),
    "mlgate-noray-noauth": lambda: MlgateNoRay(name="mlgate-noray-noauth", auth=False),
    "mlgate-tls": lambda: Mlgate(name="mlgate-tls", tls=True),
    "mlgate-noray-tls": lambda: MlgateNoRay(name="mlgate-noray-tls", tls=True),
    "nginx-tls": NginxTls,
    "ray-serve-haproxy": lambda: PlainRayServe(name="ray-serve-haproxy", haproxy=True),
}
DEFAULT_SERVERS = ("mlgate", "ray-serve", "torchserve", "pytriton", "bare-uvicorn")
PEERS = ("ray-serve", "ray-serve-haproxy", "torchserve", "pytriton")  # "best peer" is among these
