"""Rows of figures, the one table, the JSON/CSV files, the goal ratios and RESULTS.md."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import platform
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from benchmarks.serving import models as bm
from benchmarks.serving.servers import PEERS

SECTION = "## Serving throughput (issue 7)"
DISTURBED_CORES = 0.25  # "other CPU" above this marks a run as disturbed
AUTH_GOAL = 0.97  # issue 16: access control (an API key) costs at most 3% of req/s at c=64
AUTH_PAIRS = (("mlgate", "mlgate-noauth"), ("mlgate-noray", "mlgate-noray-noauth"))  # (auth on, auth off)
TLS_PAIRS = (("mlgate-tls", "mlgate"), ("mlgate-noray-tls", "mlgate-noray"),  # (TLS, the other side)
             ("mlgate-noray-tls", "nginx-tls"), ("nginx-tls", "mlgate-noray"))


@dataclass
class Row:
    server: str
    model: str
    concurrency: int | None = None
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None  # non-2xx + socket errors
    server_cpu: float | None = None  # cores
    wrk_cpu: float | None = None  # cores
    other_cpu: float | None = None  # cores: the rest of the machine
    requests: int | None = None
    duration_s: float | None = None
    status: str = "ok"  # or "failed: <reason>"
    ok_rps: float | None = None  # overload cells: 2xx per second (goodput)
    shed_rps: float | None = None  # 503 per second
    deadline_rps: float | None = None  # 504 per second

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def server_us_per_request(self) -> float | None:
        """The server's CPU per request in µs (its CPU in cores over req/s)."""
        return self.server_cpu / self.rps * 1e6 if self.server_cpu is not None and self.rps else None


def failed(server: str, model: str, reason: str) -> Row:
    return Row(server, model, status="failed: " + " ".join(reason.split())[:300])


HEADER = ("server", "model", "c", "req/s", "p50 ms", "p99 ms", "errors", "server CPU", "server µs/req", "wrk CPU",
          "other CPU")


def cells(r: Row) -> tuple[str, ...]:
    if not r.ok:
        return (r.server, r.model, "-", r.status, "", "", "", "", "", "", "")
    mark = " !" if (r.other_cpu or 0) > DISTURBED_CORES else "  "
    per_request = f"{r.server_us_per_request:.0f}" if r.server_us_per_request is not None else "-"
    return (r.server, r.model, str(r.concurrency), f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
            str(r.errors), f"{r.server_cpu:.2f}", per_request, f"{r.wrk_cpu:.2f}", f"{r.other_cpu:.2f}{mark}")


def table(rows: list[Row]) -> str:
    rows = [r for r in rows if r.ok_rps is None]
    body = [cells(r) for r in rows]
    ok_body = [b for b, r in zip(body, rows) if r.ok]
    widths = [max([len(h)] + [len(b[i]) for b in ok_body]) for i, h in enumerate(HEADER)]
    def line(cols):  # noqa: E306
        return "  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    out = [line(HEADER), line(["-" * w for w in widths])]
    for b, r in zip(body, rows):
        out.append(line(b) if r.ok else f"{b[0].ljust(widths[0])}  {b[1].ljust(widths[1])}  {r.status}")
    out.append(f"CPU in cores over the measured run; '!' marks other CPU > {DISTURBED_CORES} cores (a disturbed run).")
    return "\n".join(out)


def least_disturbed(rows: list[Row], server_order: list[str]) -> list[Row]:
    """One row per (server, model, c): the measured one with the lowest other CPU (or the
    failure, when no round measured it), in server order."""
    best: dict[tuple, Row] = {}
    for r in rows:
        key = (r.server, r.model, r.concurrency)
        old = best.get(key)
        if old is None or (r.ok and (not old.ok or r.other_cpu < old.other_cpu)):
            best[key] = r
    if any(r.ok for r in rows):  # a model that failed in one round and ran in another keeps the figures
        measured = {(r.server, r.model) for r in best.values() if r.ok}
        best = {k: r for k, r in best.items() if r.ok or (r.server, r.model) not in measured}
    rank = {name: i for i, name in enumerate(server_order)}
    return sorted(best.values(), key=lambda r: rank.get(r.server, len(rank)))


def disturbance(rows: list[Row]) -> str:
    """How much the rest of the machine ran during the measured cells."""
    other = sorted(r.other_cpu for r in rows if r.ok and r.other_cpu is not None)
    if not other:
        return "other CPU: no measured cells"
    bad = sum(o > DISTURBED_CORES for o in other)
    verdict = "a quiet machine" if not bad else "figures disturbed by other work on the machine; repeat when quiet"
    return (f"other CPU during the cells: median {other[len(other) // 2]:.2f} cores, max {other[-1]:.2f}; "
            f"{bad} of {len(other)} cells above {DISTURBED_CORES} cores ({verdict})")


