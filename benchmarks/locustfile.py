"""Load tests for a running mlgate (``make loadtest``): headless, bounded, with an exit code.

    locust -f benchmarks/locustfile.py --headless -H http://127.0.0.1:8000 -u 16 -r 16 -t 30s \
        --scenario mixed --model demo --bad-share 0.1 --slo-p99-ms 100 \
        --csv benchmarks/out/loadtest/mixed --html benchmarks/out/loadtest/mixed.html

Scenarios (``--scenario``), each one user class, picked by the load shape:

* ``v2json``  v2 inference, JSON tensors;  ``v2binary``  the binary tensor extension;
* ``plain``   the plain JSON rows route ``/v1/models/{m}:predict``;
* ``mixed``   all three, plus a share (``--bad-share``) of bad inputs that must get 400:
  those count as successes under their own name, ``bad input [400 expected]``;
* ``ramp``    v2 JSON with a deadline (``--deadline-ms``), users ramping from
  ``--ramp-start-users`` to ``--ramp-max-users`` (past capacity): 503 with Retry-After
  is load shedding, counted as ``[503 shed]``; 504 as ``[504 deadline]``;
* ``rollout`` v2 JSON while ``benchmarks/rollout_driver.py`` changes what serves the model
  (new version, promote, rollback, canary 25% and 50%, policy cleared, promote) through
  the CLI, after ``--steady-s`` of steady traffic: any non-2xx answer, a step that does not
  reach every replica, or a p99 while changing above 2x the steady p99 fails the run.

Credentials: every request sends ``Authorization: Bearer`` with the key from ``--token``,
``MLGATE_TOKEN`` or ``--token-file`` (``MLGATE_TOKEN_FILE``); it needs ``infer:MODEL`` and,
for the server-side latency and memory, ``metrics:read``.

Payloads are built from the model's v2 metadata, so any served model works. The run
fails (exit code 1) when unexpected failures exceed ``--max-fail-ratio``, the p99 of
admitted (2xx) requests exceeds ``--slo-p99-ms`` (for ``ramp`` also ``--deadline-ms``),
or the server's memory grows by more than ``--max-memory-growth-mib``. The memory is
the RSS of the processes listening on the port for a loopback host (else
``process_resident_memory_bytes`` from ``/metrics``), sampled every second into
``<csv>_memory.csv``; the verdict and its figures go to ``<csv>_summary.json``.

Latencies are measured by locust: with hundreds of users on a small machine, its own
scheduling delay is part of them (compare with ``make bench``'s wrk figures). The
server's own view is read too: ``/metrics`` is scraped at the start and the end, and
the p99 of the server-side latency of the run's 2xx answers (``server_admitted_p99_ms``,
from ``mlgate_request_duration_seconds`` with ``status="200"``, interpolated inside its
bucket as Prometheus does) is what the deadline is checked against: a deadline is the
server's promise, the client-side p99 adds the load generator's own queueing.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import gevent
import numpy as np
from locust import LoadTestShape, constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.stats import StatsEntry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.serving.procs import listening_pids, rss_bytes  # noqa: E402
from contracts.prometheus import histogram_quantile  # noqa: E402

DEMO_ROW = {"age": 42.0, "income": 52000.0, "tenure_months": 18.0, "balance": 1200.5, "credit_score": 640.0,
            "num_products": 2.0, "region": "north", "plan": "basic", "channel": "web"}
BINARY_DTYPES = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8", "INT32": "<i4", "BOOL": "?"}
EXPECTED_400, SHED_503, DEADLINE_504 = "bad input [400 expected]", "[503 shed]", "[504 deadline]"
PAYLOADS: dict[str, object] = {}
MEMORY: list[tuple[float, int]] = []
SERVER_LATENCY: dict[str, dict[float, float]] = {}  # "start"/"end" -> le -> cumulative count
AUTH: dict[str, str] = {}  # the Authorization header every request sends (empty: none)
ROLLOUT: list = []  # the rollout scenario's driver (benchmarks/rollout_driver.py), once started


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--scenario", choices=["v2json", "v2binary", "plain", "mixed", "ramp", "rollout"],
                        default="v2json",
                        help="which load to generate")
    parser.add_argument("--model", default="demo", help="served model to call")
    parser.add_argument("--bad-share", type=float, default=0.1, help="mixed: share of bad inputs (expect 400)")
    parser.add_argument("--slo-p99-ms", type=float, default=200.0, help="fail when admitted p99 is above")
    parser.add_argument("--max-fail-ratio", type=float, default=0.01, help="fail when unexpected failures exceed")
    parser.add_argument("--deadline-ms", type=float, default=1000.0, help="ramp: X-Mlgate-Timeout-Ms per request")
    parser.add_argument("--steady-s", type=float, default=10.0,
                        help="rollout: seconds of steady traffic before the first change (the baseline p99)")
    parser.add_argument("--rollout-step-s", type=float, default=10.0,
                        help="rollout: the controller's time at each step and in the shadow phase")
    parser.add_argument("--ramp-start-users", type=int, default=4)
    parser.add_argument("--ramp-max-users", type=int, default=512, help="ramp: users at the end (past capacity)")
    parser.add_argument("--max-memory-growth-mib", type=float, default=256.0,
                        help="fail when the server's RSS grows more than this during the run")
    parser.add_argument("--token", default=os.environ.get("MLGATE_TOKEN", ""),
                        help="API key or JWT sent as Authorization: Bearer (default: MLGATE_TOKEN)")
    parser.add_argument("--token-file", default=os.environ.get("MLGATE_TOKEN_FILE", ""),
                        help="file holding the key, when --token is not given (default: MLGATE_TOKEN_FILE)")


def _authorization(opts) -> dict[str, str]:
    token = opts.token or (Path(opts.token_file).read_text().strip() if opts.token_file else "")
    return {"Authorization": f"Bearer {token}"} if token else {}


def _get(url: str, timeout_s: float):
    return urllib.request.urlopen(urllib.request.Request(url, headers=AUTH), timeout=timeout_s)


# -- payloads from the model's metadata ------------------------------------------------
def _values(spec: dict, rng: np.random.Generator) -> list:
    if spec["datatype"] == "BYTES":
        return [DEMO_ROW.get(spec["name"], "a")]
    row_shape = [abs(d) for d in spec["shape"][1:]]
    if not row_shape and spec["name"] in DEMO_ROW:
        return [DEMO_ROW[spec["name"]]]
    return np.round(rng.normal(size=[1, *row_shape]), 5).ravel().tolist()


def build_payloads(host: str, model: str) -> dict[str, object]:
    with _get(f"{host}/v2/models/{model}", timeout_s=10) as r:
        meta = json.loads(r.read())
    rng = np.random.default_rng(0)
    specs = meta["inputs"]
    values = {s["name"]: _values(s, rng) for s in specs}
    shapes = {s["name"]: [1, *[abs(d) for d in s["shape"][1:]]] for s in specs}
    doc = {"inputs": [{"name": s["name"], "shape": shapes[s["name"]], "datatype": s["datatype"],
                       "data": values[s["name"]]} for s in specs]}
    header, blobs = {"inputs": []}, []
    for s in specs:
        blob = _binary(s["datatype"], values[s["name"]])
        header["inputs"].append({"name": s["name"], "shape": shapes[s["name"]], "datatype": s["datatype"],
                                 "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    head = json.dumps(header).encode()
    tensor_model = len(specs) == 1 and len(shapes[specs[0]["name"]]) > 1
    plain = {"instances": [values[specs[0]["name"]]] if tensor_model else [{k: v[0] for k, v in values.items()}]}
    first = doc["inputs"][0]
    wrong_type = ({**first, "datatype": "FP32", "data": [1.0]} if first["datatype"] == "BYTES"
                  else {**first, "datatype": "BYTES", "data": ["x"] * len(first["data"])})
    bad = [json.dumps(doc).encode()[:-7],  # malformed JSON
           json.dumps({"inputs": [{**first, "name": "no_such_input"}, *doc["inputs"][1:]]}).encode(),
           json.dumps({"inputs": [wrong_type, *doc["inputs"][1:]]}).encode(),
           json.dumps({"inputs": []}).encode()]
    return {"v2json": json.dumps(doc).encode(), "binary": head + b"".join(blobs), "binary_header": len(head),
            "plain": json.dumps(plain).encode(), "bad": bad, "v2json_rows": varied_rows(specs, shapes)}


VARIED_ROWS = 256


def varied_rows(specs: list[dict], shapes: dict[str, list[int]]) -> list[bytes]:
    """v2 JSON bodies of different rows (the rollout scenario: two versions that disagree do so on
    some of them, which one repeated row may never show): demo rows for the demo's features, else
    seeded normal values."""
    from training import demo_data

    cols = demo_data.generate(2 * VARIED_ROWS, seed=1)
    complete = [i for i in range(2 * VARIED_ROWS)  # v2 JSON has no null: rows with a missing value are left out
                if not any(c[i] is None or (isinstance(c[i], float) and np.isnan(c[i])) for c in cols.values())]
    rng = np.random.default_rng(1)
    out = []
    for i in complete[:VARIED_ROWS]:
        inputs = []
        for spec in specs:
            name = spec["name"]
            if name not in cols or shapes[name][1:]:
                data = _values(spec, rng)
            elif isinstance(cols[name][i], str):
                data = [cols[name][i]]
            else:
                data = [round(float(cols[name][i]), 5)]
            inputs.append({"name": name, "shape": shapes[name], "datatype": spec["datatype"], "data": data})
        out.append(json.dumps({"inputs": inputs}).encode())
    return out


def _binary(datatype: str, values: list) -> bytes:
    if datatype == "BYTES":
        return b"".join(len(b).to_bytes(4, "little") + b for b in (str(v).encode() for v in values))
    return np.asarray(values, dtype=BINARY_DTYPES[datatype]).tobytes()


# -- users -------------------------------------------------------------------------------
class _MlgateUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)  # closed loop: each user sends its next request as soon as it has an answer

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        self.model = opts.model
        self.infer_path = f"/v2/models/{opts.model}/infer"
        self.p = PAYLOADS

    @task
    def one_request(self) -> None:
        self.run_one()

    def run_one(self) -> None:
        raise NotImplementedError

    def _send(self, path: str, body: bytes, name: str, headers: dict, expect: int = 200,
              shed_ok: bool = False) -> None:
        with self.client.post(path, data=body, headers={**headers, **AUTH}, name=name, catch_response=True) as resp:
            status = resp.status_code
            if status == expect:
                resp.success()
            elif shed_ok and status == 503 and resp.headers.get("retry-after"):
                resp.request_meta["name"] = f"{name} {SHED_503}"
                resp.success()
            elif shed_ok and status == 504:
                resp.request_meta["name"] = f"{name} {DEADLINE_504}"
                resp.success()
            else:
                resp.failure(f"HTTP {status} (expected {expect}): {(resp.text or '')[:120]}")

    def v2json(self, **kw) -> None:
        self._send(self.infer_path, self.p["v2json"], "v2 json", {"Content-Type": "application/json"}, **kw)

    def v2binary(self) -> None:
        headers = {"Content-Type": "application/octet-stream",
                   "Inference-Header-Content-Length": str(self.p["binary_header"])}
        self._send(self.infer_path, self.p["binary"], "v2 binary", headers)

    def plain(self) -> None:
        self._send(f"/v1/models/{self.model}:predict", self.p["plain"], "plain json",
                   {"Content-Type": "application/json"})

    def bad(self) -> None:
        self._send(self.infer_path, random.choice(self.p["bad"]), EXPECTED_400,
                   {"Content-Type": "application/json"}, expect=400)


class V2JsonUser(_MlgateUser):
    def run_one(self) -> None:
        self.v2json()


class V2BinaryUser(_MlgateUser):
    def run_one(self) -> None:
        self.v2binary()


class PlainJsonUser(_MlgateUser):
    def run_one(self) -> None:
        self.plain()


class MixedUser(_MlgateUser):
    def run_one(self) -> None:
        if random.random() < self.environment.parsed_options.bad_share:
            self.bad()
        else:
            random.choice((self.v2json, self.v2binary, self.plain))()


class RampUser(_MlgateUser):
    def run_one(self) -> None:
        ms = self.environment.parsed_options.deadline_ms
        self._send(self.infer_path, self.p["v2json"], "v2 json (deadline)",
                   {"Content-Type": "application/json", "X-Mlgate-Timeout-Ms": f"{ms:g}"}, shed_ok=True)


class RolloutUser(_MlgateUser):
    """v2 JSON of varied rows, named by the rollout's phase (steady, changing, settled)."""

    def run_one(self) -> None:
        self._send(self.infer_path, random.choice(self.p["v2json_rows"]), f"v2 json [{ROLLOUT[0].phase}]",
                   {"Content-Type": "application/json"})


