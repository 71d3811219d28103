"""The benchmark models and payloads: the same seeded weights and request bytes for every server.

* ``mlp``: Linear 32->256, ReLU, Linear 256->8 (the issue's model; cheap, so the
  HTTP path dominates).
* ``heavy``: 32->2048, three 2048->2048 layers, ->8 (compute-bound: batching pays).
  ``heavy_nobatch`` is the same weights registered under another name so mlgate can
  serve it with ``max_batch_size=1`` in the same deployment.
* ``demo``: the tabular churn classifier (``training.quickfit.fit_demo``, seed 0).

Every server loads the TorchScript bytes written into the registry here: mlgate from
the registry, the peers from ``torchscript/<name>.pt`` (byte-identical copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MLP = "mlp"
HEAVY = "heavy"
HEAVY_NOBATCH = "heavy_nobatch"
DEMO = "demo"
TENSOR_MODELS = (MLP, HEAVY)
IN_FEATURES = 32
OUT_FEATURES = 8
SEED = 1234
DEMO_ROW = {"age": 42.0, "income": 52000.0, "tenure_months": 18.0, "balance": 1200.5, "credit_score": 640.0,
            "num_products": 2.0, "region": "north", "plan": "basic", "channel": "web"}


@dataclass(frozen=True)
class BenchModels:
    registry_root: str
    torchscript: dict[str, str]  # tensor model name -> .pt path (peers load these)


def build_mlp(seed: int = SEED):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(IN_FEATURES, 256), nn.ReLU(), nn.Linear(256, OUT_FEATURES)).eval()


def build_heavy(seed: int = SEED, width: int = 2048, hidden_layers: int = 3):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers: list = [nn.Linear(IN_FEATURES, width), nn.ReLU()]
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, OUT_FEATURES))
    return nn.Sequential(*layers).eval()


def tensor_schema():
    from registry.schema import FeatureSpec, ModelSchema, OutputSpec

    return ModelSchema(
        kind="tensor", task="other",
        inputs=(FeatureSpec(name="input", datatype="FP32", shape=(IN_FEATURES,)),),
        outputs=(OutputSpec(name="output", datatype="FP32", shape=(OUT_FEATURES,)),),
    )


def prepare(out_dir: str | Path, models: tuple[str, ...] = (MLP, HEAVY, DEMO)) -> BenchModels:
    """A fresh registry under ``out_dir/registry`` with the bench ``models`` (``heavy``
    brings ``heavy_nobatch``); TorchScript copies of the tensor models."""
    from registry import Registry
    from registry.torch_io import register_torch_model
    from training.quickfit import fit_demo

    out = Path(out_dir)
    registry = Registry(str(out / "registry"))
    builders = {MLP: build_mlp, HEAVY: build_heavy, HEAVY_NOBATCH: build_heavy}
    builders = {k: v for k, v in builders.items() if k in models or (k == HEAVY_NOBATCH and HEAVY in models)}
    scripts = out / "torchscript"
    scripts.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for name, build in builders.items():
        version = register_torch_model(registry, name, build(), tensor_schema(),
                                       lineage={"source": "benchmarks.serving.models", "seed": SEED})
        if name in TENSOR_MODELS:
            path = scripts / f"{name}.pt"
            path.write_bytes(version.read("model.pt"))
            paths[name] = str(path)
    if DEMO in models:
        fit_demo(registry, seed=0)
    return BenchModels(str(out / "registry"), paths)


def input_row(seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=IN_FEATURES).astype(np.float32)


def v2_tensor_body(seed: int = SEED) -> bytes:
    """One v2 JSON row, FP32 [1, 32] (about 370 bytes); the same bytes for every v2 server."""
    import orjson

    data = [float(f"{v:.6g}") for v in input_row(seed).tolist()]
    doc = {"inputs": [{"name": "input", "shape": [1, IN_FEATURES], "datatype": "FP32", "data": data}]}
    return orjson.dumps(doc)


def v2_demo_body(row: dict | None = None) -> bytes:
    """The README's demo row as a v2 request: one [1] tensor per feature."""
    import orjson

    row = DEMO_ROW if row is None else row
    inputs = []
    for name, value in row.items():
        datatype = "BYTES" if isinstance(value, str) else "FP64"
        inputs.append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
    return orjson.dumps({"inputs": inputs})


def body_for(model: str) -> bytes:
    return v2_demo_body() if model == DEMO else v2_tensor_body()