def overload_table(rows: list[Row], markdown: bool = False) -> str:
    """The overload cells: goodput and what was shed, per second."""
    head = ("server", "model", "c", "2xx/s", "503/s", "504/s", "p99 ms (all)", "server CPU", "other CPU")
    body = [(r.server, r.model, str(r.concurrency), f"{r.ok_rps:,.0f}", f"{r.shed_rps:,.0f}",
             f"{r.deadline_rps:,.0f}", f"{r.p99_ms:.1f}", f"{r.server_cpu:.2f}", f"{r.other_cpu:.2f}")
            for r in rows if r.ok and r.ok_rps is not None]
    if markdown:
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                         + ["| " + " | ".join(b) + " |" for b in body])
    widths = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(head)]
    return "\n".join("  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))
                     for cols in [head, *body])


def markdown_table(rows: list[Row]) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        c = cells(r) if r.ok else (r.server, r.model, "-", r.status)
        out.append("| " + " | ".join(x.strip() for x in c) + " |")
    return "\n".join(out)


# -- ratios the goals are stated in --------------------------------------------
@dataclass
class Ratio:
    what: str
    value: float | None
    goal: str
    met: bool | None
    note: str = ""


def _find(rows: list[Row], server: str, model: str, c: int) -> Row | None:
    return next((r for r in rows if r.ok and r.server == server and r.model == model and r.concurrency == c), None)


def ratios(rows: list[Row], high: int = 64, low: int = 1) -> list[Ratio]:
    out: list[Ratio] = []
    for model in (bm.MLP, bm.DEMO):
        ours = _find(rows, "mlgate", model, high)
        peers = [r for p in PEERS if (r := _find(rows, p, model, high)) is not None]
        best = max(peers, key=lambda r: r.rps, default=None)
        plain = _find(rows, "ray-serve", model, high)
        if ours and best:
            out.append(Ratio(f"{model}: mlgate c={high} req/s / best peer's", ours.rps / best.rps, ">= 1.0",
                             ours.rps >= best.rps, best.server))
            out.append(Ratio(f"{model}: mlgate c={high} p99 / best peer's p99", ours.p99_ms / best.p99_ms, "<= 1.0",
                             ours.p99_ms <= best.p99_ms, best.server))
        if ours and plain:
            out.append(Ratio(f"{model}: mlgate c={high} req/s / plain Ray Serve's", ours.rps / plain.rps, ">= 20",
                             ours.rps >= 20 * plain.rps))
        if (one := _find(rows, "mlgate", model, low)) is not None:
            out.append(Ratio(f"{model}: mlgate c={low} p50 (ms)", one.p50_ms, "< 1 ms", one.p50_ms < 1.0))
        if ours and (bare := _find(rows, "bare-uvicorn", model, high)) is not None:
            out.append(Ratio(f"{model}: mlgate c={high} req/s / bare uvicorn's (reference)", ours.rps / bare.rps,
                             "info", None))
    on = _find(rows, "mlgate", bm.HEAVY, high)
    off = _find(rows, "mlgate", bm.HEAVY_NOBATCH, high)
    if on and off:
        out.append(Ratio(f"heavy: mlgate c={high} req/s batching on / off", on.rps / off.rps, ">= 5",
                         on.rps >= 5 * off.rps))
    return out + pair_ratios(rows, high, low)


def pair_ratios(rows: list[Row], high: int = 64, low: int = 1) -> list[Ratio]:
    """Auth on / off (issue 16's goal at c=``high``) and TLS against plain and nginx: req/s
    and server CPU per request, per model and concurrency measured on both sides."""
    out: list[Ratio] = []
    pairs = [(a, b, "auth on / off") for a, b in AUTH_PAIRS] + [(a, b, f"/ {b}") for a, b in TLS_PAIRS]
    for first, second, what in pairs:
        for model in (bm.MLP, bm.HEAVY, bm.DEMO):
            for c in (low, high):
                a, b = _find(rows, first, model, c), _find(rows, second, model, c)
                if a is None or b is None:
                    continue
                goal = what == "auth on / off" and c == high
                out.append(Ratio(f"{model}: {first} c={c} req/s {what}", a.rps / b.rps,
                                 f">= {AUTH_GOAL:g}" if goal else "info", a.rps >= AUTH_GOAL * b.rps if goal else None))
                if a.server_us_per_request and b.server_us_per_request:
                    out.append(Ratio(f"{model}: {first} c={c} server CPU per request {what} "
                                     f"({a.server_us_per_request:.0f} / {b.server_us_per_request:.0f} µs)",
                                     a.server_us_per_request / b.server_us_per_request, "info", None))
    return out


