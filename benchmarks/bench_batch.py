"""Batch scoring throughput: ``mlgate score`` on a local Ray against a bare single-process loop
over the same Parquet, in the same run (issue 6).

    .venv/bin/python benchmarks/bench_batch.py [--rows 1000000] [--batch-sizes 1024,4096,16384]

The bare loop (``benchmarks/bare_batch.py``): pyarrow reads the file in batches, the model
version's ``Preprocessor.transform``, the TorchScript forward, pyarrow writes the same output
columns; no validation, no Ray. Two comparisons:

(a) programs, as a user runs them: ``python -m mlgate score --address <this Ray>`` and
    ``python benchmarks/bare_batch.py``, each timed from launch to exit (interpreter, imports,
    connecting, model load, teardown included), alternated ``--repeats`` times;
(b) in this process: ``batch.run.score`` (what the CLI calls) against the bare loop with
    torch already imported (best of 1 and 2 torch threads, before and after the Ray runs).

Ray runs locally with token auth, started before any timer. Everything runs after the file
is in the page cache. Figures go to stdout (Markdown) and ``benchmarks/out/batch/results.json``.
Not a test: numbers depend on the machine and its load (recorded with each figure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")  # before ray is imported, as a deployed cluster runs

import psutil  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from batch.config import BatchConfig  # noqa: E402
from batch.run import score  # noqa: E402
from registry import Registry  # noqa: E402
from registry.store import ModelVersion  # noqa: E402
from training import demo_data  # noqa: E402
from training.quickfit import fit_demo  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bare_batch import bare_loop  # noqa: E402
from benchmarks.serving import procs  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "batch"
BARE = Path(__file__).resolve().parent / "bare_batch.py"


def prepare(rows: int, row_group_rows: int) -> tuple[Path, ModelVersion]:
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"demo-{rows}-rg{row_group_rows}.parquet"
    if not data.exists():
        pq.write_table(demo_data.to_table(demo_data.generate(rows, seed=1)), data, row_group_size=row_group_rows)
    registry = Registry(str(OUT / "registry"))
    if not registry.list_versions("demo"):
        fit_demo(registry)
    return data, registry.get("demo")


def program(cmd: list[str]) -> dict:
    """Run a program to its exit: wall seconds from launch, its own CPU seconds, peak RSS, stdout,
    and the CPU seconds other people's processes used meanwhile."""
    load = os.getloadavg()[0]
    with OtherCpu() as other:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        with PeakRss(proc.pid) as rss:
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}: {out}"
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": rss.peak / 2**20,
            "load_1m": load, "other_cpu_s": other.seconds, "stdout": out}


