"""Only ``contracts/clock.py`` reads the wall clock; everything else is given a clock.

A module that asks ``time.time()`` or ``datetime.now()`` itself cannot be tested at a
time of the test's choosing, and a test that mixes fixed dates with such a module
breaks on some later day (issue 13). This scans the source of the runtime packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("access", "contracts", "registry", "serving", "training", "batch", "kernels", "monitoring", "mlgate")
ALLOWED = {Path("contracts/clock.py")}
# calls that read the calendar: always, or when given no time argument
ALWAYS = {("time", "time"), ("time", "time_ns"), ("datetime", "now"), ("datetime", "utcnow"),
          ("datetime", "today"), ("date", "today")}
WITHOUT_ARGS = {("time", "gmtime"), ("time", "localtime"), ("time", "ctime"), ("time", "asctime")}
WITH_ONE_ARG = {("time", "strftime")}  # strftime(format) formats the current time


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def clock_reads(source: str) -> list[tuple[int, str]]:
    """(line, call) of every implicit read of the wall clock in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            names = {a.name for a in node.names}
            bad = names & {"time", "time_ns", "gmtime", "localtime", "ctime", "strftime"} if node.module == "time" \
                else set()
            found += [(node.lineno, f"from {node.module} import {n}") for n in sorted(bad)]
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        call = (_name(node.func.value), node.func.attr)
        n_args = len(node.args) + len(node.keywords)
        if call in ALWAYS or (call in WITHOUT_ARGS and n_args == 0) or (call in WITH_ONE_ARG and n_args == 1):
            found.append((node.lineno, f"{call[0]}.{call[1]}()"))
    return found


def _sources() -> list[Path]:
    return sorted(p.relative_to(REPO) for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


@pytest.mark.parametrize("source", [
    "import time\nt = time.time()", "import datetime as dt\nd = dt.datetime.now(dt.timezone.utc)",
    "import datetime\nd = datetime.date.today()", "import time\ns = time.strftime('%Y')",
    "import time\ng = time.gmtime()", "from time import time\n", "import datetime as dt\nd = dt.datetime.utcnow()",
])
def test_the_scan_finds_each_kind_of_read(source):
    assert clock_reads(source), source


@pytest.mark.parametrize("source", [
    "import time\nt = time.monotonic()", "import time\ng = time.gmtime(0)",
    "import time\ns = time.strftime('%Y', time.gmtime(0))", "import datetime as dt\nd = dt.datetime.fromtimestamp(0)",
    "import time\nt = time.perf_counter()",
])
def test_durations_and_given_times_are_not_reads(source):
    assert clock_reads(source) == []


def test_only_the_clock_module_reads_the_wall_clock():
    sources = _sources()
    assert len(sources) > 50 and ALLOWED <= set(sources)
    offenders = [f"{path}:{line}: {call}" for path in sources if path not in ALLOWED
                 for line, call in clock_reads((REPO / path).read_text())]
    assert offenders == [], "take a contracts.clock.Clock instead:\n" + "\n".join(offenders)