def abuse_text(rows: list[Row]) -> str:
    """Each slowloris cell's p99 beside the same server and model's plain c=1 p99."""
    lines = []
    for r in rows:
        if not r.ok or "(slowloris" not in r.model:
            continue
        model = r.model.split(" (", 1)[0]
        base = _find(rows, r.server, model, 1)
        ratio = f"{r.p99_ms / base.p99_ms:.2f}x" if base is not None and base.p99_ms else "-"
        lines.append(f"  {r.server} {r.model}: p99 {r.p99_ms:.2f} ms, errors {r.errors}; "
                     f"without: {base.p99_ms if base else float('nan'):.2f} ms ({ratio})")
    return "\n".join(lines) or "  none"


def ratio_text(items: list[Ratio]) -> str:
    lines = []
    for r in items:
        verdict = {True: "met", False: "NOT met", None: ""}[r.met]
        value = "n/a" if r.value is None else f"{r.value:.2f}"
        note = f" (vs {r.note})" if r.note else ""
        lines.append(f"  {r.what}{note}: {value}  goal {r.goal}  {verdict}".rstrip())
    return "\n".join(lines)


# -- files -----------------------------------------------------------------------------
def machine() -> dict:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor())
    mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                  if ln.startswith("MemTotal"))
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(), "host": platform.node()}


def write_files(rows: list[Row], meta: dict, out_dir: Path, stamp: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"serving-{stamp}.json"
    csv_path = out_dir / f"serving-{stamp}.csv"
    doc = {**meta, "rows": [asdict(r) for r in rows], "ratios": [asdict(r) for r in ratios(rows)]}
    json_path.write_text(json.dumps(doc, indent=1))
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(Row)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    for latest, src in (("serving-latest.json", json_path), ("serving-latest.csv", csv_path)):
        (out_dir / latest).write_bytes(src.read_bytes())
    return json_path, csv_path


def results_section(rows: list[Row], meta: dict) -> str:
    m = meta["machine"]
    items = ratios(rows)
    ratio_rows = ["| ratio | value | goal | met |", "|---|---|---|---|"]
    for r in items:
        what = r.what + (f" (vs {r.note})" if r.note else "")
        value = "n/a" if r.value is None else f"{r.value:.2f}"
        met = {True: "yes", False: "NO", None: ""}[r.met]
        ratio_rows.append(f"| {what} | {value} | {r.goal} | {met} |")
    rounds = f"; per cell the least disturbed of {meta['repeat']} rounds" if meta.get("repeat", 1) > 1 else ""
    return "\n".join([
        f"### {meta['date']}: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB",
        "",
        f"Command: `{meta['command']}` ({meta['wall_s'] / 60:.1f} min wall"
        f"{rounds}). "
        f"wrk -t1, {meta['duration_s']:g} s "
        f"per cell after {meta['warmup_s']:g} s warm-up, loopback; one v2 JSON row per request "
        f"({meta['body_bytes']} bytes for mlp/heavy); one torch thread per model; batching servers at max 64 rows, "
        f"2 ms. mlgate observability switched on: {', '.join(meta['observability']) or 'none found in config'}. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}.",
        "",
        markdown_table([r for r in rows if r.ok_rps is None]),
        "",
        *(["Overload cells (wrk at high concurrency, X-Mlgate-Timeout-Ms set; peers ignore the header):", "",
           overload_table(rows, markdown=True), ""] if any(r.ok_rps is not None for r in rows) else []),
        f"CPU in cores over the measured run; '!' marks other CPU > {DISTURBED_CORES} cores (disturbed). "
        f"{disturbance(rows)[0].upper()}{disturbance(rows)[1:]}.",
        "",
        *ratio_rows,
        "",
    ])


def append_results(path: Path, section_text: str) -> None:
    """Insert our dated subsection at the end of the SECTION (created at the end of the
    file if absent); other sections are left as they are. Locked against writers here."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read()
        lines = text.splitlines()
        if SECTION not in lines:
            new = text.rstrip("\n") + ("\n\n" if text.strip() else "# Benchmark results\n\n") + SECTION + "\n\n" \
                + section_text
        else:
            start = lines.index(SECTION)
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            before = "\n".join(lines[:end]).rstrip("\n")
            after = "\n".join(lines[end:])
            new = before + "\n\n" + section_text + ("\n" + after if after else "")
        f.seek(0)
        f.truncate()
        f.write(new.rstrip("\n") + "\n")
        fcntl.flock(f, fcntl.LOCK_UN)
