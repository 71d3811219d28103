"""Triton Inference Server through PyTriton, serving the bench models with Triton's
dynamic batcher (max 64 rows, 2 ms queue delay), v2 HTTP on loopback.

    python benchmarks/serving/peers/pytriton_server.py --http-port P --grpc-port G \
        --metrics-port M --workspace DIR --model mlp=mlp.pt [--model heavy=heavy.pt] \
        [--tabular demo=demo.preprocess.json,demo.pt]

A tabular model takes one input per feature (FP64 or BYTES, dims [1]: a request sends
each as [N, 1]) and answers ``probabilities`` (FP32 [N, classes]) and ``label``
(BYTES [N, 1]); its fitted preprocessing runs in numpy (``tabular_peer.py``).

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
from tabular_peer import DemoClassifier

MAX_BATCH_SIZE = 64
MAX_QUEUE_DELAY_US = 2000


def infer_fn(module):
    @batch
    def infer(input):
        with torch.inference_mode():
            return {"output": module(torch.from_numpy(np.ascontiguousarray(input, dtype=np.float32))).numpy()}

    return infer


def tabular_infer_fn(model):
    @batch
    def infer(**columns):
        probabilities = model.probabilities(columns)
        labels = np.array([[s.encode()] for s in model.label_of(probabilities)], dtype=object)
        return {"probabilities": probabilities, "label": labels}

    return infer


def bind_tabular(triton, name, spec_path, torchscript_path):
    model = DemoClassifier(spec_path, torchscript_path)
    inputs = [Tensor(name=f["name"], dtype=bytes if f["kind"] == "categorical" else np.float64, shape=(1,))
              for f in model.transform.features]
    triton.bind(
        model_name=name,
        infer_func=tabular_infer_fn(model),
        inputs=inputs,
        outputs=[Tensor(name="probabilities", dtype=np.float32, shape=(len(model.labels),)),
                 Tensor(name="label", dtype=bytes, shape=(1,))],
        config=ModelConfig(max_batch_size=MAX_BATCH_SIZE,
                           batcher=DynamicBatcher(max_queue_delay_microseconds=MAX_QUEUE_DELAY_US)),
        strict=False,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--model", action="append", default=[], help="name=path.pt (FP32 [N, in] -> [N, out])")
    parser.add_argument("--tabular", action="append", default=[], help="name=preprocess.json,model.pt")
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
        for spec in args.tabular:
            name, _, paths = spec.partition("=")
            bind_tabular(triton, name, *paths.split(","))
        print(f"PyTriton ready on 127.0.0.1:{args.http_port}", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
