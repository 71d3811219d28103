"""Instructions per request on the gateway, counted by valgrind (callgrind), for an A/B of
two source trees that wall-clock throughput on a noisy VM cannot resolve (issue 15's "within
3%"): the count does not move with the neighbours' load or the CPU's clock.

Each tree's ``benchmarks/serving/peers/mlgate_noray.py`` (mlgate's gateway, its HTTP server
and models, no Ray; the serving benchmark's config: batching 64 rows / 2 ms, metrics on)
runs under ``valgrind --tool=callgrind`` with instrumentation off until it is warm
(``callgrind_control -i on``). Then, per concurrency c, after ``--warmup`` more requests the
counters are zeroed, ``--requests`` requests go over c keep-alive connections (each one at a
time, the same body bytes as the benchmark's), and the count is dumped. Everything the
process runs meanwhile is counted: the HTTP thread, the model thread, the metrics pusher
and the sweeper.

    git worktree add /tmp/base 401e312
    python -m benchmarks.request_instructions --tree /tmp/base --tree . --models mlp,demo
    python -m benchmarks.request_instructions --tree . --auth off,on    # what access control costs

Access control (``--auth``, default ``on``) is as users run it: on, with a key store in the
scratch dir and every request carrying an API key (``Authorization: Bearer``); ``off`` sets
``serving.auth.enabled=false`` and sends no key. ``--auth off,on`` counts each tree both
ways. A tree from before access control (no ``access/keys.py``) runs without it either way.

Prints instructions per request per tree (and auth setting), model and c, and each one's
ratio to the first.
At c=64 under valgrind the gateway is slow enough that batches fill: a per-request figure
for full batches. Slow: valgrind runs Python about 50 times slower (a few minutes per tree and model).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.serving import credentials, procs
from benchmarks.serving import models as bm
from benchmarks.serving.base import Context
from benchmarks.serving.report import machine
from benchmarks.serving.servers import MlgateNoRay

READY_TIMEOUT_S = 900.0


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]) -> int:
    conn.request("POST", path, body, {"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    response.read()
    return response.status


def _callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=300)


def _dump_ir(out_dir: Path, seen: set[Path]) -> int:
    """The instruction total of the one dump written since ``seen`` (then added to it)."""
    fresh = sorted(set(out_dir.glob("callgrind.out.*.*")) - seen)
    if len(fresh) != 1:
        raise RuntimeError(f"expected one new callgrind dump in {out_dir}, found {fresh}")
    seen.add(fresh[0])
    for line in fresh[0].read_text(errors="replace").splitlines():
        match = re.match(r"totals:\s+(\d+)", line)
        if match:
            return int(match.group(1))
    raise RuntimeError(f"no totals line in {fresh[0]}")


def _drive(port: int, path: str, body: bytes, requests: int, concurrency: int, headers: dict[str, str]) -> None:
    """``requests`` requests over ``concurrency`` keep-alive connections, each one at a time."""
    def one_client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            for _ in range(n):
                status = _post(conn, path, body, headers)
                if status != 200:
                    raise RuntimeError(f"{path}: {status}")
        finally:
            conn.close()

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one_client, [requests // concurrency] * concurrency))


def _wait_ready(proc, port: int, path: str, body: bytes, headers: dict[str, str], log_path: Path) -> None:
    give_up = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            try:
                if _post(conn, path, body, headers) == 200:
                    return
            finally:
                conn.close()
        except OSError:
            pass
        if time.monotonic() > give_up:
            raise RuntimeError(f"not ready after {READY_TIMEOUT_S:.0f}s")
        time.sleep(1.0)


def count(tree: Path, model: str, ctx_env: dict[str, str], headers: dict[str, str], concurrency: tuple[int, ...],
          requests: int, warmup: int, scratch: Path) -> dict[int, float]:
    """Instructions per request of ``tree``'s gateway serving ``model`` (each request with
    ``headers``), per concurrency."""
    server = MlgateNoRay()
    out_dir = scratch / f"{tree.name}-{model}"
    out_dir.mkdir(parents=True)
    env = {**ctx_env, "PYTHONPATH": str(tree)}
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--vgdb=yes", "--dump-line=no",
            f"--callgrind-out-file={out_dir}/callgrind.out.%p", sys.executable,
            str(tree / "benchmarks/serving/peers/mlgate_noray.py"), "--port", str(server.port)]
    log_path = out_dir / "server.log"
    proc = procs.start(argv, env=env, cwd=str(tree), log_path=log_path)
    tree_procs = procs.ProcessTree(proc.pid)
    body = bm.body_for(model)
    path = f"/v2/models/{model}/infer"
    out: dict[int, float] = {}
    seen: set[Path] = set()
    try:
        _wait_ready(proc, server.port, path, body, headers, log_path)
        _drive(server.port, path, body, warmup, 1, headers)
        _callgrind(proc.pid, "-i", "on")
        for c in concurrency:
            _drive(server.port, path, body, warmup, c, headers)  # instrumented, then thrown away
            _callgrind(proc.pid, "-z")
            _drive(server.port, path, body, requests, c, headers)
            _callgrind(proc.pid, "-d")
            out[c] = _dump_ir(out_dir, seen) / (requests // c * c)
    finally:
        procs.stop_tree(proc, tree_procs, signal.SIGTERM, grace_s=120.0)
    return out


def _access(ctx: Context, tree: Path, auth: bool) -> tuple[dict[str, str], dict[str, str], str]:
    """The gateway's environment, the headers of its requests and what that is, for ``tree``
    with access control ``auth``."""
    env = MlgateNoRay(auth=auth).launch(ctx).env
    if not (tree / "access" / "keys.py").exists():  # its config knows no serving.auth
        env = {k: v for k, v in env.items() if not k.startswith("MLGATE_SERVING__AUTH__")}
        return env, {}, "no access control"
    headers = credentials.api_key(ctx.work).headers() if auth else {}
    return env, headers, "auth on" if auth else "auth off"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, type=Path,
                        help="a source tree (repeat; the first is the base of the ratios; a tree given twice "
                        "is counted twice, which shows the run-to-run spread)")
    parser.add_argument("--models", default="mlp,demo")
    parser.add_argument("--concurrency", default="1,64", help="comma-separated connections (default 1,64)")
    parser.add_argument("--requests", type=int, default=2000, help="counted requests per cell")
    parser.add_argument("--warmup", type=int, default=300, help="requests before each cell, not counted")
    parser.add_argument("--auth", default="on", help="access control: on (requests with an API key), off, or "
                        "both ways as on,off / off,on (each tree counted per setting; the first is the base)")
    args = parser.parse_args(argv)
    settings = [a for a in args.auth.split(",") if a]
    if not settings or set(settings) - {"on", "off"}:
        parser.error(f"--auth: expected on, off or a comma-separated list of them, got {args.auth!r}")
    if shutil.which("valgrind") is None:
        print("valgrind not found: apt-get install -y valgrind", file=sys.stderr)
        return 2
    models = tuple(m for m in args.models.split(",") if m)
    concurrency = tuple(int(c) for c in args.concurrency.split(",") if c)
    scratch = Path(tempfile.mkdtemp(prefix="mlgi-"))
    results: dict[str, dict[tuple[str, int], float]] = {}
    try:
        bench = bm.prepare(scratch / "models", models)
        ctx = Context(Path.cwd(), scratch, scratch / "venvs", bench, models)
        variants = [(tree, auth) for tree in args.tree for auth in settings]
        for model in models:
            for i, (tree, auth) in enumerate(variants):
                env, headers, what = _access(ctx, tree.resolve(), auth == "on")
                label = f"{i + 1}. {tree}" + (f", {what}" if len(settings) > 1 or what != "auth on" else "")
                counted = count(tree.resolve(), model, env, headers, concurrency, args.requests, args.warmup,
                                scratch / f"runs{i}")
                for c, per_request in counted.items():
                    results.setdefault(label, {})[(model, c)] = per_request
                    print(f"{label} {model} c={c}: {per_request:,.0f} instructions per request", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    cells = [(m, c) for m in models for c in concurrency]
    base = next(iter(results.values()))
    print(f"\n{json.dumps(machine())}; {args.requests} counted requests per cell after {args.warmup}\n")
    print("| tree | " + " | ".join(f"{m} c={c}" for m, c in cells) + " | " +
          " | ".join(f"{m} c={c} / base" for m, c in cells) + " |")
    print("| --- |" + " --- |" * (2 * len(cells)))
    for label, row in results.items():
        print(f"| {label} | " + " | ".join(f"{row[cell]:,.0f}" for cell in cells) + " | " +
              " | ".join(f"{row[cell] / base[cell]:.3f}" for cell in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
