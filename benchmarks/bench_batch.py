"""Batch scoring throughput: ``batch.run.score`` (what ``mlgate score`` calls) on a local Ray
against a bare single-process loop over the same Parquet, in the same run (issue 6).

    .venv/bin/python benchmarks/bench_batch.py [--rows 1000000] [--batch-sizes 1024,4096,16384]

The bare loop: pyarrow reads the file in batches, the model version's ``Preprocessor.transform``,
the TorchScript forward, pyarrow writes the same output columns. It does no validation and
no Ray. It is timed twice: inside this process (torch already imported: the strict baseline)
and as a fresh process (interpreter, imports and model load included, as ``score`` pays
them once in its fresh actors). ``score`` runs on a local Ray started beforehand. Everything
runs after the file is in the page cache. Figures go to stdout (Markdown) and
``benchmarks/out/batch/results.json``. Not a test: numbers depend on the machine and its load.
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

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from batch.config import BatchConfig  # noqa: E402
from batch.run import score  # noqa: E402
from registry import Registry  # noqa: E402
from registry.store import ModelVersion  # noqa: E402
from training import demo_data  # noqa: E402
from training.quickfit import fit_demo  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "batch"


def prepare(rows: int, row_group_rows: int) -> tuple[Path, ModelVersion]:
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"demo-{rows}-rg{row_group_rows}.parquet"
    if not data.exists():
        pq.write_table(demo_data.to_table(demo_data.generate(rows, seed=1)), data, row_group_size=row_group_rows)
    registry = Registry(str(OUT / "registry"))
    if not registry.list_versions("demo"):
        fit_demo(registry)
    return data, registry.get("demo")


def columns(batch: pa.RecordBatch, version: ModelVersion) -> dict[str, np.ndarray]:
    """Arrow -> the columns ``Preprocessor.transform`` takes, the cheapest way we know."""
    out = {}
    for spec in version.schema.inputs:
        arr = batch.column(spec.name)
        if spec.categorical:
            enc = pc.dictionary_encode(arr)
            levels = np.array(enc.dictionary.to_pylist() + [None], dtype=object)
            out[spec.name] = levels[enc.indices.fill_null(len(levels) - 1).to_numpy()]
        else:
            out[spec.name] = arr.to_numpy(zero_copy_only=False)
    return out


def bare_loop(data: Path, version: ModelVersion, batch_size: int, threads: int,
              dest: Path) -> tuple[float, float]:
    """(rows per second, CPU seconds) of read -> preprocess -> forward -> write in one process."""
    torch.set_num_threads(threads)
    pre, module, labels = version.preprocessor(), version.load_torch(), np.array(version.schema.class_labels)
    started, cpu = time.perf_counter(), time.process_time()
    pf = pq.ParquetFile(data)
    writer, pending, rows = None, [], 0
    for batch in pf.iter_batches(batch_size=batch_size):
        with torch.inference_mode():
            probs = module(torch.from_numpy(pre.transform(columns(batch, version)))).numpy()
        table = pa.table({"churn": batch.column("churn"), "_row": pa.array(np.arange(rows, rows + len(probs))),
                          "prob_stay": probs[:, 0], "prob_churn": probs[:, 1],
                          "predicted_label": pa.array(labels[probs.argmax(1)]),
                          "model_name": pa.array(np.full(len(probs), "demo", dtype=object), pa.string()),
                          "model_version": np.full(len(probs), version.version)})
        writer = writer or pq.ParquetWriter(dest, table.schema)
        pending.append(table)
        rows += len(probs)
        if sum(t.num_rows for t in pending) >= 131_072:
            writer.write_table(pa.concat_tables(pending), row_group_size=131_072 * 2)
            pending = []
    if pending:
        writer.write_table(pa.concat_tables(pending), row_group_size=131_072 * 2)
    writer.close()
    return rows / (time.perf_counter() - started), time.process_time() - cpu


def bare_process(data: Path, registry_root: str, batch_size: int, rows: int) -> float:
    """Rows per second of the bare loop as a program of its own (start to exit)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--bare-once", str(data), registry_root, str(batch_size)], check=True)
    return rows / (time.perf_counter() - started)


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
    """``mlgate score`` itself against the running Ray: wall time and the CLI driver's peak RSS."""
    dest = OUT / "scored-cli"
    shutil.rmtree(dest, ignore_errors=True)
    cmd = [sys.executable, "-m", "mlgate", "score", "--model", "demo", "--input", str(data), "--output", str(dest),
           "--registry", registry_root, "--batch-size", str(batch_size), "--concurrency", str(concurrency),
           "--address", address, "--no-progress"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with PeakRss(proc.pid) as rss:
        out, _ = proc.communicate()
    assert proc.returncode == 0, out
    return {"wall_s": time.perf_counter() - started, "summary": out.strip().splitlines()[1],
            "peak_cli_rss_mib": rss.peak / 2**20}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--row-group-rows", type=int, default=131_072, help="row groups of the input file")
    p.add_argument("--batch-sizes", default="1024,4096,16384")
    p.add_argument("--concurrency", default="1,2")
    p.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray")
    p.add_argument("--bare-once", nargs=3, metavar=("DATA", "REGISTRY", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.bare_once:
        data, root, batch = args.bare_once
        torch.set_num_threads(1)
        bare_loop(Path(data), Registry(root).get("demo"), int(batch), 1, OUT / "bare-process.parquet")
        return
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    data, version = prepare(args.rows, args.row_group_rows)
    table_mib = pq.read_table(data).nbytes / 2**20
    bare: dict[int, float] = {}
    bare_cpu: dict[int, float] = {}
    for b in sizes:
        measure(bare, bare_cpu, b, data, version)
    fresh = {b: bare_process(data, version.registry.root, b, args.rows) for b in sizes}

    import ray

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        runs = [ray_run(data, version.registry.root, b, c)
                for c in map(int, args.concurrency.split(",")) for b in sizes]
        cli = cli_run(data, version.registry.root, max(sizes), 2, ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
    for b in sizes:  # the baseline again after the Ray runs; keep its best
        measure(bare, bare_cpu, b, data, version)
    report(args, table_mib, bare, bare_cpu, fresh, runs, cli)


def measure(bare: dict, bare_cpu: dict, batch_size: int, data: Path, version: ModelVersion) -> None:
    """Best rows/s over 1 and 2 torch threads; the least CPU time (one thread: no spinning)."""
    for threads in (1, 2):
        rate, cpu = bare_loop(data, version, batch_size, threads, OUT / "bare.parquet")
        bare[batch_size] = max(bare.get(batch_size, 0.0), rate)
        if threads == 1:
            bare_cpu[batch_size] = min(bare_cpu.get(batch_size, float("inf")), cpu)


def report(args, table_mib: float, bare: dict[int, float], bare_cpu: dict[int, float], fresh: dict[int, float],
           runs: list[dict], cli: dict) -> None:
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB", "load_avg": os.getloadavg(),
            "rows": args.rows, "row_group_rows": args.row_group_rows, "input_arrow_mib": table_mib,
            "torch": torch.__version__, "bare_rows_per_s": bare, "bare_process_rows_per_s": fresh,
            "bare_cpu_s": bare_cpu, "runs": runs,
            "cli": cli}
    (OUT / "results.json").write_text(json.dumps(meta, indent=1))
    print(f"{meta['date']}  {meta['machine']}  load {meta['load_avg']}  {args.rows:,} rows "
          f"(row groups of {args.row_group_rows:,}; {table_mib:.0f} MiB as Arrow)")
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
    print(f"mlgate score CLI (batch {max(bare)}, 2 actors, --address of that Ray): {cli['wall_s']:.1f} s wall "
          f"({args.rows / cli['wall_s']:,.0f} rows/s with its own start); {cli['summary']}; "
          f"peak CLI RSS {cli['peak_cli_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
