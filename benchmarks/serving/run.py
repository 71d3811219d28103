"""Side-by-side serving benchmark: mlgate against its peers, one table.

    python -m benchmarks.serving.run [--duration-s 15] [--warmup-s 3] [--concurrency 1,16,64]
        [--servers mlgate,ray-serve,torchserve,pytriton,bare-uvicorn] [--models mlp,heavy,demo]
        [--record] [--profile [SERVER:MODEL:C]]

Each server starts on 127.0.0.1 in turn with the same weights, is warmed up, driven
by ``wrk -t1`` at each concurrency, and stopped by PID (its whole process tree) before
the next one starts, also on Ctrl-C or an error. Figures go to ``benchmarks/out/``;
``--record`` appends a dated section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import shutil
import signal
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.serving import answers, procs, profile, report, slowloris, wrk  # noqa: E402
from benchmarks.serving import models as bm  # noqa: E402
from benchmarks.serving.base import Context, Server, Target, Unavailable  # noqa: E402
from benchmarks.serving.servers import DEFAULT_SERVERS, SERVERS  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serving.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration-s", type=float, default=15.0, help="measured seconds per cell (default 15)")
    p.add_argument("--warmup-s", type=float, default=3.0, help="warm-up seconds before each cell (default 3)")
    p.add_argument("--concurrency", default="1,16,64", help="wrk connections, comma-separated")
    p.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                   help=f"comma-separated, from: {', '.join(SERVERS)}")
    p.add_argument("--models", default="mlp,heavy,demo", help="comma-separated, from: mlp, heavy, demo")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "out"), help="output directory")
    p.add_argument("--overload", type=int, default=0, metavar="C",
                   help="also drive each model at C connections with a deadline header, counting 2xx/503/504")
    p.add_argument("--overload-deadline-ms", type=float, default=1000.0, help="X-Mlgate-Timeout-Ms of those")
    p.add_argument("--slowloris", type=int, default=0, metavar="N",
                   help="also drive each model at c=1 while N slowloris connections are held open (abuse cell)")
    p.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    p.add_argument("--results-file", default=str(REPO / "benchmarks" / "RESULTS.md"), help=argparse.SUPPRESS)
    p.add_argument("--profile", nargs="?", const="mlgate:mlp:64", default="", metavar="SERVER:MODEL:C[,...]",
                   help="py-spy the process serving HTTP during these cells (default mlgate:mlp:64)")
    p.add_argument("--profile-mode", choices=profile.MODES, default="active",
                   help="py-spy samples: active threads, only the GIL holder, or with C frames (pauses the process)")
    p.add_argument("--venvs", default=str(REPO / "benchmarks" / "out" / "venvs"),
                   help="where the peers' virtual environments live (reused across runs)")
    p.add_argument("--install-timeout-s", type=float, default=900.0, help="per peer venv install")
    p.add_argument("--repeat", type=int, default=1, help="run the servers this many times (order reversed each "
                   "round) and keep, per cell, the round least disturbed by other work (lowest other CPU)")
    p.add_argument("--keep-work", action="store_true", help="keep the scratch directory (registry, configs)")
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    args.profile = set(p for p in args.profile.split(",") if p)
    args.servers = [s for s in args.servers.split(",") if s]
    args.models = tuple(m for m in args.models.split(",") if m)
    unknown = [s for s in args.servers if s not in SERVERS] + [m for m in args.models
                                                             if m not in (bm.MLP, bm.HEAVY, bm.DEMO)]
    if unknown:
        p.error(f"unknown server or model: {', '.join(unknown)}")
    return args


def _sigterm_as_interrupt() -> None:
    def raise_interrupt(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, raise_interrupt)


def post(target: Target, timeout_s: float = 10.0) -> tuple[int | None, bytes]:
    """``target``'s request (its headers; over https, the certificate checked against its CA)."""
    req = urllib.request.Request(target.url, data=target.body,
                                 headers={"Content-Type": target.content_type, **dict(target.headers)})
    context = ssl.create_default_context(cafile=target.ca_file) if target.ca_file else None
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=context) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return None, repr(exc).encode()


def log_tail(path: Path, lines: int = 6) -> str:
    return " | ".join(ln.strip() for ln in _read(path).strip().splitlines()[-lines:])