SCENARIOS = {"v2json": V2JsonUser, "v2binary": V2BinaryUser, "plain": PlainJsonUser, "mixed": MixedUser,
             "ramp": RampUser, "rollout": RolloutUser}


class ScenarioShape(LoadTestShape):
    """Spawns the scenario's user class: a fixed count (-u/-r), or for ``ramp`` a linear
    ramp to ``--ramp-max-users`` over 80% of the run time, held for the rest."""

    use_common_options = True

    def tick(self):
        opts = self.runner.environment.parsed_options
        run_time = opts.run_time or 60
        elapsed = self.get_run_time()
        if elapsed >= run_time:
            return None
        user_class = SCENARIOS[opts.scenario]
        if opts.scenario != "ramp":
            return opts.num_users or 1, opts.spawn_rate or 1, [user_class]
        share = min(1.0, elapsed / (0.8 * run_time))
        users = round(opts.ramp_start_users + share * (opts.ramp_max_users - opts.ramp_start_users))
        return users, max(10.0, opts.ramp_max_users / (0.4 * run_time)), [user_class]


# -- memory, summary and the exit code ----------------------------------------------------
@events.test_start.add_listener
def _on_start(environment, **_) -> None:
    AUTH.update(_authorization(environment.parsed_options))
    PAYLOADS.update(build_payloads(environment.host.rstrip("/"), environment.parsed_options.model))
    SERVER_LATENCY["start"] = server_latency_buckets(environment.host.rstrip("/"), environment.parsed_options.model)
    gevent.spawn(_sample_memory, environment.host.rstrip("/"))
    opts = environment.parsed_options
    if opts.scenario == "rollout":
        from benchmarks.rollout_driver import RolloutDriver

        ROLLOUT.append(RolloutDriver(opts.model, opts.token_file or None, opts.steady_s, opts.rollout_step_s))
        ROLLOUT[0].start()


