"""TorchServe handler for the tensor bench models: the v2 JSON body in, v2 JSON out.

TorchServe parses ``application/json`` bodies itself (stdlib json) before the handler
sees them; the handler stacks a batch, runs the TorchScript module on one torch
thread, and splits the outputs per request. Self-contained: it runs in TorchServe's
own virtual environment, packed into the model archive.
"""

import json
import os

import numpy as np
import torch


class V2TensorHandler:
    def __init__(self):
        self.module = None
        self.name = None
        self.initialized = False

    def initialize(self, context):
        torch.set_num_threads(1)
        manifest = context.manifest["model"]
        path = os.path.join(context.system_properties["model_dir"], manifest["serializedFile"])
        self.module = torch.jit.load(path, map_location="cpu").eval()
        self.name = manifest["modelName"]
        self.initialized = True

    def handle(self, data, context):
        rows = []
        for request in data:
            body = request.get("body") if request.get("body") is not None else request.get("data")
            if isinstance(body, (bytes, bytearray)):
                body = json.loads(body)
            tensor = body["inputs"][0]
            rows.append(np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"]))
        with torch.inference_mode():
            y = self.module(torch.from_numpy(np.concatenate(rows))).numpy()
        out, start = [], 0
        for x in rows:
            part = y[start:start + len(x)]
            start += len(x)
            out.append({"model_name": self.name, "outputs": [
                {"name": "output", "datatype": "FP32", "shape": list(part.shape), "data": part.ravel().tolist()}]})
        return out
