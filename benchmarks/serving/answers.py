"""The correctness probe: before any load, each server answers its bench body once and
the answer is compared with mlgate's own request path on the same row (v2 decode,
validation, the model pipeline on CPU). A server whose answer differs is a failed
row, not a throughput figure.
"""

from __future__ import annotations

import json

import numpy as np

from benchmarks.serving import models as bm

ATOL = 1e-5  # float32 outputs printed as JSON; any preprocessing slip is far larger
RTOL = 1e-4


def reference_outputs(bench: bm.BenchModels, models: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Model name -> the first output (``output`` or ``probabilities``) mlgate computes for
    ``bm.body_for(name)``; ``heavy`` brings ``heavy_nobatch``."""
    from registry import Registry
    from serving.pipeline import ModelPipeline, prepare
    from serving.protocol.v2 import decode_infer_request

    registry = Registry(bench.registry_root)
    names = [m for m in models if m in registry.list_models()]
    if bm.HEAVY in names and bm.HEAVY_NOBATCH in registry.list_models():
        names.append(bm.HEAVY_NOBATCH)
    out = {}
    for name in names:
        pipeline = ModelPipeline(registry.get(name), device="cpu")
        request = decode_infer_request(bm.body_for(name), model=name, version=None, header_length=None)
        outputs = pipeline.predict([prepare(pipeline.schema, request.inputs)])
        out[name] = np.asarray(next(iter(outputs.values())), dtype=np.float64)
    return out


def mismatch(status: int | None, body: bytes, expected: np.ndarray) -> str | None:
    """None when ``body`` (a v2 JSON response) carries ``expected`` as its first numeric
    output; else what differs."""
    if status != 200:
        return f"status {status}: {body[:160]!r}"
    try:
        outputs = json.loads(body)["outputs"]
        first = next(o for o in outputs if o["name"] in ("output", "probabilities"))
        got = np.asarray(first["data"], dtype=np.float64).reshape(expected.shape)
    except (ValueError, KeyError, TypeError, StopIteration) as exc:
        return f"unreadable answer ({exc!r}): {body[:160]!r}"
    if not np.allclose(got, expected, rtol=RTOL, atol=ATOL):
        worst = float(np.max(np.abs(got - expected)))
        return (f"wrong answer: {got.ravel()[:4].tolist()} vs mlgate's {expected.ravel()[:4].tolist()} "
                f"(max diff {worst:.3g})")
    return None
