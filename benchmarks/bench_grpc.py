"""mlgate's gRPC against its REST JSON route, one server: the same gateway (no Ray,
``peers/mlgate_noray.py``, access control off), the same ``mlp`` model and row (FP32 [1, 32]).

    python -m benchmarks.bench_grpc [--duration-s 10] [--concurrency 1,16,64] [--processes 2]

REST is driven by ``wrk -t1`` (the serving benchmark's Lua script). gRPC is driven by
``--processes`` Python processes of grpc.aio, each holding its share of the concurrency as
coroutines on one channel with a pre-serialized ``ModelInferRequest`` (no tritonclient
overhead); ``stream`` cells send the same requests on one ``ModelStreamInfer`` stream per
coroutine. Each row reports the load generator's CPU seconds per measured second: on a
2-core machine the generator shares the cores with the server, so what a cell measures is the
pair, not the server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.serving import models as bm  # noqa: E402
from benchmarks.serving import wrk  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _request_bytes() -> bytes:
    from serving.grpc.generated import grpc_service_pb2 as pb

    msg = pb.ModelInferRequest(model_name=bm.MLP)
    msg.inputs.add(name="input", datatype="FP32", shape=[1, bm.IN_FEATURES])
    msg.raw_input_contents.append(bm.input_row().tobytes())
    return msg.SerializeToString()


def _drive(url: str, concurrency: int, duration_s: float, stream: bool, queue) -> None:
    """One generator process: ``concurrency`` callers for ``duration_s``; puts (count, latencies, cpu_s)."""
    import grpc
    import uvloop

    async def main() -> list[float]:
        payload = _request_bytes()
        ident = lambda b: b  # noqa: E731 - send the serialized bytes as they are
        async with grpc.aio.insecure_channel(url, options=[("grpc.max_receive_message_length", -1)]) as channel:
            unary = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", ident, ident)
            bidi = channel.stream_stream("/inference.GRPCInferenceService/ModelStreamInfer", ident, ident)
            end = time.perf_counter() + duration_s
            latencies: list[float] = []

            async def caller() -> None:
                if stream:
                    call = bidi()
                    while time.perf_counter() < end:
                        t0 = time.perf_counter()
                        await call.write(payload)
                        await call.read()
                        latencies.append(time.perf_counter() - t0)
                    await call.done_writing()
                    return
                while time.perf_counter() < end:
                    t0 = time.perf_counter()
                    await unary(payload)
                    latencies.append(time.perf_counter() - t0)

            await asyncio.gather(*(caller() for _ in range(concurrency)))
            return latencies

    start = resource.getrusage(resource.RUSAGE_SELF)
    latencies = uvloop.run(main())
    end = resource.getrusage(resource.RUSAGE_SELF)
    queue.put((latencies, end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime))


def grpc_cell(url: str, concurrency: int, duration_s: float, processes: int, stream: bool) -> dict:
    processes = max(1, min(processes, concurrency))
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    queue = mp.get_context("spawn").Queue()
    workers = [mp.get_context("spawn").Process(target=_drive, args=(url, share, duration_s, stream, queue))
               for share in shares]
    for w in workers:
        w.start()
    results = [queue.get(timeout=duration_s + 120) for _ in workers]
    for w in workers:
        w.join(30)
    latencies = sorted(x for lat, _ in results for x in lat)
    return _row(len(latencies), duration_s, latencies, sum(cpu for _, cpu in results))


def _row(count: int, duration_s: float, latencies: list[float], cpu_s: float) -> dict:
    pick = lambda q: 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0  # noqa: E731
    return {"rps": count / duration_s, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "client_cpu": cpu_s / duration_s}


def rest_cell(port: int, concurrency: int, duration_s: float, work: Path) -> dict:
    script = wrk.write_script(work, "mlp-json", bm.v2_tensor_body(), "application/json")
    result = wrk.run(f"http://127.0.0.1:{port}/v2/models/{bm.MLP}/infer", script, connections=concurrency,
                     duration_s=duration_s, out_path=work / f"wrk-{concurrency}.txt")
    if result.errors:
        raise RuntimeError(f"REST c={concurrency}: {result.errors} errors")
    return {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
            "client_cpu": result.cpu_s / result.duration_s}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_grpc", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration-s", type=float, default=10.0)
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--processes", type=int, default=2, help="gRPC load generator processes")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mlgate-bench-grpc-"))
    models = bm.prepare(work, (bm.MLP,))
    port, grpc_port = _free_port(), _free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLGATE_")},
           "MLGATE_REGISTRY_ROOT": models.registry_root, "MLGATE_LOG_ROOT": str(work / "logs"),
           "MLGATE_SERVING__AUTH__ENABLED": "false", "MLGATE_SERVING__GRPC__PORT": str(grpc_port),
           "PYTHONPATH": str(REPO)}
    log = open(work / "server.log", "wb")
    server = subprocess.Popen([sys.executable, str(REPO / "benchmarks/serving/peers/mlgate_noray.py"), "--port",
                               str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        give_up = time.monotonic() + 180
        while "ready on" not in (work / "server.log").read_text():
            if server.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError((work / "server.log").read_text()[-2000:])
            time.sleep(0.2)
        url = f"127.0.0.1:{grpc_port}"
        grpc_cell(url, 4, 2.0, 1, False)  # warm-up
        rows = []
        for c in [int(x) for x in args.concurrency.split(",")]:
            rows.append(("REST JSON (wrk)", c, rest_cell(port, c, args.duration_s, work)))
            rows.append(("gRPC unary", c, grpc_cell(url, c, args.duration_s, args.processes, False)))
            rows.append(("gRPC stream", c, grpc_cell(url, c, args.duration_s, args.processes, True)))
        print("| route | c | req/s | p50 ms | p99 ms | load generator CPU (cores) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for route, c, r in rows:
            print(f"| {route} | {c} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['client_cpu']:.2f} |")
        (work / "results.json").write_text(json.dumps([{"route": a, "c": c, **r} for a, c, r in rows], indent=1))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


if __name__ == "__main__":
    main()
