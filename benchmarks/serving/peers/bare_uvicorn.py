"""The single-process reference: uvicorn (httptools, uvloop) and a raw ASGI app that runs
the model inline, one request at a time: no batching, no Ray, no threads. What Python
HTTP costs on this machine, the limit a Python server reaches without batching.

    python benchmarks/serving/peers/bare_uvicorn.py --port 8100 --model mlp=mlp.pt \
        [--model demo --registry-root REG]

Routes: ``POST /v2/models/{name}/infer``, ``GET /v2/health/ready``. Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse

import orjson
import torch
import uvicorn

from peer_models import BadRequest, load

JSON = [(b"content-type", b"application/json")]


def make_app(models: dict):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        status, body = await _handle(models, scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": JSON})
        await send({"type": "http.response.body", "body": body})

    return app


async def _handle(models: dict, scope, receive) -> tuple[int, bytes]:
    path = scope["path"]
    if path == "/v2/health/ready":
        return 200, b'{"ready":true}'
    parts = path.split("/")  # "", "v2", "models", name, "infer"
    model = models.get(parts[3]) if len(parts) == 5 and parts[4] == "infer" else None
    if model is None or scope["method"] != "POST":
        return 404, b'{"error":"not found"}'
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    try:
        return 200, model.encode(model.compute(model.decode(body)))
    except BadRequest as exc:
        return 400, orjson.dumps({"error": str(exc)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", action="append", required=True, help="name=path.pt, or demo")
    parser.add_argument("--registry-root", help="registry holding the demo model")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    app = make_app(load(args.model, args.registry_root))
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="off",
                access_log=False, log_level="warning", backlog=2048)


if __name__ == "__main__":
    main()