class OtherCpu:
    """CPU seconds that processes outside this benchmark's process tree used while a block ran:
    the machine's busy time less what the tree's processes used (the serving harness's own
    accounting, ``benchmarks/serving/procs.py``), sampled every ``interval_s`` (a process of
    the tree that ends between two samples, such as an actor of a finished run, takes at most
    that long of its CPU time into 'other')."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s

    def __enter__(self):
        self.tree = procs.ProcessTree(os.getpid())
        self.busy, self.used, self.last = procs.system_busy_ticks(), 0, self.tree.cpu_ticks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        now = self.tree.cpu_ticks()
        self.used += procs.ticks_delta(self.last, now)
        self.last = now

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.seconds = max(0.0, (procs.system_busy_ticks() - self.busy - self.used) / procs.CLK_TCK)


def bare_program(data: Path, registry_root: str, batch_size: int) -> dict:
    """The bare loop as a program of its own (``benchmarks/bare_batch.py``)."""
    return program([sys.executable, str(BARE), str(data), registry_root, str(batch_size),
                    str(OUT / "bare-process.parquet")])


class PeakRss:
    """Peak resident memory of a process (default: this one, the Ray driver) while a block runs."""

    def __init__(self, pid: int | None = None) -> None:
        self.proc = psutil.Process(pid)

    def __enter__(self):
        self.peak, self._stop = self.proc.memory_info().rss, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def ray_run(data: Path, registry_root: str, batch_size: int, concurrency: int) -> dict:
    dest = OUT / f"scored-b{batch_size}-c{concurrency}"
    shutil.rmtree(dest, ignore_errors=True)
    cfg = BatchConfig(batch_size=batch_size, concurrency=concurrency)
    with PeakRss() as rss:
        s = score("demo", str(data), str(dest), registry_root=registry_root, cfg=cfg, progress=False)
    assert s.ok and s.rows_scored == s.rows_in, s.describe()
    return {"batch_size": batch_size, "concurrency": concurrency, "rows": s.rows_in, "seconds": s.seconds,
            "rows_per_s": s.rows_per_s, "steady_rows_per_s": s.rows_in / s.scoring_seconds,
            "actors_ready_s": s.startup_seconds, "cpu_s": s.cpu_seconds, "startup_cpu_s": s.startup_cpu_seconds,
            "overhead_s": s.seconds - s.scoring_seconds, "peak_actor_rss_mib": s.peak_actor_rss_bytes / 2**20,
            "peak_driver_rss_mib": rss.peak / 2**20}


def cli_run(data: Path, registry_root: str, batch_size: int, concurrency: int, address: str) -> dict:
    """``mlgate score`` as a user runs it, against the running Ray, to its exit."""
    dest = OUT / "scored-cli"
    shutil.rmtree(dest, ignore_errors=True)
    run = program([sys.executable, "-m", "mlgate", "score", "--model", "demo", "--input", str(data),
                   "--output", str(dest), "--registry", registry_root, "--batch-size", str(batch_size),
                   "--concurrency", str(concurrency), "--address", address, "--no-progress"])
    summary = run.pop("stdout").strip().splitlines()[1]  # "rows in ...; 5.0 s, 198,687 rows/s"
    return {**run, "concurrency": concurrency, "summary": summary,
            "summary_s": float(summary.rsplit(";", 1)[1].split(" s,")[0])}


def programs(data: Path, registry_root: str, batch_size: int, concurrency: list[int], address: str,
             repeats: int) -> dict:
    """Comparison (a): the bare program and ``mlgate score`` at each concurrency, alternated."""
    bare, cli = [], {c: [] for c in concurrency}
    for _ in range(repeats):
        bare.append(bare_program(data, registry_root, batch_size))
        bare[-1].pop("stdout")
        for c in concurrency:
            cli[c].append(cli_run(data, registry_root, batch_size, c, address))
    return {"batch_size": batch_size, "bare": bare, "cli": cli}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--row-group-rows", type=int, default=131_072, help="row groups of the input file")
    p.add_argument("--batch-sizes", default="1024,4096,16384")
    p.add_argument("--concurrency", default="1,2")
    p.add_argument("--repeats", type=int, default=2, help="runs of each program in comparison (a)")
    p.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray")
    args = p.parse_args()
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    concurrency = [int(c) for c in args.concurrency.split(",")]
    data, version = prepare(args.rows, args.row_group_rows)
    root = version.registry.root
    table_mib = pq.read_table(data).nbytes / 2**20
    bare: dict[int, float] = {}
    bare_cpu: dict[int, float] = {}
    started = time.perf_counter()
    with OtherCpu() as other:
        for b in sizes:
            measure(bare, bare_cpu, b, data, version)
        fresh = {b: args.rows / bare_program(data, root, b)["wall_s"] for b in sizes}

        import ray

        ray.init(num_cpus=args.num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False)
        try:
            runs = [ray_run(data, root, b, c) for c in concurrency for b in sizes]
            progs = programs(data, root, max(sizes), concurrency, ray.get_runtime_context().gcs_address,
                             args.repeats)
        finally:
            ray.shutdown()
        for b in sizes:  # the baseline again after the Ray runs; keep its best
            measure(bare, bare_cpu, b, data, version)
    progs["other_cpu_s"], progs["benchmark_s"] = other.seconds, time.perf_counter() - started
    report(args, table_mib, bare, bare_cpu, fresh, runs, progs)


def measure(bare: dict, bare_cpu: dict, batch_size: int, data: Path, version: ModelVersion) -> None:
    """Best rows/s over 1 and 2 torch threads; the least CPU time (one thread: no spinning)."""
    for threads in (1, 2):
        rate, cpu = bare_loop(data, version, batch_size, threads, OUT / "bare.parquet")
        bare[batch_size] = max(bare.get(batch_size, 0.0), rate)
        if threads == 1:
            bare_cpu[batch_size] = min(bare_cpu.get(batch_size, float("inf")), cpu)


def report(args, table_mib: float, bare: dict[int, float], bare_cpu: dict[int, float], fresh: dict[int, float],
           runs: list[dict], progs: dict) -> None:
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB", "load_avg": os.getloadavg(),
            "rows": args.rows, "row_group_rows": args.row_group_rows, "input_arrow_mib": table_mib,
            "torch": torch.__version__, "bare_rows_per_s": bare, "bare_process_rows_per_s": fresh,
            "bare_cpu_s": bare_cpu, "runs": runs, "programs": progs}
    (OUT / "results.json").write_text(json.dumps(meta, indent=1))
    print(f"{meta['date']}  {meta['machine']}  load {meta['load_avg']}  {args.rows:,} rows "
          f"(row groups of {args.row_group_rows:,}; {table_mib:.0f} MiB as Arrow); other processes used "
          f"{progs['other_cpu_s']:.1f} CPU s during the {progs['benchmark_s']:.0f} s of the benchmark")
    report_programs(args.rows, progs)
    print("\n(b) in this process, Ray already started:")
    print("| batch | actors | bare loop rows/s (in process / own process) | score rows/s end to end "
          "(% of in-process / own-process bare) | steady rows/s (% of in-process bare) | actors ready s "
          "| peak RSS MiB actor / driver | CPU s: bare / score work / actors' start |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        b, f = bare[r["batch_size"]], fresh[r["batch_size"]]
        print(f"| {r['batch_size']} | {r['concurrency']} | {b:,.0f} / {f:,.0f} | {r['rows_per_s']:,.0f} "
              f"({100 * r['rows_per_s'] / b:.0f}% / {100 * r['rows_per_s'] / f:.0f}%) | "
              f"{r['steady_rows_per_s']:,.0f} ({100 * r['steady_rows_per_s'] / b:.0f}%) | "
              f"{r['actors_ready_s']:.1f} | {r['peak_actor_rss_mib']:.0f} / {r['peak_driver_rss_mib']:.0f} | "
              f"{bare_cpu[r['batch_size']]:.1f} / {r['cpu_s']:.1f} / {r['startup_cpu_s']:.1f} |")


def report_programs(rows: int, progs: dict) -> None:
    """Comparison (a): best wall time of each program, every run listed with the load at its launch."""
    best_bare = min(r["wall_s"] for r in progs["bare"])

    def runs(rs: list[dict]) -> str:
        return ", ".join(f"{r['wall_s']:.1f} s ({r['load_1m']:.1f} / {r['other_cpu_s']:.1f})" for r in rs)

    print(f"\n(a) programs, launch to exit, batch {progs['batch_size']} (best of {len(progs['bare'])}):")
    print("| program | wall s, best | rows/s | % of the bare program | CPU s of the program | peak RSS MiB "
          "| every run: wall s (load at launch / other CPU s) |")
    print("|---|---|---|---|---|---|---|")
    bare = min(progs["bare"], key=lambda r: r["wall_s"])
    print(f"| bare loop (`bare_batch.py`) | {best_bare:.2f} | {rows / best_bare:,.0f} | 100% | {bare['cpu_s']:.1f} "
          f"| {bare['peak_rss_mib']:.0f} | {runs(progs['bare'])} |")
    for c, rs in progs["cli"].items():
        r = min(rs, key=lambda r: r["wall_s"])
        print(f"| `mlgate score --concurrency {c}` | {r['wall_s']:.2f} | {rows / r['wall_s']:,.0f} "
              f"| {100 * best_bare / r['wall_s']:.0f}% | {r['cpu_s']:.1f} | {r['peak_rss_mib']:.0f} "
              f"| {runs(rs)}; its summary: {r['summary_s']:.1f} s |")
    print("CPU s of the program: the process itself (the CLI's actors are other processes; their CPU is in (b)). "
          "Load at launch counts this benchmark's own processes; other CPU s: what processes outside it used "
          "during the run.")


if __name__ == "__main__":
    main()
