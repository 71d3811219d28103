"""What prediction logging and metrics cost on the request path (issue 5).

    python -m benchmarks.bench_observability [--duration-s 15] [--rounds 2] [--record]

Runs ``mlgate up`` (on Ray, as users run it) with the `mlp` bench model twice per
round: prediction log + metrics ON, then both OFF (``serving.prediction_log.enabled``,
``serving.metrics.enabled``), same wrk load (c=64, one v2 JSON row per request),
alternating to spread machine noise over both. Reports req/s of each and the ratio
on/off; the goal is >= 0.95. Reuses the serving harness (benchmarks/serving).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]

from benchmarks.serving import models as bm  # noqa: E402
from benchmarks.serving import report  # noqa: E402
from benchmarks.serving.base import Context, Launch  # noqa: E402
from benchmarks.serving.run import parse_args, run_server  # noqa: E402
from benchmarks.serving.servers import Mlgate  # noqa: E402


@dataclass
class MlgateObservabilityOff(Mlgate):
    name: str = "mlgate-obs-off"

    def launch(self, ctx: Context) -> Launch:
        launch = super().launch(ctx)
        for key in list(launch.env):
            if key.endswith("__ENABLED") and key.startswith("MLGATE_SERVING__"):
                launch.env[key] = "false"
        self.observability = []
        return launch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration-s", type=float, default=15.0)
    p.add_argument("--warmup-s", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=2, help="on/off pairs, alternating")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    harness = parse_args(["--duration-s", str(args.duration_s), "--warmup-s", str(args.warmup_s),
                          "--concurrency", str(args.concurrency), "--servers", "mlgate", "--models", bm.MLP])
    work = Path(tempfile.mkdtemp(prefix="mlgobs-"))
    out = REPO / "benchmarks" / "out"
    rows: list[report.Row] = []
    try:
        ctx = Context(REPO, work, out / "venvs", bm.prepare(work / "models"), (bm.MLP,))
        for _ in range(args.rounds):
            for server in (Mlgate(), MlgateObservabilityOff()):
                rows += run_server(server, ctx, harness, out / "logs", out / "profiles")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    on = [r for r in rows if r.server == "mlgate" and r.model == bm.MLP and r.rps]
    off = [r for r in rows if r.server == "mlgate-obs-off" and r.model == bm.MLP and r.rps]
    print(report.table(rows) + "\n" + report.disturbance(rows))
    if not on or not off:
        print("a server failed; no ratio")
        return 1
    ratio = sum(r.rps for r in on) / len(on) / (sum(r.rps for r in off) / len(off))
    pairs = [a.rps / b.rps for a, b in zip(on, off)]  # each round's on/off, run back to back
    summary = (f"mean req/s with logging+metrics on: {sum(r.rps for r in on) / len(on):,.0f}; off: "
               f"{sum(r.rps for r in off) / len(off):,.0f}; ratio on/off = {ratio:.3f} (goal >= 0.95); "
               f"per round: {', '.join(f'{x:.3f}' for x in pairs)}")
    print(summary)
    if args.record:
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = (f"\n## Cost of prediction logging and metrics (issue 5)\n\n### {when}: {report.machine()}\n\n"
                   f"Command: `python -m benchmarks.bench_observability --duration-s {args.duration_s:g} "
                   f"--rounds {args.rounds} --record`. mlgate up on a local Ray, `mlp` model, wrk -t1 "
                   f"c={args.concurrency}, {args.duration_s:g} s per cell after {args.warmup_s:g} s warm-up, "
                   f"runs alternating on/off.\n\n{report.table(rows)}\n\n{report.disturbance(rows)}\n\n{summary}\n")
        with open(REPO / "benchmarks" / "RESULTS.md", "a") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
