"""What each HTTP server does with issue 15's attacks: mlgate's gateway on its own server
(``mlgate-noray``) against the same gateway behind uvicorn (httptools, h11) and granian
(``peers/mlgate_asgi.py``), each configured with its nearest settings to mlgate's limits.
Throughput is the serving benchmark's business (``python -m benchmarks.serving.run
--servers mlgate-noray,mlgate-uvicorn-httptools,...``); this is the other half of the choice.

    python -m benchmarks.serving.limits                       # all four, a markdown table
    python -m benchmarks.serving.limits --servers mlgate-noray,mlgate-granian

Every server runs with the same short limits (header 2 s, body 3 s, keep-alive 5 s, 256
connections) so the run takes a few minutes; a cell is the first answer (status, or
``closed``/``no answer``) and the seconds to it, ``ok`` when it is what a trusted server
answers. Access control is on, as users run it: every attack request carries the run's API key
(``attacks.authorized``), so it reaches the decoder, not only the credential check.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.serving import attacks, credentials, procs
from benchmarks.serving import models as bm
from benchmarks.serving.base import Context, Unavailable
from benchmarks.serving.report import machine
from benchmarks.serving.run import REPO, wait_ready
from benchmarks.serving.servers import SERVERS

DEFAULT = ("mlgate-noray", "mlgate-uvicorn-httptools", "mlgate-uvicorn-h11", "mlgate-granian")
HEADER_TIMEOUT_S, BODY_TIMEOUT_S, KEEPALIVE_S, MAX_CONNECTIONS = 2.0, 3.0, 5.0, 256
WITHIN_S = 8.0
SLOWLORIS = 300
LIMITS_ENV = {"MLGATE_SERVING__HTTP__HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
              "MLGATE_SERVING__HTTP__BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
              "MLGATE_SERVING__HTTP__KEEPALIVE_TIMEOUT_S": str(KEEPALIVE_S),
              "MLGATE_SERVING__HTTP__MAX_CONNECTIONS": str(MAX_CONNECTIONS)}


def _cell(status: int | None, elapsed_s: float, good: set) -> tuple[str, bool]:
    ok = status in good and elapsed_s <= WITHIN_S
    shown = str(status) if status is not None else ("closed" if elapsed_s <= WITHIN_S else "no answer")
    return f"{'ok ' if ok else ''}{shown} {elapsed_s:.1f}s", ok


def probe(port: int, key: str | None = None) -> dict[str, tuple[str, bool]]:
    """Every attack on ``port`` (with API key ``key``), one after the other: attack -> (cell, ok)."""
    out = {}
    for name, (data, good) in attacks.ATTACKS.items():
        status, elapsed_s, _ = attacks.first_answer(port, attacks.authorized(data, key), within_s=WITHIN_S)
        out[name] = _cell(status, elapsed_s, good)
    slow = attacks.authorized(attacks.SLOW_BODY, key)
    body_from = attacks.SLOW_BODY_FROM + len(slow) - len(attacks.SLOW_BODY)  # the key goes at once, with the headers
    status, elapsed_s, _ = attacks.first_answer(port, slow, trickle_after=body_from, within_s=WITHIN_S)
    out["a body sent a byte every 0.5 s"] = _cell(status, elapsed_s, {408, None})
    started = time.monotonic()
    closed = attacks.slowloris(port, SLOWLORIS, within_s=HEADER_TIMEOUT_S + 4)
    out[f"{SLOWLORIS} slowloris connections"] = (
        f"{'ok ' if len(closed) == SLOWLORIS else ''}{len(closed)} closed in {time.monotonic() - started:.1f}s",
        len(closed) == SLOWLORIS)
    flood_ok = attacks.pipelining_flood_never_read(port)
    out["5,000 pipelined requests, never read"] = ("ok 200 when read" if flood_ok else "no answer", flood_ok)
    status, answered = attacks.over_the_cap(port, MAX_CONNECTIONS)
    ok = status in (503, None) and answered == MAX_CONNECTIONS
    out[f"connection {MAX_CONNECTIONS + 1} of {MAX_CONNECTIONS}"] = (
        f"{'ok ' if ok else ''}{status if status is not None else 'closed'} ({answered} held)", ok)
    return out


def run_one(name: str, ctx: Context, log_dir: Path) -> dict[str, tuple[str, bool]]:
    server = SERVERS[name]()
    try:
        server.prepare(ctx)
        if server.ca_file(ctx) is not None:
            raise Unavailable("it speaks TLS; the attacks are plain HTTP on raw sockets")
    except Unavailable as exc:
        return {"(start)": (f"failed: {exc}", False)}
    launch = server.launch(ctx)
    launch.env.update(LIMITS_ENV)
    proc = procs.start(launch.argv, env=launch.env, cwd=launch.cwd, log_path=log_dir / f"{name}.log")
    tree = procs.ProcessTree(proc.pid)
    try:
        wait_ready(server, server.targets(ctx), proc, log_dir / f"{name}.log")
        print(f"== {name} (pid {proc.pid})", flush=True)
        return probe(server.port, credentials.api_key(ctx.work).key if getattr(server, "auth", False) else None)
    except Unavailable as exc:
        return {"(start)": (f"failed: {exc}", False)}
    finally:
        procs.stop_tree(proc, tree, server.stop_signal, grace_s=30.0)


def table(results: dict[str, dict[str, tuple[str, bool]]]) -> str:
    names = list(results)
    rows = list(dict.fromkeys(a for r in results.values() for a in r))
    lines = ["| attack | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for attack in rows:
        lines.append(f"| {attack} | " + " | ".join(results[n].get(attack, ("-", False))[0] for n in names) + " |")
    lines.append("| **handled** | " + " | ".join(
        f"**{sum(ok for _, ok in r.values())} of {len(r)}**" for r in results.values()) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(DEFAULT), help=f"comma-separated (default {','.join(DEFAULT)})")
    args = parser.parse_args(argv)
    names = [n for n in args.servers.split(",") if n]
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        parser.error(f"--servers: unknown {unknown}; known: {sorted(SERVERS)}")
    work = Path(tempfile.mkdtemp(prefix="mlgl-"))
    try:
        bench = bm.prepare(work / "models", (bm.DEMO,))
        ctx = Context(REPO, work, work / "venvs", bench, (bm.DEMO,))
        results = {name: run_one(name, ctx, work) for name in names}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{machine()}; limits: header {HEADER_TIMEOUT_S:g} s, body {BODY_TIMEOUT_S:g} s, keep-alive "
          f"{KEEPALIVE_S:g} s, {MAX_CONNECTIONS} connections\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
