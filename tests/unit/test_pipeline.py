"""A model version's compute path (preprocess -> runner -> postprocess), shared by real-time
serving and batch scoring, against the plain-torch oracle. No Ray, no HTTP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from registry import FeatureSpec, ModelSchema, OutputSpec, Registry
from registry.torch_io import register_torch_model
from serving.pipeline import ModelPipeline, prepare
from serving.types import Tensor
from tests.reference import demo_rows, labels_of, reference_probabilities, reference_tensor, v2_inputs

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def prepared_rows(schema: ModelSchema, rows: list[dict]):
    """Rows as the transports hand them over: v2 tensors, validated."""
    tensors = []
    for item in v2_inputs(schema, rows):
        if item["datatype"] == "BYTES":
            data = np.empty(len(rows), dtype=object)
            data[:] = [v.encode() for v in item["data"]]
        else:
            data = np.array(item["data"], dtype=np.float64)
        tensors.append(Tensor(item["name"], item["datatype"], tuple(item["shape"]), data))
    return prepare(schema, tensors)


@pytest.fixture(scope="module")
def demo(demo_registry):
    return Registry(demo_registry).get("demo")


def split_check(pipeline: ModelPipeline, version, sizes: list[int], rtol: float, atol: float) -> None:
    rows = demo_rows(sum(sizes), seed=31)
    expected = reference_probabilities(version, rows)
    bounds = np.cumsum([0] + sizes)
    batch = [prepared_rows(pipeline.schema, rows[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    outputs = pipeline.predict_split(batch)
    assert len(outputs) == len(sizes)
    for (a, b), out in zip(zip(bounds[:-1], bounds[1:]), outputs):
        assert out["probabilities"].shape == (b - a, 2) and out["probabilities"].dtype == np.float32
        np.testing.assert_allclose(out["probabilities"], expected[a:b], rtol=rtol, atol=atol)
        assert [v.decode() for v in out["label"]] == labels_of(version.schema, out["probabilities"])


def test_demo_pipeline_on_cpu_matches_the_reference(demo):
    pipeline = ModelPipeline(demo, device="cpu")
    assert pipeline.name == "demo" and pipeline.version == 1  # a version is an int inside
    assert pipeline.row_shape == (pipeline.preprocessor.width,)
    split_check(pipeline, demo, [1, 3, 5, 2, 1], rtol=1e-5, atol=1e-6)
    split_check(pipeline, demo, [7], rtol=1e-5, atol=1e-6)


def test_pipeline_agrees_with_itself_across_batch_compositions(demo):
    """The same rows give the same answers alone or batched with others (batch scoring = serving)."""
    pipeline = ModelPipeline(demo, device="cpu")
    rows = demo_rows(80, seed=32)
    whole = pipeline.predict([prepared_rows(pipeline.schema, rows)])
    alone = [pipeline.predict([prepared_rows(pipeline.schema, [row])]) for row in rows]
    np.testing.assert_allclose(whole["probabilities"], np.concatenate([a["probabilities"] for a in alone]),
                               rtol=1e-5, atol=1e-6)


def test_tensor_regression_pipeline(tmp_path):
    schema = ModelSchema(kind="tensor", task="regression",
                         inputs=(FeatureSpec(name="x", datatype="FP32", shape=(6,)),),
                         outputs=(OutputSpec(name="y", datatype="FP32", shape=(2,)),))
    torch.manual_seed(0)
    version = register_torch_model(Registry(str(tmp_path)), "reg", torch.nn.Linear(6, 2), schema)
    pipeline = ModelPipeline(version, device="cpu")
    pipeline.warm_up((1, 4))
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    parts = [prepare(schema, [Tensor("x", "FP32", (n, 6), x[a:a + n])]) for a, n in ((0, 2), (2, 3))]
    outputs = pipeline.predict_split(parts)
    np.testing.assert_allclose(np.concatenate([o["y"] for o in outputs]), reference_tensor(version, x), rtol=1e-5)
    assert [o["y"].shape for o in outputs] == [(2, 2), (3, 2)]


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-5), ("bf16", 2e-2), ("fp16", 5e-3)])
@pytest.mark.parametrize("graphs", [(), (8, 64)], ids=["eager", "cuda-graphs"])
def test_demo_pipeline_on_cuda_matches_the_cpu_reference(demo, precision, tolerance, graphs):
    pipeline = ModelPipeline(demo, device="auto", precision=precision, cuda_graph_batch_sizes=graphs)
    assert pipeline.runner.device.type == "cuda"
    pipeline.warm_up((1, 64))
    split_check(pipeline, demo, [1, 3, 5, 2, 1], rtol=0, atol=tolerance)
    split_check(pipeline, demo, [40, 30], rtol=0, atol=tolerance)  # above the largest bucket: eager path
