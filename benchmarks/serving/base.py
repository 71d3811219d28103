"""What every server under test is: how it is prepared, launched, addressed.

Every server gets the same weights (``models.prepare``), listens on 127.0.0.1 on free
ports, and is driven with the same request bytes (v2 JSON; TorchServe gets the same
JSON body on its own inference API). A peer that cannot be installed or started
raises :class:`Unavailable` with the reason; the harness reports it in the table.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.serving import models as bm
from benchmarks.serving.procs import free_port

PEERS_DIR = Path(__file__).resolve().parent / "peers"
REPO = PEERS_DIR.parents[2]


class Unavailable(Exception):
    """This server cannot run here; the message says why."""


@dataclass(frozen=True)
class Target:
    model: str  # label in the table
    url: str
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()  # sent with every request (Authorization)
    ca_file: str | None = None  # https: the CA the server's certificate is checked against


@dataclass
class Context:
    repo: Path
    work: Path  # this run's scratch directory
    venvs: Path  # reusable peer venvs
    bench: bm.BenchModels
    models: tuple[str, ...]  # requested bench models: mlp, heavy, demo
    install_timeout_s: float = 900.0
    expected: dict = field(default_factory=dict)  # model -> mlgate's first output for its body (answers.py)


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "MLGATE_"))}
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    return env


@dataclass
class Server:
    name: str
    tensor_models: tuple[str, ...] = bm.TENSOR_MODELS  # which bench models it can serve
    serves_demo: bool = True
    stop_signal: int = signal.SIGTERM
    signal_all: bool = False  # signal the whole tree at once (TorchServe's Java ignores its parent)
    ready_timeout_s: float = 300.0
    ready_log_marker: str = ""  # also wait for this line in the server's log (all replicas up)
    port: int = field(default_factory=free_port)

    def served(self, ctx: Context) -> list[str]:
        return [m for m in ctx.models if m in self.tensor_models or (m == bm.DEMO and self.serves_demo)]

    def prepare(self, ctx: Context) -> None:
        """Install or build what the server needs; raise Unavailable when it cannot."""

    def launch(self, ctx: Context) -> Launch:
        raise NotImplementedError

    def request_headers(self, ctx: Context) -> dict[str, str]:
        """Headers every request to this server carries (credentials); none by default."""
        return {}

    def ca_file(self, ctx: Context) -> str | None:
        """The CA of the server's certificate when it speaks TLS; None for plain HTTP."""
        return None

    def targets(self, ctx: Context) -> list[Target]:
        ca_file = self.ca_file(ctx)
        base = f"{'https' if ca_file else 'http'}://127.0.0.1:{self.port}"
        headers = tuple(self.request_headers(ctx).items())
        return [Target(m, f"{base}/v2/models/{m}/infer", bm.body_for(m), headers=headers, ca_file=ca_file)
                for m in self.served(ctx)]

    def _model_args(self, ctx: Context) -> list[str]:
        args = []
        for m in self.served(ctx):
            args += ["--model", m if m == bm.DEMO else f"{m}={ctx.bench.torchscript[m]}"]
        return args + ["--registry-root", ctx.bench.registry_root]
