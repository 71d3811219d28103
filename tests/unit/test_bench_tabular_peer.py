"""The demo model as the TorchServe and PyTriton peers serve it: the exported preprocessing
(JSON) applied in numpy, then the exported TorchScript, must answer what mlgate's
preprocessor and the registry module answer, unseen categories and missing values included."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from benchmarks.serving import answers
from benchmarks.serving import models as bm
from benchmarks.serving.base import PEERS_DIR
from benchmarks.serving.peers.tabular_peer import DemoClassifier, TabularTransform
from registry import Registry
from tests.reference import demo_rows, reference_probabilities, v2_inputs

ROWS = 300


@pytest.fixture(scope="module")
def version(demo_registry):
    return Registry(demo_registry).get("demo")


@pytest.fixture(scope="module")
def exported(version, tmp_path_factory):
    return bm.export_demo(version, tmp_path_factory.mktemp("export"))  # (model.pt, preprocess.json)


@pytest.fixture(scope="module")
def rows():
    out = demo_rows(ROWS, seed=3)
    names = list(out[0])
    for i in range(2, ROWS, 5):  # every feature missing somewhere, not only the dataset's own gaps
        out[i][names[i % len(names)]] = None
    out[0] = {k: None for k in out[0]}  # every feature missing at once
    out[1] = {**out[1], "plan": "platinum-plus", "channel": "carrier-pigeon"}  # unseen categories
    return out


def mlgate_columns(version, rows):
    """What mlgate's validation hands its preprocessor: NaN for a missing number, None for a category."""
    cols = {}
    for spec in version.schema.inputs:
        values = [row[spec.name] for row in rows]
        cols[spec.name] = (np.array(values, dtype=object) if spec.categorical
                           else np.array([math.nan if v is None else v for v in values], dtype=np.float64))
    return cols


def triton_columns(version, rows):
    """What PyTriton's @batch hands over: [N, 1] FP64 and [N, 1] UTF-8 bytes (missing: NaN, b"")."""
    cols = {}
    for item in v2_inputs(version.schema, rows):
        data = item["data"]
        cols[item["name"]] = (np.array([[v.encode()] for v in data], dtype=object) if item["datatype"] == "BYTES"
                              else np.array(data, dtype=np.float64).reshape(-1, 1))
    return cols


def test_rows_cover_missing_and_unseen(rows):
    assert sum(r["region"] == "atlantis" for r in rows) > 10
    assert all(sum(r[name] is None for r in rows) >= 5 for name in rows[0])


def test_exported_transform_builds_the_preprocessors_matrix(version, exported, rows):
    transform = TabularTransform.load(exported[1])
    want = version.preprocessor().transform(mlgate_columns(version, rows))
    assert transform.width == want.shape[1]
    assert_array_equal(transform(mlgate_columns(version, rows)), want)
    assert_array_equal(transform(triton_columns(version, rows)), want)


def test_exported_classifier_matches_mlgate_and_the_row_oracle(version, exported, rows):
    model = DemoClassifier(exported[1], exported[0])
    with torch.inference_mode():
        mlgate = version.load_torch("cpu").eval()(
            torch.from_numpy(version.preprocessor().transform(mlgate_columns(version, rows)))).numpy()
    got = model.probabilities(triton_columns(version, rows))
    assert_allclose(got, mlgate, rtol=0, atol=1e-6)
    assert_allclose(got, reference_probabilities(version, rows), rtol=0, atol=1e-6)
    assert model.label_of(got) == [version.schema.class_labels[i] for i in mlgate.argmax(1)]


def test_export_is_plain_data_with_the_registry_module(version, exported):
    script, spec = exported
    doc = json.loads(open(spec, encoding="utf-8").read())
    assert [f["name"] for f in doc["features"]] == version.schema.feature_names
    assert doc["labels"] == list(version.schema.class_labels)
    assert open(script, "rb").read() == version.read("model.pt")


class FakeContext:
    """The part of TorchServe's handler context the demo handler uses."""

    def __init__(self, model_dir: str, serialized_file: str) -> None:
        self.manifest = {"model": {"modelName": "demo", "serializedFile": serialized_file}}
        self.system_properties = {"model_dir": model_dir}
        self.statuses: dict[int, int] = {}

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.statuses[idx] = code


def load_ts_handler(monkeypatch):
    monkeypatch.syspath_prepend(str(PEERS_DIR))  # the archive's extra files sit next to the handler
    spec = importlib.util.spec_from_file_location("ts_demo_handler", PEERS_DIR / "ts_demo_handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.V2DemoHandler()


def test_torchserve_handler_answers_each_request_of_a_batch(version, exported, rows, monkeypatch, tmp_path):
    script, spec = exported
    (tmp_path / "demo.pt").write_bytes(open(script, "rb").read())
    (tmp_path / "demo.preprocess.json").write_text(open(spec, encoding="utf-8").read())
    handler, context = load_ts_handler(monkeypatch), FakeContext(str(tmp_path), "demo.pt")
    handler.initialize(context)
    parts = [rows[:1], rows[1:50], rows[50:51], rows[51:]]
    bodies = [{"body": {"inputs": v2_inputs(version.schema, parts[0])}},
              {"body": json.dumps({"inputs": v2_inputs(version.schema, parts[1], "[N,1]")}).encode()},  # NaN literal
              {"body": {"inputs": v2_inputs(version.schema, parts[2])[1:]}},  # an input left out
              {"data": {"inputs": v2_inputs(version.schema, parts[3])}}]
    out = handler.handle(bodies, context)
    assert context.statuses == {2: 400} and "missing input" in out[2]["error"]
    for i in (0, 1, 3):
        probabilities = out[i]["outputs"][0]
        assert probabilities["shape"] == [len(parts[i]), 2]
        got = np.array(probabilities["data"], dtype=np.float64).reshape(-1, 2)
        assert_allclose(got, reference_probabilities(version, parts[i]), rtol=0, atol=1e-6)


def test_probe_accepts_the_right_answer_and_names_a_wrong_one(version, exported):
    model = DemoClassifier(exported[1], exported[0])
    row = {k: np.array([v], dtype=object if isinstance(v, str) else np.float64) for k, v in bm.DEMO_ROW.items()}
    y = model.probabilities(row)
    expected = reference_probabilities(version, [bm.DEMO_ROW]).astype(np.float64)
    body = json.dumps({"outputs": [{"name": "probabilities", "data": y.ravel().tolist()}]}).encode()
    assert answers.mismatch(200, body, expected) is None
    wrong = json.dumps({"outputs": [{"name": "probabilities", "data": (1 - y).ravel().tolist()}]}).encode()
    assert "wrong answer" in answers.mismatch(200, wrong, expected)
    assert "status 500" in answers.mismatch(500, b"{}", expected)
