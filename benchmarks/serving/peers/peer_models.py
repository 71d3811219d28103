"""What the reference and plain-Ray-Serve peers compute per request: a v2 JSON body in,
a v2 JSON body out, with the least code a careful user would write (orjson, numpy,
the TorchScript module; the demo model also applies its fitted preprocessor).

Not mlgate's request path: no schema validation beyond what the parse needs.
"""

from __future__ import annotations

import numpy as np
import orjson
import torch


class BadRequest(Exception):
    pass


class TensorModel:
    """A TorchScript module over FP32 [N, ...] rows (the ``mlp`` and ``heavy`` models)."""

    def __init__(self, name: str, torchscript_path: str) -> None:
        self.name = name
        self.module = torch.jit.load(torchscript_path, map_location="cpu").eval()

    def decode(self, body: bytes) -> np.ndarray:
        try:
            tensor = orjson.loads(body)["inputs"][0]
            return np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise BadRequest(f"bad request: {exc}") from None

    def compute(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(x)).numpy()

    def encode(self, y: np.ndarray) -> bytes:
        return orjson.dumps({"model_name": self.name, "outputs": [
            {"name": "output", "datatype": "FP32", "shape": list(y.shape), "data": y.ravel().tolist()}]})


class DemoModel:
    """The tabular ``demo`` classifier: v2 columns -> preprocessor -> softmax module."""

    def __init__(self, registry_root: str, name: str = "demo") -> None:
        from registry import Registry

        version = Registry(registry_root).get(name)
        self.name = name
        self.preprocessor = version.preprocessor()
        self.labels = np.array(version.schema.class_labels, dtype=object)
        self.module = version.load_torch("cpu").eval()

    def decode(self, body: bytes) -> dict[str, np.ndarray]:
        try:
            inputs = orjson.loads(body)["inputs"]
            return {t["name"]: np.asarray(t["data"], dtype=object if t["datatype"] == "BYTES" else np.float64)
                    for t in inputs}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BadRequest(f"bad request: {exc}") from None

    def compute(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        try:
            x = self.preprocessor.transform(columns)
        except KeyError as exc:
            raise BadRequest(f"missing input {exc}") from None
        with torch.inference_mode():
            return self.module(torch.from_numpy(x)).numpy()

    def encode(self, y: np.ndarray) -> bytes:
        rows = len(y)
        return orjson.dumps({"model_name": self.name, "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [rows, y.shape[1]], "data": y.ravel().tolist()},
            {"name": "label", "datatype": "BYTES", "shape": [rows], "data": self.labels[y.argmax(1)].tolist()}]})


def concat(parts: list) -> object:
    """Stack decoded payloads of one model (arrays, or dicts of columns) into one batch."""
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def rows_of(part) -> int:
    return len(next(iter(part.values()))) if isinstance(part, dict) else len(part)


def load(specs: list[str], registry_root: str | None):
    """``name=path.pt`` for tensor models; ``demo`` (from the registry) for the tabular one."""
    models = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        models[name] = TensorModel(name, path) if path else DemoModel(registry_root, name)
    return models


def predict_batch(model, bodies: list[bytes]) -> list[tuple[int, bytes]]:
    """Decode each body, run the valid ones as one batch, split the outputs back."""
    decoded, results = [], [None] * len(bodies)
    for i, body in enumerate(bodies):
        try:
            decoded.append((i, model.decode(body)))
        except BadRequest as exc:
            results[i] = (400, orjson.dumps({"error": str(exc)}))
    if decoded:
        y = model.compute(concat([d for _, d in decoded]))
        start = 0
        for i, part in decoded:
            n = rows_of(part)
            results[i] = (200, model.encode(y[start:start + n]))
            start += n
    return results