def server_latency_buckets(host: str, model: str) -> dict[float, float]:
    """Cumulative counts by bucket bound of the server's latency of ``model``'s 200 answers,
    summed over versions and routes; empty when /metrics cannot be read."""
    from prometheus_client.parser import text_string_to_metric_families

    text = _metrics_text(host, timeout_s=5)
    if text is None:
        return {}
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "mlgate_request_duration_seconds":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_bucket") and labels.get("model") == model and labels.get("status") == "200":
                le = float(labels["le"])
                out[le] = out.get(le, 0.0) + sample.value
    return out


def _server_p99_ms() -> float | None:
    start, end = SERVER_LATENCY.get("start", {}), SERVER_LATENCY.get("end", {})
    if not end:
        return None
    p99_s = histogram_quantile(0.99, [(le, count - start.get(le, 0.0)) for le, count in end.items()])
    return None if p99_s is None else p99_s * 1e3


def _sample_memory(host: str) -> None:
    url = urlparse(host)
    local = url.hostname in ("127.0.0.1", "localhost", "::1")
    port = url.port or 80
    while True:
        rss = sum(rss_bytes(p) for p in listening_pids(port)) if local else _metrics_rss(host)
        if rss:
            MEMORY.append((time.time(), rss))
        gevent.sleep(1.0)