def wait_ready(server: Server, targets: list[Target], proc, log_path: Path) -> None:
    """Until every target answers 200 with an output; Unavailable if the server dies or times out."""
    give_up = time.monotonic() + server.ready_timeout_s
    pending, last = list(targets), ""
    while pending or server.ready_log_marker not in _read(log_path):
        if proc.poll() is not None:
            raise Unavailable(f"exited with code {proc.returncode} before it was ready: {log_tail(log_path)}")
        if time.monotonic() > give_up:
            raise Unavailable(f"not ready after {server.ready_timeout_s:.0f}s (last: {last}): {log_tail(log_path)}")
        if not pending:
            last = f"waiting for {server.ready_log_marker!r} in the log"
            time.sleep(0.5)
            continue
        status, body = post(pending[0])
        if status == 200 and (b"output" in body or b"probabilities" in body):
            pending.pop(0)
            continue
        last = f"{pending[0].model}: {status} {body[:160]!r}"
        time.sleep(0.5)


def check_answers(server: Server, targets: list[Target], expected: dict) -> tuple[list[Target], list[report.Row]]:
    """One request per target, compared with mlgate's answer; a wrong one is a failed row."""
    good, failed = [], []
    for target in targets:
        problem = answers.mismatch(*post(target), expected[target.model]) if target.model in expected else None
        if problem:
            failed.append(report.failed(server.name, target.model, f"probe: {problem}"))
        else:
            good.append(target)
    checked = [t.model for t in good if t.model in expected]
    print(f"   answers match mlgate's: {', '.join(checked) or 'none'}"
          + "".join(f"; {r.model} {r.status}" for r in failed), flush=True)
    return good, failed


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def measure(server: Server, target: Target, c: int, tree: procs.ProcessTree, args, scratch: Path,
            prof_dir: Path, overload: bool = False, abuse: int = 0) -> report.Row:
    """One cell; ``abuse``: with that many slowloris connections held open meanwhile."""
    if abuse:
        with slowloris.Slowloris(server.port, abuse) as attack:
            if not attack.wait_held():
                raise RuntimeError(f"slowloris: only {attack.held} of {abuse} connections could be held")
            row = measure(server, target, c, tree, args, scratch, prof_dir)
        row.model = f"{target.model} (slowloris {abuse}, reopened {attack.opened - abuse})"
        return row
    headers = dict(target.headers)  # the credentials, and for the overload cells a deadline
    if overload:
        headers["X-Mlgate-Timeout-Ms"] = f"{args.overload_deadline_ms:g}"
    script = wrk.write_script(scratch / "wrk", f"{server.name}-{target.model}", target.body, target.content_type,
                              headers=headers, count_statuses=overload)
    if args.warmup_s > 0:
        wrk.run(target.url, script, connections=c, duration_s=args.warmup_s, out_path=scratch / "wrk" / "warmup.txt")
    spy = None
    if f"{server.name}:{target.model}:{c}" in args.profile:
        pid = _http_pid(server, tree)
        raw = prof_dir / f"{server.name}-{target.model}-c{c}-pid{pid}.txt"
        spy = (profile.start(pid, args.duration_s, raw, mode=args.profile_mode), raw) if pid else None
    before, busy0, t0 = tree.cpu_ticks(), procs.system_busy_ticks(), time.monotonic()
    result = wrk.run(target.url, script, connections=c, duration_s=args.duration_s,
                     out_path=scratch / "wrk" / f"{server.name}-{target.model}-c{c}.txt")
    after, busy1, wall = tree.cpu_ticks(), procs.system_busy_ticks(), time.monotonic() - t0
    server_s = procs.ticks_delta(before, after) / procs.CLK_TCK
    other_s = max(0.0, (busy1 - busy0) / procs.CLK_TCK - server_s - result.cpu_s)
    if spy and spy[0] is not None:
        spy[0].wait(timeout=args.duration_s + 60)
        if spy[1].exists():
            print(profile.summarise(spy[1]), flush=True)
            Path(str(spy[1]) + ".summary").write_text(profile.summarise(spy[1]) + "\n")
    row = report.Row(server.name, target.model, c, result.rps, result.p50_ms, result.p99_ms, result.errors,
                     server_s / wall, result.cpu_s / wall, other_s / wall, result.requests, result.duration_s)
    if result.statuses is not None:
        row.model = f"{target.model} (overload)"
        row.ok_rps, row.shed_rps, row.deadline_rps = (result.statuses[k] / result.duration_s
                                                      for k in ("2xx", "503", "504"))
    return row


def _http_pid(server: Server, tree: procs.ProcessTree) -> int | None:
    pids = procs.listening_pids(server.port) & set(tree.scan())
    return max(pids) if pids else None


