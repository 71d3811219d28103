"""``mlgate up``: start (or join) Ray, make sure ``demo`` exists, deploy, serve until a signal."""

from __future__ import annotations

import signal
import sys
import threading
import time
import urllib.request

from mlgate import raycluster
from mlgate.config import MlgateConfig


def wait_ready(url: str, timeout_s: float = 180.0) -> None:
    give_up = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > give_up:
            raise TimeoutError(f"{url} did not become ready within {timeout_s:.0f}s")
        time.sleep(0.2)


def curl_example(url: str) -> str:
    row = ('{"instances": [{"age": 42, "income": 52000, "tenure_months": 18, "balance": 1200.5, '
           '"credit_score": 640, "num_products": 2, "region": "north", "plan": "basic", "channel": "web"}]}')
    return f"curl -s -X POST {url}/v1/models/demo:predict -H 'Content-Type: application/json' -d '{row}'"


def run(cfg: MlgateConfig) -> int:
    raycluster.prepare_env(cfg.ray)  # before serving.deployment imports ray
    from ray import serve

    from registry import Registry
    from serving.deployment import deploy
    from training.quickfit import ensure_demo

    created = ensure_demo(Registry(cfg.registry_root))
    if created is not None:
        print(f"registered demo version {created.version} in {cfg.registry_root}", flush=True)
    raycluster.init(cfg.ray)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own
        signal.signal(sig, lambda *_: stop.set())
    try:
        deploy(cfg.registry_root, cfg.serving, raycluster.cluster_gpus(), log_root=cfg.log_root)
        url = f"http://{cfg.serving.host}:{cfg.serving.port}"
        wait_ready(url)
        print(f"mlgate serving on {url} (Ray {'at ' + cfg.ray.address if cfg.ray.address else 'local'})")
        print(f"try: {curl_example(url)}", flush=True)
        while not stop.wait(1.0):
            pass
        print("shutting down", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        from serving.deployment import APP_NAME, shutdown_hub

        if cfg.ray.address:
            serve.delete(APP_NAME)
            shutdown_hub()
        else:
            serve.shutdown()
        import ray

        ray.shutdown()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(MlgateConfig()))
