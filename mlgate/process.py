"""How our programs end (``mlgate`` and ``python -m batch``)."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_promptly(code: int) -> NoReturn:
    """End the program: exit handlers run and output is flushed, but the interpreter does not
    tear its modules down one by one (0.2-0.4 s once Ray Data is imported). A program with
    threads still running exits the ordinary way, which waits for them."""
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
