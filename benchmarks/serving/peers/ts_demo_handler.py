"""TorchServe handler for the tabular ``demo`` model: a v2 JSON body (one ``[N]`` or
``[N, 1]`` input per feature) in, v2 JSON out (``probabilities`` and ``label``).

The archive holds the TorchScript module (serialized file) and, as extra files, the
fitted preprocessing (``demo.preprocess.json``) and ``tabular_peer.py``, which applies
it with numpy. Requests of a batch are stacked into one matrix; a request that cannot
be read gets a 400 of its own and the rest of the batch still runs.
"""

import json
import os

import numpy as np
import torch
from tabular_peer import DemoClassifier

SPEC_FILE = "demo.preprocess.json"


class V2DemoHandler:
    def __init__(self):
        self.model = None
        self.name = None
        self.initialized = False

    def initialize(self, context):
        torch.set_num_threads(1)
        manifest = context.manifest["model"]
        model_dir = context.system_properties["model_dir"]
        self.model = DemoClassifier(os.path.join(model_dir, SPEC_FILE),
                                    os.path.join(model_dir, manifest["serializedFile"]))
        self.name = manifest["modelName"]
        self.initialized = True

    def handle(self, data, context):
        out, decoded = [None] * len(data), []
        for i, request in enumerate(data):
            try:
                decoded.append((i, self.decode(request)))
            except (ValueError, KeyError, TypeError) as exc:
                context.set_response_status(400, f"bad request: {exc}", idx=i)
                out[i] = {"error": f"bad request: {exc}"}
        if decoded:
            columns = {n: np.concatenate([cols[n] for _, cols in decoded]) for n in self.model.transform.names}
            y = self.model.probabilities(columns)
            start = 0
            for i, cols in decoded:
                rows = len(cols[self.model.transform.names[0]])
                out[i] = self.encode(y[start:start + rows])
                start += rows
        return out

    def decode(self, request):
        body = request.get("body") if request.get("body") is not None else request.get("data")
        if isinstance(body, (bytes, bytearray)):
            body = json.loads(body)
        columns = {}
        for tensor in body["inputs"]:
            shape = tensor["shape"]
            if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
                raise ValueError(f"{tensor['name']}: shape {shape}, expected [N] or [N, 1]")
            dtype = object if tensor["datatype"] == "BYTES" else np.float64
            columns[tensor["name"]] = np.asarray(tensor["data"], dtype=dtype).reshape(shape[0])
        missing = [n for n in self.model.transform.names if n not in columns]
        if missing:
            raise KeyError(f"missing input {missing[0]!r}")
        if len({len(columns[n]) for n in self.model.transform.names}) != 1:
            raise ValueError("all inputs need the same number of rows")
        return columns

    def encode(self, y):
        return {"model_name": self.name, "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": list(y.shape), "data": y.ravel().tolist()},
            {"name": "label", "datatype": "BYTES", "shape": [len(y)], "data": self.model.label_of(y)}]}