def run_server(server: Server, ctx: Context, args, log_dir: Path, prof_dir: Path) -> list[report.Row]:
    served = server.served(ctx)
    if not served:
        return []
    print(f"== {server.name}: {', '.join(served)}", flush=True)
    try:
        server.prepare(ctx)
        launch = server.launch(ctx)
    except Exception as exc:  # noqa: BLE001 - any failure to set up a peer is reported
        return [report.failed(server.name, m, f"setup: {exc}") for m in served]
    log_path = log_dir / f"{server.name}.log"
    proc = procs.start(launch.argv, env=launch.env, cwd=launch.cwd, log_path=log_path)
    tree = procs.ProcessTree(proc.pid)
    rows: list[report.Row] = []
    try:
        targets = server.targets(ctx)
        started = time.monotonic()
        try:
            wait_ready(server, targets, proc, log_path)
        except Unavailable as exc:
            return [report.failed(server.name, t.model, str(exc)) for t in targets]
        print(f"   ready in {time.monotonic() - started:.0f}s (pid {proc.pid}, log {log_path})", flush=True)
        targets, rows = check_answers(server, targets, ctx.expected)
        cells = [(c, False, 0) for c in args.concurrency] + ([(args.overload, True, 0)] if args.overload else []) \
            + ([(1, False, args.slowloris)] if args.slowloris else [])
        for target in targets:
            for c, overload, abuse in cells:
                try:
                    row = measure(server, target, c, tree, args, ctx.work, prof_dir, overload, abuse)
                except RuntimeError as exc:
                    row = report.failed(server.name, target.model, f"c={c}: {exc}")
                rows.append(row)
                print("   " + "  ".join(report.cells(row)), flush=True)
        return rows
    finally:
        killed = procs.stop_tree(proc, tree, server.stop_signal, grace_s=60.0, signal_all=server.signal_all)
        if killed:
            print(f"   {server.name}: SIGKILLed what did not stop: {killed}", flush=True)


def versions() -> dict[str, str]:
    out = {}
    for dist in ("ray", "torch", "uvicorn", "orjson"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk.available():
        print("wrk not found: `apt-get install -y wrk` (make bench does it)", file=sys.stderr)
        return 2
    _sigterm_as_interrupt()
    started, when = time.monotonic(), dt.datetime.now(dt.UTC)
    stamp = when.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    log_dir, prof_dir = out / "logs" / stamp, out / "profiles"
    work = Path(tempfile.mkdtemp(prefix="mlgb-"))  # short: HAProxy socket paths must fit 97 bytes
    rows: list[report.Row] = []
    observability: list[str] = []
    interrupted = False
    try:
        print(f"building the bench models in {work} ...", flush=True)
        bench = bm.prepare(work / "models", args.models)
        ctx = Context(REPO, work, Path(args.venvs), bench, args.models, args.install_timeout_s,
                      expected=answers.reference_outputs(bench, args.models))
        for round_ in range(args.repeat):
            for name in args.servers if round_ % 2 == 0 else args.servers[::-1]:
                server = SERVERS[name]()
                rows += run_server(server, ctx, args, log_dir / f"round{round_ + 1}", prof_dir)
                observability = getattr(server, "observability", None) or observability
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: servers stopped; partial results follow", flush=True)
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    wall_s = time.monotonic() - started
    rows = report.least_disturbed(rows, args.servers)
    meta = {"date": when.strftime("%Y-%m-%d %H:%M UTC"), "machine": report.machine(),
            "command": "python -m benchmarks.serving.run " + shlex.join(argv if argv is not None else sys.argv[1:]),
            "duration_s": args.duration_s, "warmup_s": args.warmup_s, "wall_s": wall_s,
            "repeat": args.repeat, "body_bytes": len(bm.v2_tensor_body()), "observability": observability,
            "versions": versions(), "interrupted": interrupted}
    print("\n" + report.table(rows) + "\n" + report.disturbance(rows))
    if any(r.ok_rps is not None for r in rows):
        print(f"\noverload cells (deadline {args.overload_deadline_ms:g} ms):\n" + report.overload_table(rows))
    if args.slowloris:
        print("\nabuse cells (p99 at c=1, with and without slowloris):\n" + report.abuse_text(rows))
    print("\nratios (the issue's goals):\n" + (report.ratio_text(report.ratios(rows))
                                               or "  none: they need mlgate and peers at c=1 and c=64"))
    json_path, csv_path = report.write_files(rows, meta, out, stamp)
    print(f"\nwrote {json_path} and {csv_path}; server logs in {log_dir}; {wall_s / 60:.1f} min")
    if args.record and not interrupted:
        report.append_results(Path(args.results_file), report.results_section(rows, meta))
        print(f"appended to {args.results_file}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
