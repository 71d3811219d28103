"""The ``mlgate`` program's exit: nothing written is lost, exit handlers and live threads are honoured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PIPED = """
import atexit, sys
from mlgate.process import exit_promptly
atexit.register(lambda: print("handler ran"))
sys.stdout.write("x" * 200_000)
sys.stderr.write("to stderr")
exit_promptly(3)
"""

THREAD = """
import threading
from mlgate.process import exit_promptly
gate = threading.Event()
worker = threading.Thread(target=lambda: (gate.wait(0.2), print("thread finished")))
worker.start()
exit_promptly(0)
"""


def child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_buffered_output_and_exit_handlers_survive_the_prompt_exit():
    done = child(PIPED)
    assert done.returncode == 3
    assert done.stdout == "x" * 200_000 + "handler ran\n"
    assert done.stderr == "to stderr"


def test_a_thread_still_running_is_waited_for():
    done = child(THREAD)
    assert done.returncode == 0 and done.stdout == "thread finished\n"
