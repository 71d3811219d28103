"""Which of our modules one v2 JSON inference request enters, from the socket to the runner and back.

A profile hook (``sys.setprofile``) is installed in the threads a request runs on: the
gateway's event loop (HTTP, decoding, the data plane, the batcher, the observers) and the
model's compute thread (pipeline, preprocessing, runner). One request is then sent on a warm
keep-alive connection with metrics and the prediction log on, as ``mlgate up`` serves, and
every Python function entered is mapped to the file that defines it.

    python -m benchmarks.request_path            # fits demo v1 in a temporary registry

Issue 14 asks for at most 10 modules; ``tests/unit/test_request_path.py`` keeps it so.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SELF = str(Path(__file__).resolve())


def ours(filename: str) -> str | None:
    """The repository-relative path of one of our modules, else None (libraries, generated code)."""
    path = Path(filename)
    if not path.is_absolute() or ".venv" in path.parts or "site-packages" in path.parts:
        return None
    try:
        rel = path.resolve().relative_to(ROOT)
    except ValueError:
        return None
    if str(path.resolve()) == _SELF or rel.parts[0] in ("tests", "benchmarks"):
        return None
    return str(rel)


class _Recorder:
    """A profile hook for several threads: ``set.add`` is atomic, no lock is needed."""

    def __init__(self) -> None:
        self.modules: set[str] = set()

    def __call__(self, frame, event, arg) -> None:
        if event == "call":
            if _from_timer(frame):  # the server's timers share the loop; they are not the request's path
                return
            name = ours(frame.f_code.co_filename)
            if name is not None:
                self.modules.add(name)


def _from_timer(frame) -> bool:
    """Whether ``frame`` runs in one of the server's timer tasks (``serving/http/server.py``'s
    ``_sweep`` and what it calls, the TLS reloader)."""
    while frame is not None:
        name = ours(frame.f_code.co_filename)
        if name in ("serving/http/server.py", "serving/http/tls.py") and frame.f_code.co_name in ("_sweep", "run"):
            return True
        frame = frame.f_back
    return False


async def _set_profile(hook) -> None:
    sys.setprofile(hook)


def trace_one_request(gateway, body: bytes, path: str = "/v2/models/demo/infer", warm: int = 5,
                      key: str | None = None) -> list[str]:
    """The sorted modules of ours that ``gateway`` (a started :class:`serving.gateway.Gateway`)
    enters to answer one ``POST path`` of ``body`` (with API key ``key``); the answer must be a 200."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
    try:
        for _ in range(warm):  # lazy imports, first-batch paths and the connection itself are warm
            _post(conn, path, body, headers)
        models = [m for versions in gateway.dataplane.models.values() for m in versions.values()]
        recorder = _Recorder()
        _everywhere(gateway, models, recorder)
        try:
            _post(conn, path, body, headers)
        finally:
            _everywhere(gateway, models, None)
        return sorted(recorder.modules)
    finally:
        conn.close()


def _everywhere(gateway, models, hook) -> None:
    asyncio.run_coroutine_threadsafe(_set_profile(hook), gateway.server.loop).result(30)
    for model in models:
        model.compute_thread.submit(sys.setprofile, hook).result(30)


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict) -> None:
    conn.request("POST", path, body, headers)
    response = conn.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {payload[:300]!r}")


def demo_request() -> bytes:
    from tests.reference import ROW

    inputs = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
              for k, v in ROW.items()]
    return json.dumps({"inputs": inputs}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", help="registry root holding demo (default: fit demo v1 in a temp dir)")
    args = parser.parse_args(argv)
    from access.keys import KeyStore
    from registry import Registry
    from serving.config import ServingConfig
    from serving.gateway import Gateway

    with tempfile.TemporaryDirectory() as tmp:
        root = args.registry
        if root is None:
            from training.quickfit import fit_demo

            root = f"{tmp}/registry"
            fit_demo(Registry(root))
        _, key = KeyStore(f"{tmp}/keys.json").create("trace", ["infer:demo"])
        cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth={"keys_file": f"{tmp}/keys.json"})
        gateway = Gateway(root, cfg, log_root=f"{tmp}/logs")
        try:
            modules = trace_one_request(gateway, demo_request(), key=key)
        finally:
            gateway.stop()
    for name in modules:
        print(name)
    print(f"{len(modules)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