def _metrics_text(host: str, timeout_s: float) -> str | None:
    """The server's /metrics page, or None when it cannot be read."""
    try:
        with _get(f"{host}/metrics", timeout_s=timeout_s) as r:
            return r.read().decode()
    except OSError:
        return None


def _metrics_rss(host: str) -> int:
    lines = (_metrics_text(host, timeout_s=2) or "").splitlines()
    try:
        return int(sum(float(ln.split()[-1]) for ln in lines if ln.startswith("process_resident_memory_bytes")))
    except ValueError:
        return 0


def summarise(environment) -> dict:
    stats, opts = environment.stats, environment.parsed_options
    admitted = StatsEntry(stats, "admitted", "")
    counts = {"expected_400": 0, "shed_503": 0, "deadline_504": 0}
    for (name, _method), entry in stats.entries.items():
        if name == EXPECTED_400:
            counts["expected_400"] += entry.num_requests
        elif name.endswith(SHED_503):
            counts["shed_503"] += entry.num_requests
        elif name.endswith(DEADLINE_504):
            counts["deadline_504"] += entry.num_requests
        else:
            admitted.extend(entry)
    total = stats.total
    ok_admitted = admitted.num_requests - admitted.num_failures
    mem = [m for _, m in MEMORY]
    return {
        "scenario": opts.scenario, "model": opts.model, "requests": total.num_requests,
        "unexpected_failures": total.num_failures, "fail_ratio": total.fail_ratio, **counts,
        "admitted_2xx": ok_admitted, "admitted_p50_ms": admitted.get_response_time_percentile(0.5),
        "admitted_p99_ms": admitted.get_response_time_percentile(0.99), "server_admitted_p99_ms": _server_p99_ms(),
        "rps": total.total_rps,
        "slo_p99_ms": opts.slo_p99_ms, "max_fail_ratio": opts.max_fail_ratio, "bad_share": opts.bad_share,
        "deadline_ms": opts.deadline_ms if opts.scenario == "ramp" else None,
        "max_memory_growth_mib": opts.max_memory_growth_mib,
        "memory_rss_mib": {"first": mem[0] / 2**20, "last": mem[-1] / 2**20, "max": max(mem) / 2**20,
                           "samples": len(mem)} if mem else None,
    }


