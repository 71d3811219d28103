"""Drift monitor throughput: log rows per second from Parquet segments on disk to drift verdicts,
against the kernels' own speed on the same rows.

    python benchmarks/bench_monitor.py [--quick] [--rows N] [--repeat R] [--rows-only feedback] [--write-results]

Data: rows of the ``demo`` schema written by serving's own prediction-log writer
(``serving.predlog.PredictionLogWriter``: zstd Parquet, dictionary encoding only for repeated
values and strings), as requests of ``--request-rows`` rows each, one segment per
``--segment-rows`` (the writer is flushed after each): 8 tested input features (5 numeric, 3
categorical; the personal-data feature is not written, as without a salt), the outputs
(class probabilities and label), plus the fixed columns; the second half of the rows is shifted.
The reference profiles (inputs on 50,000 training rows, outputs) live in a registry
version, as in production. The row "multivariate + CBPE" reads a second registry whose version
also has a preprocessor, the multivariate reference (PCA of the preprocessed features) and the
CBPE calibration: its kernels also compute the row reconstruction errors and the expected
confusion (on the preprocessed matrices, made beforehand), the monitor also preprocesses.

Measured over ``--repeat`` runs each from a fresh state (best and median wall time, best CPU time):

* **monitor**: one ``ModelMonitor.tick`` over every segment: listing, reading only the
  needed columns, status/version filtering, Arrow to numpy, bucketing, per-bucket
  ``partial_fit``, window merges, scoring inputs and outputs, verdicts, alerts, metrics and
  state files; for a model with feedback labels (the row that says so) also the join keys
  of every prediction (request ids read, keys built and stored) and the label join;
* **kernels**: the same statistics straight on the same rows already in memory as the
  numpy columns the monitor hands over: per segment ``Window.partial_fit``, per window
  ``merge`` and ``ReferenceProfile.score`` (inputs and outputs);
* **read**: reading the needed columns of every segment and converting them, alone.

Monitor and kernel runs alternate, so both see the same share of a shared machine's load.

The monitor's own cost is monitor - kernels in CPU time; the target is that it stays below the kernels.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import results_md  # noqa: E402
from contracts import feedback, predlog  # noqa: E402
from monitoring.config import MonitoringConfig  # noqa: E402
from monitoring.ingest import Contexts  # noqa: E402
from monitoring.monitor import ModelMonitor  # noqa: E402
from monitoring.retrain import Roots  # noqa: E402
from registry.preprocess import Preprocessor  # noqa: E402
from registry.references import (  # noqa: E402
    CBPE_FILE,
    MULTIVARIATE_FILE,
    OUTPUT_PROFILE_FILE,
    PROFILE_FILE,
    fit_cbpe,
    fit_multivariate,
    fit_output_profile,
)
from registry.store import Registry  # noqa: E402
from serving.config import PredictionLogConfig  # noqa: E402
from serving.observers import RequestRecord
from serving.predlog import PredictionLogWriter  # noqa: E402
from training import demo_data  # noqa: E402
from training.dataschema import DatasetSchema  # noqa: E402
from training.profile import build_profile  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Drift monitoring (issue 8)"
T0_US = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC).timestamp() * 1e6)


def toy_model(cols: dict[str, np.ndarray]) -> np.ndarray:
    income = np.nan_to_num(np.log(cols["income"]), nan=10.5)
    logit = -1.2 * (income - 10.5) - 0.04 * (cols["tenure_months"] - 30.0) + np.where(cols["plan"] == "basic", 0.8, 0)
    p = 1.0 / (1.0 + np.exp(-logit))
    return np.stack([1 - p, p], axis=1).astype(np.float32)


def publish(root: str, rows: int = 50_000, references: bool = False) -> None:
    """``references``: also the preprocessor, the multivariate and the CBPE references (the
    last 20% of the rows as the held-out split)."""
    schema = demo_data.demo_schema()
    cols = demo_data.generate(rows, seed=0)
    proba = toy_model(cols)
    labels = np.array(schema.class_labels, dtype=object)[proba.argmax(1)]
    files = {"model.pt": b"-", "schema.json": schema.model_dump_json().encode(),
             PROFILE_FILE: build_profile(cols, DatasetSchema.from_model_schema(schema, demo_data.CATEGORICAL)),
             OUTPUT_PROFILE_FILE: fit_output_profile(schema, {"probabilities": proba, "label": labels})}
    if references:
        cut = rows * 4 // 5
        train, held = ({k: v[:cut] for k, v in cols.items()}, {k: v[cut:] for k, v in cols.items()})
        pre = Preprocessor.fit(schema, train)
        truth = (cols[demo_data.TARGET][cut:] == demo_data.CLASS_LABELS[1]).astype(int)
        files |= {"preprocessor.json": pre.to_json().encode(), MULTIVARIATE_FILE: fit_multivariate(pre, train, held),
                  CBPE_FILE: fit_cbpe(schema, proba[cut:], truth)}
    Registry(root).publish("demo", files)


def request_id(i: int) -> str:
    return f"req-{i:012x}"


def record_segment(writer: PredictionLogWriter, cols: dict[str, np.ndarray], first_row: int,
                   request_rows: int) -> None:
    """One segment's rows as requests of ``request_rows`` rows (each named and stamped by its
    first row, rows 1 ms apart), then one flush: one published segment."""
    schema = demo_data.demo_schema()
    proba = toy_model(cols)
    labels = np.array(demo_data.CLASS_LABELS, dtype=object)[proba.argmax(1)]
    inputs = {spec.name: cols[spec.name] for spec in schema.inputs}
    for start in range(0, len(proba), request_rows):
        part = slice(start, start + request_rows)
        row = first_row + start
        writer.buffer.record(RequestRecord(request_id(row), T0_US + row * 1000, "demo", "1", "v2", 200, 1.0, None,
                                    len(proba[part]), {k: v[part] for k, v in inputs.items()},
                                    {"probabilities": proba[part], "label": labels[part]}, schema))
    writer.flush()


def write_logs(root: str, rows: int, segment_rows: int, request_rows: int) -> int:
    """``rows`` rows through serving's writer; only the explicit flushes publish segments."""
    cfg = PredictionLogConfig(flush_interval_s=3600, max_rows=10**9, max_buffer_rows=10**9)
    writer = PredictionLogWriter(root, cfg)
    n_segments = rows // segment_rows
    try:
        for s in range(n_segments):
            cols = demo_data.generate(segment_rows, seed=100 + s, shift=1.0 if s >= n_segments // 2 else 0.0)
            record_segment(writer, cols, s * segment_rows, request_rows)
    finally:
        writer.close()
    assert len(predlog.list_segments(root, "demo")) == n_segments, "the writer published unexpected segments"
    return n_segments


def with_feedback(d: str, request_rows: int) -> str:
    """A log root with the same segments (hard links) plus feedback labels for their first
    1,000 rows: there the monitor keeps the join keys of every prediction it reads."""
    root = f"{d}/logs-feedback"
    for path in Path(f"{d}/logs").rglob("*.parquet"):
        target = Path(root) / path.relative_to(f"{d}/logs")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    ids = [request_id(i - i % request_rows) for i in range(1000)]
    rows = [i % request_rows for i in range(1000)]
    received = dt.datetime.fromtimestamp(T0_US / 1e6 + 3600, dt.UTC)  # an hour into the logged day
    feedback.FeedbackWriter(root).write("demo", feedback.table(ids, rows, ["stay"] * len(ids), [None] * len(ids),
                                                               received))
    return root


def interleaved(a, b, repeat: int) -> tuple[dict, dict]:
    """Time ``a`` and ``b`` alternately (a shared machine's load drifts): best and median wall
    time, and best CPU time (all threads of this process), each."""
    runs: tuple[list, list] = ([], [])
    for _ in range(repeat):
        for fn, out in zip((a, b), runs):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            out.append((time.perf_counter() - wall, time.process_time() - cpu))
    return tuple({"best": min(w for w, _ in r), "median": statistics.median(w for w, _ in r),
                  "cpu": min(c for _, c in r)} for r in runs)


def run_monitor(d: str, window: dict, live: bool = True, logs: str = "logs", registry: str = "registry") -> None:
    state = f"{d}/state"
    shutil.rmtree(state, ignore_errors=True)
    cfg = MonitoringConfig(state_root=state, backfill_s=10**9, window=window, max_segments_per_tick=10**6,
                           live={"enabled": live})
    # the monitor runs a day after the logged traffic, on a clock of its own (not the machine's date)
    m = ModelMonitor("demo", cfg, Roots(f"{d}/{registry}", f"{d}/{logs}", "", ""), clock=lambda: T0_US / 1e6 + 86400)
    out = m.tick()
    assert out.rows > 0 and out.windows


def read_columns(d: str, registry: str = "registry") -> list[tuple[dict, dict, int]]:
    """Every segment's kernel columns as the monitor converts them (inputs, outputs, rows);
    with a multivariate reference, the inputs also carry the preprocessed matrix (``_matrix``)."""
    contexts = Contexts(f"{d}/{registry}", "demo")
    contexts.refresh()
    ctx = contexts.get("1")
    out = []
    for seg in predlog.list_segments(f"{d}/logs", "demo"):
        table = predlog.read_segments(f"{d}/logs", [seg], contexts.columns(), dictionary=contexts.dictionary_columns())
        model_out = ctx.model_outputs(table)
        inputs = ctx.input_columns(table)
        if ctx.multivariate is not None:
            inputs["_matrix"] = ctx.multivariate_rows(inputs)
        out.append((inputs, ctx.output_columns(model_out, table.num_rows), table.num_rows))
    return out


def run_kernels(ctx, segments: list[tuple[dict, dict, int]], per: int, k: int) -> None:
    """Buckets of ``per`` segments (one ``partial_fit`` per segment, as the monitor does); per
    window of ``k`` buckets ``merge`` + ``score``, inputs and outputs."""
    extra = ctx.multivariate is not None  # and the CBPE reference: the multivariate + CBPE row
    buckets = []
    for b in range(0, len(segments) - per + 1, per):
        wi, wo = ctx.profile.new_window(), ctx.outputs_profile.new_window()
        wm, wc = (ctx.multivariate.new_window(), ctx.cbpe.new_window()) if extra else (None, None)
        for inputs, outputs, _ in segments[b:b + per]:
            wi.partial_fit({k: v for k, v in inputs.items() if k != "_matrix"})
            wo.partial_fit(outputs)
            if extra:
                wm.partial_fit(inputs["_matrix"])
                wc.partial_fit(outputs[ctx.cbpe_column])
        buckets.append((wi, wo, wm, wc))
    for end in range(k - 1, len(buckets)):
        wi, wo = ctx.profile.new_window(), ctx.outputs_profile.new_window()
        wm, wc = (ctx.multivariate.new_window(), ctx.cbpe.new_window()) if extra else (None, None)
        for bi, bo, bm, bc in buckets[end - k + 1:end + 1]:
            wi.merge(bi)
            wo.merge(bo)
            if extra:
                wm.merge(bm)
                wc.merge(bc)
        ctx.profile.score(wi)
        ctx.outputs_profile.score(wo)
        if extra:
            wm.score()
            wc.estimate()


def verdict(ratios: dict[str, float]) -> str:
    missed = [f"{name} ({r:.2f})" for name, r in ratios.items() if r >= 1]
    return f"met (highest {max(ratios.values()):.2f})" if not missed else "MISSED on " + "; ".join(missed)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def write_section(lines: list[str]) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, keeping the others."""
    results_md.write_section(SECTION, lines, RESULTS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="200,000 rows, 2 runs")
    p.add_argument("--rows", type=int, help="log rows (default 1,000,000)")
    p.add_argument("--segment-rows", type=int, default=25_000, help="rows per segment (= one bucket)")
    p.add_argument("--request-rows", type=int, default=250, help="rows per logged request")
    p.add_argument("--repeat", type=int, help="timed runs per measurement (default 5)")
    p.add_argument("--rows-only", choices=["feedback", "multivariate"], help="time only these table rows "
                   "(feedback: the model with feedback, multivariate: the version with the multivariate and CBPE "
                   "references; each with, as its baseline, the same windows without)")
    p.add_argument("--write-results", action="store_true", help=f"update {RESULTS.name}")
    args = p.parse_args()
    if args.write_results and args.rows_only:
        p.error("--write-results records the whole table: leave out --rows-only")
    rows = args.rows or (200_000 if args.quick else 1_000_000)
    repeat = args.repeat or (2 if args.quick else 5)
    seg = args.segment_rows
    load_start = load_average()
    d = tempfile.mkdtemp(prefix="mlg-bench-monitor-")
    try:
        publish(f"{d}/registry")
        publish(f"{d}/registry-mv", references=True)
        n_segments = write_logs(f"{d}/logs", rows, seg, args.request_rows)
        size_mb = sum(f.stat().st_size for f in Path(f"{d}/logs").rglob("*.parquet")) / 1e6
        run_monitor(d, {"by": "rows", "size_rows": 2 * seg})  # warm: numba caches, imports
        run_monitor(d, {"by": "rows", "size_rows": 2 * seg}, registry="registry-mv")
        read = interleaved(lambda: read_columns(d), lambda: None, repeat)[0]
        segments, segments_mv = read_columns(d), read_columns(d, "registry-mv")
        ctx, ctx_mv = Contexts(f"{d}/registry", "demo").get("1"), Contexts(f"{d}/registry-mv", "demo").get("1")
        cmd = "python benchmarks/bench_monitor.py " + " ".join(sys.argv[1:])
        lines = [
            f"{dt.date.today().isoformat()}, `{cmd.strip()}`; {cpu_name()}, {os.cpu_count()} cores, "
            f"{numba.get_num_threads()} numba threads; numba {numba.__version__}, pyarrow {pa.__version__}.",
            f"Data: {rows:,} log rows in {n_segments} zstd Parquet segments of {seg:,} rows ({size_mb:.1f} MB) "
            f"written by serving's `PredictionLogWriter` from requests of {args.request_rows:,} rows, "
            "demo schema (5 numeric + 3 categorical tested inputs, 2 outputs), second half shifted; reference "
            f"profiles from 50,000 rows. Best of {repeat} runs (median), each from a fresh state; CPU = process "
            "time of all threads (steadier than wall time on a shared machine).",
            "",
            "| windows | monitor, disk to verdicts: wall (median), CPU | kernels only, in memory: wall (median), CPU "
            "| monitor's own CPU | own CPU / kernels CPU | monitor rows/s (wall) | kernels rows/s (wall) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        logs_fb = with_feedback(d, args.request_rows)[len(d) + 1:]
        ratios: dict[str, float] = {}
        table_rows = ((2 * seg, 2 * seg, True, "logs", "registry"), (4 * seg, 2 * seg, True, "logs", "registry"),
                      (4 * seg, seg, True, "logs", "registry"), (2 * seg, 2 * seg, True, logs_fb, "registry"),
                      (2 * seg, 2 * seg, False, "logs", "registry"), (2 * seg, 2 * seg, True, "logs", "registry-mv"))
        if args.rows_only:
            table_rows = (table_rows[0], table_rows[3 if args.rows_only == "feedback" else 5])
        for size, slide, live, logs, reg in table_rows:
            name = f"tumbling {size:,} rows" if size == slide else f"sliding {size:,} rows every {slide:,}"
            name += ", model with feedback (join keys kept)" if logs != "logs" else ""
            name += "" if live else ", `live.enabled: false`"
            name += ", multivariate + CBPE on" if reg != "registry" else ""
            window = {"by": "rows", "size_rows": size, "slide_rows": slide}
            c, segs = (ctx_mv, segments_mv) if reg != "registry" else (ctx, segments)
            mon, ker = interleaved(lambda w=window, lv=live, lg=logs, r=reg: run_monitor(d, w, lv, lg, r),
                                   lambda p=slide // seg, k=size // slide, c=c, s=segs: run_kernels(c, s, p, k),
                                   repeat)
            own = mon["cpu"] - ker["cpu"]
            ratios[name] = own / ker["cpu"]
            lines.append(f"| {name} | {mon['best']:.2f} s ({mon['median']:.2f}), {mon['cpu']:.2f} s | "
                         f"{ker['best']:.2f} s ({ker['median']:.2f}), {ker['cpu']:.2f} s | {own:.2f} s | "
                         f"{own / ker['cpu']:.2f} | {rows / mon['best']:,.0f} | {rows / ker['best']:,.0f} |")
        lines += ["", f"Reading and converting the needed columns alone: {read['best']:.2f} s "
                      f"({read['median']:.2f}), {read['cpu']:.2f} s CPU, {rows / read['best']:,.0f} rows/s.",
                  f"1-minute load average at start / end of the run: {load_start} / {load_average()}.",
                  "",
                  "Where the monitor's own time goes (cProfile with CPU time, tumbling, 400,000 rows): decoding "
                  "the needed Parquet columns about half of it (categoricals and string outputs read as Arrow "
                  "dictionaries, then one take from the distinct strings to the kernels' arrays); then strings "
                  "and matrices to kernel columns, window and verdict records, state files, and loading the "
                  "reference profiles once. A model with feedback labels also reads the request id and row index "
                  "of every prediction, builds and stores its join keys (uncompressed: lz4 cost three times the "
                  "CPU; request ids as one dictionary entry per request) and joins the labels (the label ids "
                  "looked up in each key batch's id dictionary, then one hash join on the matching rows); a model "
                  "without feedback keeps one stub per segment instead, and the first labels read the keys of "
                  "the stubbed segments then.",
                  f"Target (own CPU / kernels CPU < 1 on every row): {verdict(ratios)}."]
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("\n".join(lines))
    if args.write_results:
        write_section(lines)


if __name__ == "__main__":
    main()
