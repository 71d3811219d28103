"""``mlgate up`` as a user runs it: a subprocess that fits ``demo`` into an empty registry,
creates an admin key, starts its own local Ray, serves, answers its own curl example (which
reads that key), and on SIGTERM stops everything it started and exits 0."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

from tests.conftest import free_port
from tests.polling import until

pytestmark = pytest.mark.e2e

# This checkout's packages, whatever state the environment's (editable) install is in.
REPO = Path(__file__).resolve().parents[2]

READY_TIMEOUT_S = 300.0  # fit demo + start Ray + deploy, on a loaded 2-core machine
STOP_TIMEOUT_S = 120.0
MARKER = "E2E_TEST_MARKER_MLGATE_UP"


class Output:
    """Collects a pipe's lines on a thread so the child never blocks on a full pipe."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.append(line.rstrip("\n"))
        stream.close()

    def text(self) -> str:
        return "\n".join(self.lines)


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_for(predicate, timeout_s: float, what: str, proc: subprocess.Popen, out: Output, err_path: Path) -> None:
    """Until ``predicate()``, failing early if ``mlgate up`` exits; both failures show its output."""
    until(predicate, timeout_s, what, interval_s=0.25, proc=proc,
          detail=lambda: f"stdout:\n{out.text()}\nstderr (tail):\n{err_path.read_text()[-4000:]}")


def marked_processes(marker: str) -> list[psutil.Process]:
    """Live processes (not zombies) whose environment carries this test's marker."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get(MARKER) == marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return left


def test_up_serves_answers_its_curl_example_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLGATE_") and k not in ("RAY_ADDRESS", "PYTEST_CURRENT_TEST")}
    env.update({"MLGATE_REGISTRY_ROOT": str(tmp_path / "registry-root"), MARKER: marker,
                "RAY_ADDRESS": "127.0.0.1:9",  # without --address, up starts its own Ray regardless
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))})
    err_path = tmp_path / "stderr.log"
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "mlgate", "up", "--port", str(port)], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    out = Output(proc.stdout)
    tree: list[psutil.Process] = []
    try:
        wait_for(lambda: ready(url), READY_TIMEOUT_S, "readiness", proc, out, err_path)
        wait_for(lambda: any(line.startswith("try: curl") for line in out.lines), 60, "curl example", proc, out,
                 err_path)
        text = out.text()
        assert "registered demo version 1" in text
        assert f"serving on {url}" in text
        curl = next(line for line in out.lines if line.startswith("try: curl"))[len("try: "):]

        # the printed example, as a user pastes it
        if shutil.which("curl"):
            done = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            check_prediction(json.loads(done.stdout))
        # and the same request parsed from it, over urllib
        argv = shlex.split(curl)
        target = next(a for a in argv if a.startswith("http://"))
        assert target == f"{url}/v1/models/demo:predict"
        body = argv[argv.index("-d") + 1].encode()
        headers = dict(argv[i + 1].split(": ", 1) for i, a in enumerate(argv) if a == "-H")
        assert headers["Content-Type"] == "application/json"
        reads_key = re.fullmatch(r"Bearer \$\(cat (\S+)\)", headers["Authorization"])
        assert reads_key, headers["Authorization"]
        key_file = reads_key.group(1)
        assert Path(key_file) == (tmp_path / "var" / "auth" / "admin.key").resolve()  # the default, under the cwd
        headers["Authorization"] = f"Bearer {Path(key_file).read_text().strip()}"
        req = urllib.request.Request(target, data=body, headers=headers)
        with urllib.request.urlopen(req, timeout=60) as r:
            check_prediction(json.loads(r.read()))
        assert (tmp_path / "registry-root" / "demo" / "1" / "manifest.json").exists()

        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
        assert len(tree) > 1  # Ray's processes at least
        tree_and_marked = {p.pid: p for p in tree + marked_processes(marker)}

        os.kill(proc.pid, signal.SIGTERM)  # that PID only: it must stop the rest itself
        try:
            code = proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"mlgate up still running {STOP_TIMEOUT_S:.0f}s after SIGTERM\n{out.text()}")
        assert code == 0, f"exit code {code}\nstderr (tail):\n{err_path.read_text()[-4000:]}"
        assert "shutting down" in out.text()

        def left() -> list[psutil.Process]:
            return alive(list(tree_and_marked.values())) + marked_processes(marker)

        until(lambda: not left(), STOP_TIMEOUT_S, "every child exited", interval_s=0.25,
              detail=lambda: "left behind: " + ", ".join(f"{p.pid} {safe_cmdline(p)}" for p in left()))
        assert not ready(url)
    finally:
        if proc.poll() is None or alive(tree) or marked_processes(marker):
            for p in alive(tree) + marked_processes(marker):  # only what this test started
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
            proc.wait(timeout=30)


def check_prediction(doc: dict) -> None:
    assert doc["model_name"] == "demo" and doc["model_version"] == "1"
    (pred,) = doc["predictions"]
    assert pred["label"] in ("stay", "churn")
    probs = pred["probabilities"]
    assert set(probs) == {"stay", "churn"} and abs(sum(probs.values()) - 1.0) < 1e-5
    assert pred["label"] == max(probs, key=probs.get)


def safe_cmdline(p: psutil.Process) -> str:
    try:
        return re.sub(r"\s+", " ", " ".join(p.cmdline()))[:200]
    except psutil.Error:
        return "?"
