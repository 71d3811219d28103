"""The benchmark models and payloads: the same seeded weights and request bytes for every server.

* ``mlp``: Linear 32->256, ReLU, Linear 256->8 (the issue's model; cheap, so the
  HTTP path dominates).
* ``heavy``: 32->2048, three 2048->2048 layers, ->8 (compute-bound: batching pays).
  ``heavy_nobatch`` is the same weights registered under another name so mlgate can
  serve it with ``max_batch_size=1`` in the same deployment.
* ``demo``: the tabular churn classifier (``training.quickfit.fit_demo``, seed 0).

Every server loads the TorchScript bytes written into the registry here: mlgate from
the registry, the peers from ``torchscript/<name>.pt`` (byte-identical copies). The peers
without mlgate (TorchServe, PyTriton) get the demo's fitted preprocessing as plain JSON,
``torchscript/demo.preprocess.json`` (:func:`export_demo`), applied by
``peers/tabular_peer.py`` in numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.serving.peers.tabular_peer import FORMAT as DEMO_EXPORT_FORMAT

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
    torchscript: dict[str, str]  # model name (tensor models and demo) -> .pt path (peers load these)
    demo_preprocess: str | None = None  # the demo's fitted preprocessing as JSON (export_demo)


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
    demo_preprocess = None
    if DEMO in models:
        version = fit_demo(registry, seed=0)
        paths[DEMO], demo_preprocess = export_demo(version, scripts)
    return BenchModels(str(out / "registry"), paths, demo_preprocess)


def export_demo(version, out_dir: Path) -> tuple[str, str]:
    """A tabular version as a server without mlgate loads it: ``<name>.pt`` (the registry's
    TorchScript bytes) and ``<name>.preprocess.json`` (its fitted preprocessing: feature
    order, means and standard deviations, category vocabularies; the unseen and missing
    rules are ``tabular_peer.py``'s, the same as ``registry.preprocess``'s)."""
    pre = version.preprocessor()
    features = []
    for spec in version.schema.inputs:
        if spec.categorical:
            features.append({"name": spec.name, "kind": "categorical",
                             "categories": list(pre.categorical[spec.name].categories)})
        else:
            enc = pre.numeric[spec.name]
            features.append({"name": spec.name, "kind": "numeric", "mean": enc.mean, "std": enc.std})
    doc = {"format": DEMO_EXPORT_FORMAT, "model": version.name, "version": version.version, "clip_z": pre.clip_z,
           "width": pre.width, "labels": list(version.schema.class_labels), "features": features,
           "encoding": {"numeric": "clip((x - mean) / std, -clip_z, clip_z), 0 if missing (NaN); missing flag",
                        "categorical": "one-hot over categories, then unseen, then missing (null, NaN or empty)"}}
    out_dir = Path(out_dir)
    script, spec = out_dir / f"{version.name}.pt", out_dir / f"{version.name}.preprocess.json"
    script.write_bytes(version.read("model.pt"))
    spec.write_text(json.dumps(doc, indent=1))
    return str(script), str(spec)


def input_row(seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=IN_FEATURES).astype(np.float32)


def v2_tensor_body(seed: int = SEED) -> bytes:
    """One v2 JSON row, FP32 [1, 32] (about 370 bytes); the same bytes for every v2 server."""
    import orjson

    data = [float(f"{v:.6g}") for v in input_row(seed).tolist()]
    doc = {"inputs": [{"name": "input", "shape": [1, IN_FEATURES], "datatype": "FP32", "data": data}]}
    return orjson.dumps(doc)


def v2_demo_body(row: dict | None = None, shape: tuple[int, ...] = (1,)) -> bytes:
    """The README's demo row as a v2 request: one ``shape`` tensor per feature ([1], or
    [1, 1] for Triton, whose batched inputs need a dimension after the batch one)."""
    import orjson

    row = DEMO_ROW if row is None else row
    inputs = []
    for name, value in row.items():
        datatype = "BYTES" if isinstance(value, str) else "FP64"
        inputs.append({"name": name, "shape": list(shape), "datatype": datatype, "data": [value]})
    return orjson.dumps({"inputs": inputs})


def body_for(model: str) -> bytes:
    return v2_demo_body() if model == DEMO else v2_tensor_body()
