"""Processes we start: their trees, their CPU time from /proc, stopping them by PID.

A server's processes are its descendants plus whatever stays in the session it was
started in (``start_new_session=True``), so processes re-parented to init after a
parent exits (Ray's, TorchServe's Java) are still found. Nothing here matches
processes by name; only PIDs we started, and their trees, are ever signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    sid: int
    ticks: int  # utime + stime
    start: int  # start time in ticks after boot: a PID plus this names one process


def read_stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()  # after "pid (comm) "
    if fields[0] == b"Z":  # a zombie has no CPU to spend and nothing to stop
        return None
    return ProcStat(pid, int(fields[1]), int(fields[3]), int(fields[11]) + int(fields[12]), int(fields[19]))


def all_stats() -> dict[int, ProcStat]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := read_stat(int(entry))) is not None:
            out[st.pid] = st
    return out


@dataclass
class ProcessTree:
    """The processes of one started server, remembered as (pid, start time) once seen."""

    root: int
    members: dict[int, int] = field(default_factory=dict)  # pid -> start ticks

    def __post_init__(self) -> None:
        st = read_stat(self.root)  # create right after starting the root process
        if st is not None:
            self.members[self.root] = st.start

    def scan(self) -> dict[int, ProcStat]:
        stats = all_stats()
        children: dict[int, list[int]] = {}
        for st in stats.values():
            children.setdefault(st.ppid, []).append(st.pid)
        found = {pid for pid, st in stats.items() if st.sid == self.root}
        found |= {pid for pid, start in self.members.items()  # seen before, maybe re-parented
                  if pid in stats and stats[pid].start == start}
        stack = list(found)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        live = {pid: stats[pid] for pid in found if pid in stats}
        self.members.update({pid: st.start for pid, st in live.items()})
        return live

    def cpu_ticks(self) -> dict[int, int]:
        return {pid: st.ticks for pid, st in self.scan().items()}


def ticks_delta(before: dict[int, int], after: dict[int, int]) -> int:
    """CPU ticks spent between two samples by the processes alive at the second."""
    return sum(t - before.get(pid, 0) for pid, t in after.items())


def system_busy_ticks() -> int:
    """All CPUs' busy ticks from /proc/stat (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[:8])
    return user + nice + system + irq + softirq + steal


def start(argv: list[str], *, env: dict[str, str], cwd: str | None, log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop_tree(proc: subprocess.Popen, tree: ProcessTree, first_signal: int = signal.SIGTERM,
              grace_s: float = 60.0, signal_all: bool = False) -> list[int]:
    """Signal the root (or the whole tree), wait, then SIGTERM and SIGKILL what is left.

    Returns the PIDs that needed SIGKILL.
    """
    tree.scan()
    targets = list(tree.scan()) if signal_all else [proc.pid]
    _signal(targets, first_signal)
    _wait_gone(proc, tree, grace_s)
    left = list(tree.scan())
    if left:
        _signal(left, signal.SIGTERM)
        _wait_gone(proc, tree, 10.0)
    left = list(tree.scan())
    _signal(left, signal.SIGKILL)
    _wait_gone(proc, tree, 5.0)
    return left


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(proc: subprocess.Popen, tree: ProcessTree, timeout_s: float) -> None:
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        proc.poll()
        if not tree.scan():
            return
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_pids(port: int) -> set[int]:
    """PIDs holding a listening TCP socket on ``port`` (any address), from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(cols[9])
    pids = set()
    if not inodes:
        return pids
    wanted = {f"socket:[{i}]" for i in inodes}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
            if any(os.readlink(f"/proc/{entry}/fd/{fd}") in wanted for fd in fds):
                pids.add(int(entry))
        except OSError:
            continue
    return pids


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
