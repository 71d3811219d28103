"""mlgate's gateway in one process without Ray: the same config (``MLGATE_*`` environment,
as ``mlgate up`` reads it), the same ``serving.gateway.Gateway``, no Serve replica
around it. Diagnostics only: compared with ``mlgate``, it shows what running inside
Ray costs on the request path.

    MLGATE_REGISTRY_ROOT=REG python benchmarks/serving/peers/mlgate_noray.py --port 8300

Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import threading

from mlgate.config import load_config
from serving.gateway import Gateway


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args(argv).port)


def serve(port: int, what: str = "mlgate gateway (no Ray)", **gateway_options) -> None:
    """Serve until SIGTERM/SIGINT; ``gateway_options`` go to ``Gateway`` (its ``server_class``)."""
    cfg = load_config(overrides={"serving.port": port, "serving.host": "127.0.0.1"})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    gateway = Gateway(cfg.registry_root, cfg.serving, **gateway_options)
    print(f"{what} ready on 127.0.0.1:{gateway.port}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        gateway.stop()


if __name__ == "__main__":
    main()
