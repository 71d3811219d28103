"""Plain Ray Serve, the fair configuration: one deployment per model with
``@serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002)`` and
``max_ongoing_requests=256``, behind Serve's own HTTP proxy, parsing the same v2 JSON.

    python benchmarks/serving/peers/plain_ray_serve.py --port 8200 --model mlp=mlp.pt \
        [--model demo --registry-root REG] [--num-cpus 2]

Starts a private local Ray on loopback (never joins another), serves
``POST /v2/models/{name}/infer`` and stays up until SIGTERM/SIGINT, then shuts Serve
and its Ray down. ``peer_models`` must be importable by the replicas (PYTHONPATH).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray  # noqa: E402
from ray import serve  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

MAX_BATCH_SIZE = 64
BATCH_WAIT_TIMEOUT_S = 0.002
MAX_ONGOING_REQUESTS = 256


@serve.deployment(max_ongoing_requests=MAX_ONGOING_REQUESTS, ray_actor_options={"num_cpus": 0})
class V2Model:
    def __init__(self, spec: str, registry_root: str | None) -> None:
        import torch

        from peer_models import load

        torch.set_num_threads(1)
        self.model = next(iter(load([spec], registry_root).values()))

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_TIMEOUT_S)
    async def predict(self, bodies: list[bytes]) -> list[tuple[int, bytes]]:
        from peer_models import predict_batch

        return predict_batch(self.model, bodies)

    async def __call__(self, request: Request) -> Response:
        status, body = await self.predict(await request.body())
        return Response(body, status_code=status, media_type="application/json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", action="append", required=True, help="name=path.pt, or demo")
    parser.add_argument("--registry-root", help="registry holding the demo model")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             namespace="bench-plain-serve", log_to_driver=False)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        for spec in args.model:
            name = spec.partition("=")[0]
            serve.run(V2Model.options(name=name).bind(spec, args.registry_root), name=name,
                      route_prefix=f"/v2/models/{name}")
        print(f"plain Ray Serve ready on 127.0.0.1:{args.port}", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
