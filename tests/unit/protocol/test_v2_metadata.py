"""v2 server and model metadata documents."""

from __future__ import annotations

from registry.schema import FeatureSpec, ModelSchema, OutputSpec
from serving.protocol import encode_error, model_metadata, server_metadata


def test_server_metadata_lists_the_binary_extension():
    meta = server_metadata()
    assert meta["name"] == "mlgate"
    assert isinstance(meta["version"], str) and meta["version"]
    assert meta["extensions"] == ["binary_tensor_data"]
    assert server_metadata("gw", "9.9")["version"] == "9.9"


def test_model_metadata_prefixes_the_batch_dimension():
    schema = ModelSchema(
        inputs=(
            FeatureSpec(name="age", datatype="FP32"),
            FeatureSpec(name="img", datatype="UINT8", shape=(28, -1)),
        ),
        outputs=ModelSchema.classifier_outputs(3),
        class_labels=("a", "b", "c"),
    )
    meta = model_metadata("iris", ["1", "2"], "pytorch_torchscript", schema.inputs, schema.outputs)
    assert meta == {
        "name": "iris",
        "versions": ["1", "2"],
        "platform": "pytorch_torchscript",
        "inputs": [{"name": "age", "datatype": "FP32", "shape": [-1]},
                   {"name": "img", "datatype": "UINT8", "shape": [-1, 28, -1]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
                    {"name": "label", "datatype": "BYTES", "shape": [-1]}],
    }
    meta = model_metadata("m", [], "p", [], [OutputSpec(name="y", datatype="FP64")])
    assert meta["outputs"][0]["shape"] == [-1]


def test_error_body():
    assert encode_error('inputs[0].data: bad "x"') == b'{"error":"inputs[0].data: bad \\"x\\""}'
