"""The model runner against a plain torch loop, Ray-free: throughput and latency per batch size.

    python benchmarks/bench_runner_gpu.py --out OUT          # the GPU machine, < 4 min on an H100
    python benchmarks/bench_runner_gpu.py --device cpu --quick

For each bench model (``mlp``: 32->256->8; ``heavy``: 32->2048 x4 ->8, both TorchScript,
the same seeded weights as the serving benchmark), precision (fp32, bf16 autocast on
CUDA) and batch size (1, 2, 4, ... 512) it times, end to end from a numpy batch on the
host to a numpy result on the host (synchronous, so each call's latency is real):

* ``torch``: the oracle, a plain loop: ``from_numpy -> .to(device) -> module -> .cpu()``
  under ``inference_mode`` (and ``autocast`` for bf16);
* ``runner``: ``serving.runner.TorchRunner`` (pinned, non-blocking copies);
* ``runner+graphs``: the same with ``cuda_graph_batch_sizes`` = every batch size tested.

Each runner output is checked against the oracle's (``allclose``). Prints a table and
writes ``bench_runner_<device>-<stamp>.json`` (and ``bench_runner_<device>-latest.json``)
under ``--out``. Needs only torch and numpy (no Ray).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
# Run as a script, sys.path[0] is benchmarks/, whose serving/ package would shadow ours.
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]

from benchmarks.serving.models import IN_FEATURES, build_heavy, build_mlp  # noqa: E402
from serving.runner import TorchRunner  # noqa: E402

TOLERANCE = {"fp32": (1e-4, 1e-5), "bf16": (5e-2, 5e-2)}  # (rtol, atol) against the fp32/bf16 oracle


def plain_loop(module: torch.nn.Module, device: torch.device, precision: str):
    def call(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(device)
            if precision != "fp32" and device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return module(x).float().cpu().numpy()
            return module(x).cpu().numpy()
    return call


def time_calls(fn, batch: np.ndarray, budget_s: float, min_calls: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn(batch)
    lat = []
    give_up = time.perf_counter() + budget_s
    while len(lat) < min_calls or time.perf_counter() < give_up:
        t = time.perf_counter()
        fn(batch)
        lat.append(time.perf_counter() - t)
        if len(lat) >= 100_000:
            break
    lat_ms = np.array(lat) * 1e3
    rows = batch.shape[0]
    return {"calls": len(lat), "p50_ms": float(np.percentile(lat_ms, 50)), "p99_ms": float(np.percentile(lat_ms, 99)),
            "mean_ms": float(lat_ms.mean()), "rows_per_s": rows * len(lat) / (lat_ms.sum() / 1e3)}


def bench_model(name: str, module: torch.nn.Module, device: torch.device, precisions: list[str],
                sizes: list[int], budget_s: float, min_calls: int, warmup: int) -> list[dict]:
    rows: list[dict] = []
    rng = np.random.default_rng(0)
    batches = {b: rng.normal(size=(b, IN_FEATURES)).astype(np.float32) for b in sizes}
    cuda = device.type == "cuda"
    for precision in precisions:
        oracle = plain_loop(module.to(device), device, precision)
        modes = {"torch": oracle, "runner": TorchRunner(module, device=str(device), precision=precision)}
        if cuda:
            modes["runner+graphs"] = TorchRunner(module, device=str(device), precision=precision,
                                                 cuda_graph_batch_sizes=tuple(sizes))
        for b in sizes:
            expected = oracle(batches[b])
            for mode, fn in modes.items():
                cell = {"model": name, "precision": precision, "batch": b, "mode": mode}
                try:
                    got = fn(batches[b])
                    rtol, atol = TOLERANCE[precision]
                    cell["max_abs_diff"] = float(np.abs(got - expected).max())
                    cell["matches_oracle"] = bool(np.allclose(got, expected, rtol=rtol, atol=atol))
                    cell.update(time_calls(fn, batches[b], budget_s, min_calls, warmup))
                except Exception as exc:  # noqa: BLE001 - one failing cell must not hide the others
                    cell["error"] = repr(exc)[:300]
                rows.append(cell)
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'model':6} {'prec':5} {'batch':>5} {'mode':14} {'rows/s':>12} {'p50 ms':>8} {'p99 ms':>8} " \
           f"{'vs torch':>8}  oracle"
    out = [head, "-" * len(head)]
    base = {(r["model"], r["precision"], r["batch"]): r for r in rows if r["mode"] == "torch" and "error" not in r}
    for r in rows:
        if "error" in r:
            out.append(f"{r['model']:6} {r['precision']:5} {r['batch']:>5} {r['mode']:14} error: {r['error']}")
            continue
        ref = base.get((r["model"], r["precision"], r["batch"]))
        speed = f"{r['rows_per_s'] / ref['rows_per_s']:.2f}x" if ref else "-"
        ok = "ok" if r["matches_oracle"] else f"DIFF {r['max_abs_diff']:.2g}"
        out.append(f"{r['model']:6} {r['precision']:5} {r['batch']:>5} {r['mode']:14} {r['rows_per_s']:>12,.0f} "
                   f"{r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {speed:>8}  {ok}")
    return "\n".join(out)


def environment(device: torch.device) -> dict:
    env = {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto (CUDA when visible), cuda[:n] or cpu")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "out"), help="directory for the JSON")
    p.add_argument("--quick", action="store_true", help="a few sizes, mlp only, tiny time budget (smoke test)")
    p.add_argument("--models", default="mlp,heavy")
    p.add_argument("--precisions", default="fp32,bf16", help="bf16 runs on CUDA only")
    p.add_argument("--max-batch", type=int, default=512)
    p.add_argument("--budget-s", type=float, default=0.3, help="timed seconds per cell")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # as a serving replica runs
    sizes = [2**i for i in range(args.max_batch.bit_length()) if 2**i <= args.max_batch]
    models = [m for m in args.models.split(",") if m]
    precisions = [p for p in args.precisions.split(",") if p and (p == "fp32" or device.type == "cuda")]
    budget_s, min_calls, warmup = args.budget_s, 20, 5
    if args.quick:
        sizes, models, budget_s, min_calls, warmup = [1, 8, 64], ["mlp"], 0.02, 3, 1
    builders = {"mlp": build_mlp, "heavy": build_heavy}
    started = time.perf_counter()
    rows: list[dict] = []
    env = environment(device)
    try:
        for name in models:
            module = torch.jit.script(builders[name]()).eval()
            rows += bench_model(name, module, device, precisions, sizes, budget_s, min_calls, warmup)
    finally:
        torch.set_num_threads(threads)
    elapsed = time.perf_counter() - started
    print(table(rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    doc = {"date": stamp, "environment": env, "elapsed_s": elapsed, "quick": args.quick,
           "sizes": sizes, "rows": rows}
    for path in (out / f"bench_runner_{device.type}-{stamp}.json", out / f"bench_runner_{device.type}-latest.json"):
        path.write_text(json.dumps(doc, indent=1))
    print(f"\n{len(rows)} cells in {elapsed:.1f}s on {doc['environment']}; "
          f"wrote {out}/bench_runner_{device.type}-{stamp}.json")
    failed = [r for r in rows if "error" in r or not r.get("matches_oracle", False)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
