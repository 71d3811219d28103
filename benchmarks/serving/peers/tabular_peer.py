"""The ``demo`` classifier for the peers that cannot import mlgate (TorchServe, PyTriton).

``models.export_demo`` writes the demo version's fitted preprocessing as plain JSON
(format 1) next to its TorchScript module; this module applies it with numpy only,
the same encoding as ``registry.preprocess.Preprocessor`` on mlgate's request path:

* numeric feature -> two float32 columns: ``clip((x - mean) / std, -clip_z, clip_z)``
  (0 when missing) and a missing indicator; missing is NaN (or None);
* categorical feature -> one-hot over ``categories``, then one column for a category
  never seen in training and one for a missing value (None, NaN, or the empty string,
  as mlgate's v2 validation reads an empty BYTES element).

Self-contained (numpy, torch): copied into the TorchServe model archive and imported
by ``pytriton_server.py`` from its own directory.
"""

import json

import numpy as np

FORMAT = 1


class TabularTransform:
    """Named columns (each ``[N]`` or ``[N, 1]``) -> the model's float32 ``[N, width]`` matrix."""

    def __init__(self, spec: dict) -> None:
        if spec.get("format") != FORMAT:
            raise ValueError(f"preprocessing export format {spec.get('format')!r}, this code reads {FORMAT}")
        self.clip_z = float(spec["clip_z"])
        self.features = spec["features"]
        self.names = [f["name"] for f in self.features]
        self.width = sum(2 if f["kind"] == "numeric" else len(f["categories"]) + 2 for f in self.features)
        # a category matches as text or as the UTF-8 bytes PyTriton hands over
        self._index = {f["name"]: {**{c: i for i, c in enumerate(f["categories"])},
                                   **{c.encode(): i for i, c in enumerate(f["categories"])}}
                       for f in self.features if f["kind"] == "categorical"}

    @classmethod
    def load(cls, path: str) -> "TabularTransform":
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def __call__(self, columns: dict) -> np.ndarray:
        rows = len(np.asarray(columns[self.names[0]]).reshape(-1))
        out = np.zeros((rows, self.width), dtype=np.float32)
        offset = 0
        for feature in self.features:
            values = np.asarray(columns[feature["name"]]).reshape(-1)
            if len(values) != rows:
                raise ValueError(f"{feature['name']}: {len(values)} rows, expected {rows}")
            if feature["kind"] == "numeric":
                x = values.astype(np.float64)
                missing = np.isnan(x)
                z = np.clip((x - feature["mean"]) / feature["std"], -self.clip_z, self.clip_z)
                out[:, offset] = np.where(missing, 0.0, z)
                out[:, offset + 1] = missing
                offset += 2
            else:
                n = len(feature["categories"])
                codes = [category_code(v, self._index[feature["name"]], n) for v in values]
                out[np.arange(rows), offset + np.asarray(codes, dtype=np.int64)] = 1.0
                offset += n + 2
        return out


def category_code(value, index: dict, n: int) -> int:
    """The value's category index; ``n`` if unseen, ``n + 1`` if missing."""
    if value is None or value == "" or value == b"" or (isinstance(value, float) and value != value):
        return n + 1
    if isinstance(value, np.generic):  # np.bytes_ / np.str_ from a fixed-width array
        value = value.item()
    code = index.get(value)
    if code is None and not isinstance(value, (str, bytes)):
        code = index.get(str(value))
    elif code is None and isinstance(value, bytes):
        code = index.get(value.decode("utf-8", errors="replace"))
    return n if code is None else code


class DemoClassifier:
    """The exported preprocessing, then the TorchScript module (softmax probabilities)."""

    def __init__(self, spec_path: str, torchscript_path: str) -> None:
        import torch

        with open(spec_path, encoding="utf-8") as f:
            spec = json.load(f)
        self.transform = TabularTransform(spec)
        self.labels = list(spec["labels"])
        self.module = torch.jit.load(torchscript_path, map_location="cpu").eval()

    def probabilities(self, columns: dict) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(self.transform(columns))).numpy()

    def label_of(self, probabilities: np.ndarray) -> list:
        return [self.labels[i] for i in probabilities.argmax(axis=1)]
