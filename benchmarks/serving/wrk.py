"""Driving a server with ``wrk`` (one thread): a Lua script POSTs a fixed body, and its
``done()`` prints the figures as one JSON line that :func:`parse` reads.

wrk's own CPU comes from ``wait4``'s resource usage, so it is exact even though the
process has exited by the time we look.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MARK = "WRK_RESULT "
_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "{content_type}"
{extra_headers}local f = assert(io.open("{body_path}", "rb"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""
# Counting responses by status costs a Lua call per response: only for the overload cells.
_COUNT = """
c2xx = 0; c503 = 0; c504 = 0; cother = 0
response = function(status, headers, body)
  if status < 300 then c2xx = c2xx + 1 elseif status == 503 then c503 = c503 + 1
  elseif status == 504 then c504 = c504 + 1 else cother = cother + 1 end
end
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
local summary_done = done
done = function(summary, latency, requests)
  summary_done(summary, latency, requests)
  local t = threads[1]
  io.write(string.format('{mark}{{"2xx":%d,"503":%d,"504":%d,"other":%d}}\\n',
    t:get("c2xx"), t:get("c503"), t:get("c504"), t:get("cother")))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors_status: int  # HTTP status >= 400
    errors_socket: int  # connect + read + write + timeout
    cpu_s: float  # wrk's own user + system time
    statuses: dict[str, int] | None = None  # {"2xx", "503", "504", "other"}: overload cells only

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.errors_status + self.errors_socket


def available() -> bool:
    return shutil.which("wrk") is not None


def write_script(directory: Path, name: str, body: bytes, content_type: str,
                 headers: dict[str, str] | None = None, count_statuses: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    body_path = directory / f"{name}.body"
    body_path.write_bytes(body)
    script = directory / f"{name}{'-count' if count_statuses else ''}.lua"
    extra = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
    text = _LUA.format(content_type=content_type, body_path=body_path, mark=MARK, extra_headers=extra)
    script.write_text(text + (_COUNT.format(mark=MARK) if count_statuses else ""))
    return script


def parse(stdout: str, cpu_s: float = 0.0) -> WrkResult:
    lines = [json.loads(ln[len(MARK):]) for ln in stdout.splitlines() if ln.startswith(MARK)]
    statuses = next((d for d in lines if "2xx" in d), None)
    for d in lines:
        if "requests" in d:
            return WrkResult(
                requests=d["requests"], duration_s=d["duration_us"] / 1e6, p50_ms=d["p50_us"] / 1e3,
                p90_ms=d["p90_us"] / 1e3, p99_ms=d["p99_us"] / 1e3, max_ms=d["max_us"] / 1e3,
                errors_status=d["status"], errors_socket=d["connect"] + d["read"] + d["write"] + d["timeout"],
                cpu_s=cpu_s, statuses=statuses,
            )
    raise RuntimeError(f"wrk printed no result line; output: {stdout[-500:]!r}")


def run(url: str, script: Path, *, connections: int, duration_s: float, out_path: Path,
        timeout_s: float = 10.0) -> WrkResult:
    """One wrk run (-t1); bounded: killed if it outlives its duration by 30 s."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", f"--timeout={timeout_s:g}s",
            "--latency", "-s", str(script), url]
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    give_up = time.monotonic() + duration_s + 30
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > give_up:
            os.kill(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out_path.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}: {text[-500:]!r}")
    return parse(text, usage.ru_utime + usage.ru_stime)
