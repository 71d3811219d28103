"""Triton Inference Server through PyTriton, serving the tensor bench models with Triton's
dynamic batcher (max 64 rows, 2 ms queue delay), v2 HTTP on loopback.

    python benchmarks/serving/peers/pytriton_server.py --http-port P --grpc-port G \
        --metrics-port M --workspace DIR --model mlp=mlp.pt [--model heavy=heavy.pt]

Runs in PyTriton's own virtual environment (self-contained: torch, numpy, pytriton).
Start it with LD_LIBRARY_PATH holding this interpreter's lib directory (the Python
backend stub otherwise loads the system libpython). Stops cleanly on SIGINT.
"""

import argparse

import numpy as np
import torch
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

MAX_BATCH_SIZE = 64
MAX_QUEUE_DELAY_US = 2000


def infer_fn(module):
    @batch
    def infer(input):
        with torch.inference_mode():
            return {"output": module(torch.from_numpy(np.ascontiguousarray(input, dtype=np.float32))).numpy()}

    return infer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--model", action="append", required=True, help="name=path.pt")
    parser.add_argument("--in-features", type=int, default=32)
    parser.add_argument("--out-features", type=int, default=8)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = TritonConfig(http_address="127.0.0.1", http_port=args.http_port, grpc_address="127.0.0.1",
                          grpc_port=args.grpc_port, metrics_address="127.0.0.1", metrics_port=args.metrics_port)
    with Triton(config=config, workspace=args.workspace) as triton:
        for spec in args.model:
            name, _, path = spec.partition("=")
            module = torch.jit.load(path, map_location="cpu").eval()
            triton.bind(
                model_name=name,
                infer_func=infer_fn(module),
                inputs=[Tensor(name="input", dtype=np.float32, shape=(args.in_features,))],
                outputs=[Tensor(name="output", dtype=np.float32, shape=(args.out_features,))],
                config=ModelConfig(max_batch_size=MAX_BATCH_SIZE,
                                   batcher=DynamicBatcher(max_queue_delay_microseconds=MAX_QUEUE_DELAY_US)),
                strict=False,
            )
        print(f"PyTriton ready on 127.0.0.1:{args.http_port}", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
