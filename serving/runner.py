"""The model runner: device placement, inference mode, whole-batch transfers.

Does not import Ray. On CUDA it can run in bf16/fp16 autocast and replay CUDA graphs
captured for fixed batch buckets (a batch is padded up to the next bucket).
"""

from __future__ import annotations

import io
import threading
from typing import Literal

import numpy as np
import torch

Precision = Literal["fp32", "bf16", "fp16"]
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(requested: str = "auto") -> str:
    """``auto`` means CUDA when a GPU is visible, else CPU."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


class TorchRunner:
    """Runs a TorchScript (or eager) module on numpy batches; thread-safe."""

    def __init__(
        self,
        module: torch.nn.Module,
        device: str = "auto",
        precision: Precision = "fp32",
        cuda_graph_batch_sizes: tuple[int, ...] = (),
    ) -> None:
        self.device = torch.device(pick_device(device))
        self.precision = precision
        self.module = module.to(self.device).eval()
        self._lock = threading.Lock()
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self._buckets = tuple(sorted(cuda_graph_batch_sizes)) if self.device.type == "cuda" else ()
        self._in_features: int | None = None

    @classmethod
    def from_bytes(cls, torchscript: bytes, **kwargs) -> TorchRunner:
        return cls(torch.jit.load(io.BytesIO(torchscript), map_location="cpu"), **kwargs)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.precision != "fp32" and self.device.type == "cuda":
            with torch.autocast("cuda", dtype=_AUTOCAST[self.precision], cache_enabled=False):
                return self.module(x).float()
        return self.module(x)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``batch``: float32 ``[rows, ...]``; returns the model output as numpy float32."""
        with self._lock, torch.inference_mode():
            array = np.ascontiguousarray(batch)
            if not array.flags.writeable:  # e.g. a view of a request body: the model must not write it
                array = array.copy()
            x = torch.from_numpy(array)
            if self.device.type == "cpu":
                return self._forward(x).numpy()
            rows = x.shape[0]
            bucket = next((b for b in self._buckets if b >= rows), None)
            if bucket is not None:
                return self._replay(x, rows, bucket)
            x = x.to(self.device)  # one copy; a per-call pinned staging buffer costs more than it saves
            return self._forward(x).to("cpu").numpy()

    # -- CUDA graphs -----------------------------------------------------------------
    def _replay(self, x: torch.Tensor, rows: int, bucket: int) -> np.ndarray:
        graph, static_in, static_out = self._graphs.get(bucket) or self._capture(bucket, x.shape[1:])
        static_in[:rows].copy_(x, non_blocking=True)
        if rows < bucket:
            static_in[rows:].zero_()
        graph.replay()
        return static_out[:rows].to("cpu").numpy()

    def _capture(self, bucket: int, row_shape: torch.Size):
        static_in = torch.zeros((bucket, *row_shape), device=self.device)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up on a side stream, as CUDA graph capture requires
                self._forward(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._forward(static_in)
        self._graphs[bucket] = (graph, static_in, static_out)
        return self._graphs[bucket]

    def warm_up(self, row_shape: tuple[int, ...], batch_sizes: tuple[int, ...] = (1,)) -> None:
        for size in sorted(set(batch_sizes) | set(self._buckets)):
            self(np.zeros((size, *row_shape), dtype=np.float32))
