"""py-spy during one measured run: sample a server process, then summarise the stacks.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;... count``);
the summary lists the functions with the most samples on top of the stack (self) and
anywhere in it (inclusive), as shares of all samples taken. Modes: ``active`` samples
threads py-spy thinks are running (a thread waiting inside C++, like a Ray worker's
main loop, can count as running); ``gil`` samples only the thread holding the GIL,
which is what limits a one-process Python server; ``native`` adds C frames and pauses
the process for each sample (it slows the server down a lot).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

MODES = ("active", "gil", "native")
_MODE_FLAGS = {"active": ["--nonblocking"], "gil": ["--nonblocking", "--gil"], "native": ["--native"]}


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start(pid: int, duration_s: float, out: Path, rate_hz: int = 200, mode: str = "active") -> subprocess.Popen | None:
    exe = py_spy()
    if exe is None:
        print("profile: py-spy not found (pip install py-spy into the venv)", flush=True)
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s))), "--rate", str(rate_hz),
            "--format", "raw", "--threads", "--output", str(out), *_MODE_FLAGS[mode]]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def summarise(raw: Path, top: int = 25) -> str:
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    thread_counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        thread_counts[frames[0]] += n
        self_counts[frames[-1]] += n
        for frame in set(frames[1:]):
            incl_counts[frame] += n
    if not total:
        return "profile: no samples"
    out = [f"profile: {total} samples from {raw.name}", "  by thread:"]
    out += [f"    {n / total:6.1%}  {name}" for name, n in thread_counts.most_common(8)]
    out.append("  self (top of stack):")
    out += [f"    {n / total:6.1%}  {name}" for name, n in self_counts.most_common(top)]
    out.append("  inclusive:")
    out += [f"    {n / total:6.1%}  {name}" for name, n in incl_counts.most_common(top)]
    return "\n".join(out)
