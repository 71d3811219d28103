"""Training runs: one isolated directory per run under the runs root.

``{runs_root}/{run_id}/``::

    run.json                the run's spec, written once: model, dataset version and
                            fingerprint, parameters, seed, code revision
    status.json             replaced atomically at each phase (state, attempt, epoch, ...)
    epochs/{epoch:04d}.json metrics of each finished epoch (rewritten if an epoch reruns)
    attempts/{n:03d}.json   one record per submission: job id, resumed from which epoch
    result.json             the registered version, the gate decision
    ray/                    Ray Train storage: checkpoints of this run only
"""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

from contracts import fs as rfs
from contracts.clock import Clock, stamp, wall_clock_s
from contracts.errors import Conflict, NotFound
from contracts.names import check_name

STATES = ("created", "submitted", "training", "evaluating", "registered", "failed", "stopped")


def new_run_id(model: str, clock: Clock = wall_clock_s) -> str:
    return f"{model}-{stamp(clock)}-{secrets.token_hex(3)}"


def code_revision() -> str:
    """The git commit of this code (``-dirty`` with uncommitted changes), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
                               cwd=here, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}-dirty" if dirty else rev


class Run:
    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.path = f"{store.path}/{run_id}"

    @property
    def uri(self) -> str:
        """The run directory as the runs root spells it (what Ray Train gets as storage)."""
        return f"{self.store.root.rstrip('/')}/{self.run_id}"

    def _read(self, name: str, default: Any = None) -> Any:
        path = f"{self.path}/{name}"
        return json.loads(rfs.read_bytes(self.store.fs, path)) if rfs.exists(self.store.fs, path) else default

    def _write(self, name: str, data: Any) -> None:
        self.store.fs.create_dir(f"{self.path}/{name}".rsplit("/", 1)[0], recursive=True)
        rfs.write_atomic(self.store.fs, f"{self.path}/{name}", json.dumps(data, indent=1).encode())

    @property
    def spec(self) -> dict[str, Any]:
        spec = self._read("run.json")
        if spec is None:
            raise NotFound(f"unknown run {self.run_id!r} under {self.store.root}")
        return spec

    @property
    def status(self) -> dict[str, Any]:
        return self._read("status.json", {"state": "created"})

    def set_status(self, state: str, **fields: Any) -> None:
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}")
        self._write("status.json", {**self.status, **fields, "state": state, "updated_at": self.store.clock()})

    def record_epoch(self, metrics: dict[str, Any]) -> None:
        self._write(f"epochs/{int(metrics['epoch']):04d}.json", metrics)

    def epochs(self) -> list[dict[str, Any]]:
        names = [i.base_name for i in self.store.list_files(f"{self.path}/epochs") if i.base_name.endswith(".json")]
        return [self._read(f"epochs/{n}") for n in sorted(names)]

    def start_attempt(self, **fields: Any) -> int:
        attempt = len(self.attempts()) + 1
        self._write(f"attempts/{attempt:03d}.json", {"attempt": attempt, "started_at": self.store.clock(), **fields})
        return attempt

    def attempts(self) -> list[dict[str, Any]]:
        names = [i.base_name for i in self.store.list_files(f"{self.path}/attempts") if i.base_name.endswith(".json")]
        return [self._read(f"attempts/{n}") for n in sorted(names)]

    @property
    def result(self) -> dict[str, Any] | None:
        return self._read("result.json")

    def set_result(self, result: dict[str, Any]) -> None:
        self._write("result.json", result)

    def describe(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "path": self.uri, "spec": self.spec, "status": self.status,
                "attempts": self.attempts(), "epochs": self.epochs(), "result": self.result}


class RunStore:
    def __init__(self, root: str, clock: Clock = wall_clock_s) -> None:
        """``clock``: the time stamped on runs, attempts and status changes."""
        self.root = root
        self.clock = clock
        self.fs, self.path = rfs.resolve(root)

    def list_files(self, path: str):
        from pyarrow import fs as pafs

        return self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))

    def create(self, run_id: str, spec: dict[str, Any]) -> Run:
        run = Run(self, check_name(run_id, "run id"))
        if rfs.exists(self.fs, f"{run.path}/run.json"):
            raise Conflict(f"run {run_id!r} exists; resume it instead")
        self.fs.create_dir(run.path, recursive=True)
        run._write("run.json", {"run_id": run_id, "created_at": self.clock(), **spec})
        run.set_status("created")
        return run

    def get(self, run_id: str) -> Run:
        run = Run(self, check_name(run_id, "run id"))
        run.spec  # noqa: B018 - raises NotFound for an unknown run
        return run

    def list(self) -> list[Run]:
        ids = [d for d in rfs.list_dirs(self.fs, self.path) if not d.startswith(".")]
        return [Run(self, i) for i in ids if rfs.exists(self.fs, f"{self.path}/{i}/run.json")]