def verdict(s: dict) -> list[str]:
    problems = []
    if not s["requests"]:
        problems.append("no requests were made")
    if s["fail_ratio"] > s["max_fail_ratio"]:
        problems.append(f"unexpected failures {s['fail_ratio']:.2%} > {s['max_fail_ratio']:.2%}")
    if s["admitted_2xx"] and s["admitted_p99_ms"] > s["slo_p99_ms"]:
        problems.append(f"admitted p99 {s['admitted_p99_ms']:.0f} ms > SLO {s['slo_p99_ms']:.0f} ms")
    if s["deadline_ms"] and s["admitted_2xx"]:
        server, p99 = s["server_admitted_p99_ms"] is not None, s["server_admitted_p99_ms"]
        p99 = p99 if server else s["admitted_p99_ms"]
        if p99 > s["deadline_ms"]:
            where = "server-side" if server else "client-side (no /metrics)"
            problems.append(f"admitted p99 {p99:.0f} ms ({where}) > deadline {s['deadline_ms']:.0f} ms")
    mem = s["memory_rss_mib"]
    if mem and mem["max"] - mem["first"] > s["max_memory_growth_mib"]:
        problems.append(f"server RSS grew {mem['max'] - mem['first']:.0f} MiB > {s['max_memory_growth_mib']:.0f} MiB")
    return problems


@events.quitting.add_listener
def _on_quitting(environment, **_) -> None:
    SERVER_LATENCY["end"] = server_latency_buckets(environment.host.rstrip("/"), environment.parsed_options.model)
    s = summarise(environment)
    problems = verdict(s)
    if ROLLOUT:
        p99 = {phase: entry.get_response_time_percentile(0.99) for (name, _), entry in environment.stats.entries.items()
               for phase in ("steady", "changing", "settled") if name == f"v2 json [{phase}]"}
        s["rollout"] = {"steps": ROLLOUT[0].steps, "p99_ms_by_phase": p99}
        problems += ROLLOUT[0].verdict(p99, environment.stats.total.num_failures)
    s["passed"], s["problems"] = not problems, problems
    prefix = environment.parsed_options.csv_prefix
    if prefix:
        Path(f"{prefix}_summary.json").write_text(json.dumps(s, indent=1))
        with open(f"{prefix}_memory.csv", "w") as f:
            f.write("unix_time,rss_bytes\n" + "".join(f"{t:.1f},{m}\n" for t, m in MEMORY))
    print("loadtest summary: " + json.dumps(s), flush=True)
    print("loadtest " + ("PASSED" if not problems else "FAILED: " + "; ".join(problems)), flush=True)
    environment.process_exit_code = 1 if problems else 0
