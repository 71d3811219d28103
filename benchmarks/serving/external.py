"""The peers that live in virtual environments of their own (made from this interpreter,
under ``benchmarks/out/venvs/``, with this venv's torch pinned): TorchServe and
Triton through PyTriton. Their package lists are pyproject's ``bench-*`` extras.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from benchmarks.serving import models as bm
from benchmarks.serving.base import PEERS_DIR, REPO, Context, Launch, Server, Target, Unavailable, base_env
from benchmarks.serving.procs import free_port


def peer_packages(extra: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    """A peer's venv: pyproject's optional-dependency group ``extra``, plus this venv's torch."""
    try:
        import tomllib

        groups = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        packages = tuple(groups[extra])
    except (ImportError, OSError, KeyError):
        packages = fallback
    return (f"torch=={metadata.version('torch')}", *packages)



def ensure_venv(path: Path, packages: tuple[str, ...], timeout_s: float, log: Path) -> Path:
    """A venv at ``path`` made from this interpreter, with ``packages``; reused when current."""
    python = path / "bin" / "python"
    marker = path / ".bench-packages"
    wanted = "\n".join(packages)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log, "ab") as out:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True, stdout=out,
                           stderr=subprocess.STDOUT, timeout=120)
            subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True, stdout=out,
                           stderr=subprocess.STDOUT, timeout=timeout_s)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        raise Unavailable(f"cannot install {' '.join(packages)}: {exc}; {' | '.join(tail)}") from None
    marker.write_text(wanted)
    return python


@dataclass
class TorchServe(Server):
    name: str = "torchserve"
    serves_demo: bool = True  # peers/ts_demo_handler.py: the exported preprocessing in numpy
    signal_all: bool = True
    management_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    python: Path | None = None

    def prepare(self, ctx: Context) -> None:
        if not self.served(ctx):
            return
        if subprocess.run(["java", "-version"], capture_output=True).returncode != 0:
            raise Unavailable("java (17) is not installed")
        packages = peer_packages("bench-torchserve", ("torchserve==0.12.0", "torch-model-archiver==0.12.0",
                                                      "pyyaml", "numpy"))
        self.python = ensure_venv(ctx.venvs / "torchserve", packages, ctx.install_timeout_s,
                                  ctx.venvs / "torchserve-install.log")
        store = ctx.work / "torchserve" / "model-store"
        store.mkdir(parents=True, exist_ok=True)
        for m in self.served(ctx):
            handler = [str(PEERS_DIR / "ts_handler.py")]
            if m == bm.DEMO:  # the numpy preprocessing and its fitted parameters travel in the archive
                handler = [str(PEERS_DIR / "ts_demo_handler.py"), "--extra-files",
                           f"{ctx.bench.demo_preprocess},{PEERS_DIR / 'tabular_peer.py'}"]
            subprocess.run([str(self.python.parent / "torch-model-archiver"), "--model-name", m, "--version", "1.0",
                            "--serialized-file", ctx.bench.torchscript[m], "--handler", *handler,
                            "--export-path", str(store), "--force"],
                           check=True, capture_output=True, timeout=300)

    def launch(self, ctx: Context) -> Launch:
        home = ctx.work / "torchserve"
        models = {m: {"1.0": {"defaultVersion": True, "marName": f"{m}.mar", "minWorkers": 1, "maxWorkers": 1,
                              "batchSize": 64, "maxBatchDelay": 2, "responseTimeout": 120}}
                  for m in self.served(ctx)}
        props = [f"inference_address=http://127.0.0.1:{self.port}",
                 f"management_address=http://127.0.0.1:{self.management_port}",
                 f"metrics_address=http://127.0.0.1:{self.metrics_port}",
                 f"model_store={home / 'model-store'}", "load_models=" + ",".join(f"{m}.mar" for m in models),
                 "default_workers_per_model=1", "disable_token_authorization=true", "enable_model_api=false",
                 "install_py_dep_per_model=false", "vmargs=-Xmx1g", f"models={json.dumps(models)}"]
        (home / "config.properties").write_text("\n".join(props) + "\n")
        argv = [str(self.python.parent / "torchserve"), "--start", "--foreground", "--ncs",
                "--ts-config", str(home / "config.properties"), "--model-store", str(home / "model-store")]
        env = base_env(PATH=f"{self.python.parent}:{os.environ.get('PATH', '')}", LOG_LOCATION=str(home / "logs"),
                       METRICS_LOCATION=str(home / "logs"))
        return Launch(argv, env, str(home))

    def targets(self, ctx: Context) -> list[Target]:
        return [Target(m, f"http://127.0.0.1:{self.port}/predictions/{m}", bm.body_for(m)) for m in self.served(ctx)]


@dataclass
class PyTriton(Server):
    name: str = "pytriton"
    serves_demo: bool = True  # bound with the exported preprocessing in numpy (tabular_peer.py)
    stop_signal: int = signal.SIGINT
    grpc_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    python: Path | None = None
    libdir: str = ""

    def prepare(self, ctx: Context) -> None:
        if self.served(ctx):
            packages = peer_packages("bench-pytriton", ("nvidia-pytriton==0.7.0",))
            self.python = ensure_venv(ctx.venvs / "pytriton", packages, ctx.install_timeout_s,
                                      ctx.venvs / "pytriton-install.log")
            probe = "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"
            self.libdir = subprocess.run([str(self.python), "-c", probe], capture_output=True, text=True,
                                         check=True, timeout=60).stdout.strip()

    def launch(self, ctx: Context) -> Launch:
        workspace = ctx.work / "pytriton-workspace"  # fresh per run
        # the Python backend stub must load this interpreter's libpython, not the system's
        ld = ":".join(p for p in (self.libdir, os.environ.get("LD_LIBRARY_PATH", "")) if p)
        argv = [str(self.python), str(PEERS_DIR / "pytriton_server.py"), "--http-port", str(self.port),
                "--grpc-port", str(self.grpc_port), "--metrics-port", str(self.metrics_port),
                "--workspace", str(workspace)]
        for m in self.served(ctx):
            if m == bm.DEMO:
                argv += ["--tabular", f"{m}={ctx.bench.demo_preprocess},{ctx.bench.torchscript[m]}"]
            else:
                argv += ["--model", f"{m}={ctx.bench.torchscript[m]}"]
        return Launch(argv, base_env(LD_LIBRARY_PATH=ld), str(ctx.work))

    def targets(self, ctx: Context) -> list[Target]:
        base = f"http://127.0.0.1:{self.port}/v2/models"
        return [Target(m, f"{base}/{m}/infer", bm.v2_demo_body(shape=(1, 1)) if m == bm.DEMO else bm.body_for(m))
                for m in self.served(ctx)]
