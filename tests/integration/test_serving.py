"""The serving core on a real local Ray over real HTTP on 127.0.0.1 (issue 2).

One deployment for the module: ``demo``, a user tensor model ``mlp`` with two served
versions, and ``slow``, a deliberately compute-heavy model behind a one-slot queue. Access
control is on: every request carries a client's API key (scope ``infer:*``), as a user's does.
"""

from __future__ import annotations

import http.client
import json
import random
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import orjson
import pytest
import torch
from torch import nn

from registry import FeatureSpec, ModelSchema, OutputSpec, Registry
from registry.torch_io import register_torch_model
from tests.conftest import free_port
from tests.models import MLP_SCHEMA, mlp
from tests.polling import until, wait_ready
from tests.reference import ROW, demo_doc, demo_rows, labels_of, reference_probabilities, reference_tensor, v2_inputs

pytestmark = pytest.mark.integration
httpclient = pytest.importorskip("tritonclient.http")

MAX_BODY = 256 * 1024
SLOW_ITERATIONS = 800  # 256x256 matmuls per call: about 0.2 s on one core, far above the 5 ms deadlines


class Slow(nn.Module):
    """y = 2x, after a pile of work the output depends on (so nothing can skip it)."""

    def __init__(self, iterations: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(256, 256, generator=torch.Generator().manual_seed(0)) / 16)
        self.iterations = iterations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.w
        for _ in range(self.iterations):
            h = torch.tanh(h @ self.w)
        return x * 2.0 + h.mean() * 0.0


SLOW_SCHEMA = ModelSchema(kind="tensor", task="regression",
                          inputs=(FeatureSpec(name="x", datatype="FP32", shape=(4,)),),
                          outputs=(OutputSpec(name="y", datatype="FP32", shape=(4,)),))


@dataclass
class Served:
    port: int
    reg: Registry
    key: str  # the client's API key: infer:* (an unknown model is a 404, not a 403)

    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def served(ray_session, demo_registry, tmp_path_factory, keys):
    from ray import serve

    from serving.config import ServingConfig
    from serving.deployment import APP_NAME, deploy, shutdown_hub

    root = tmp_path_factory.mktemp("serving-registry")
    shutil.rmtree(root)
    shutil.copytree(demo_registry, root)
    reg = Registry(str(root))
    register_torch_model(reg, "mlp", mlp(1), MLP_SCHEMA)
    register_torch_model(reg, "mlp", mlp(2), MLP_SCHEMA)
    register_torch_model(reg, "slow", Slow(SLOW_ITERATIONS), SLOW_SCHEMA)
    key = keys.create("serving-client", "infer:*")
    port = free_port()
    cfg = ServingConfig(
        port=port, max_body_bytes=MAX_BODY, replica_num_cpus=1,
        models={"mlp": {"version_policy": {"policy": "all"}},
                "slow": {"max_queue_size": 1, "max_batch_size": 1}},
        auth=keys.auth,
    )
    deploy(str(root), cfg)
    try:
        wait_ready(port)
        yield Served(port, reg, key)
    finally:
        serve.delete(APP_NAME)
        shutdown_hub()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(served: Served, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout_s: float = 60.0) -> Reply:
    """One request with the client's key (and ``headers``)."""
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers={**served.headers, **(headers or {})})
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def post_json(served: Served, path: str, doc, headers: dict | None = None) -> Reply:
    return request(served, "POST", path, json.dumps(doc).encode(),
                   {"Content-Type": "application/json", **(headers or {})})


def assert_error(reply: Reply, status: int, *fragments: str) -> str:
    assert reply.status == status, (reply.status, reply.body[:300])
    doc = reply.json()
    assert list(doc) == ["error"] and isinstance(doc["error"], str)
    for fragment in fragments:
        assert fragment in doc["error"], doc["error"]
    return doc["error"]


def demo_client_inputs(rows: list[dict], binary: bool, column_shape: str = "[N]") -> list:
    from training.demo_data import demo_schema

    inputs = []

    for spec in demo_schema().inputs:
        values = [row.get(spec.name) for row in rows]
        shape = [len(rows)] if column_shape == "[N]" else [len(rows), 1]
        if spec.categorical:
            arr = np.array([("" if v is None else v).encode() for v in values], dtype=object).reshape(shape)
            tensor = httpclient.InferInput(spec.name, shape, "BYTES")
        else:
            arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64).reshape(shape)
            tensor = httpclient.InferInput(spec.name, shape, "FP64")
        tensor.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(tensor)
    return inputs


# -- the official client -------------------------------------------------------------


def test_tritonclient_health_and_metadata(served):
    client = httpclient.InferenceServerClient(url=served.url())
    try:
        auth = served.headers
        assert client.is_server_live() and client.is_server_ready()  # health and readiness: open
        assert client.is_model_ready("demo") and client.is_model_ready("mlp", "1") and client.is_model_ready("mlp", "2")
        assert not client.is_model_ready("nope")
        meta = client.get_model_metadata("demo", headers=auth)
        assert meta["name"] == "demo" and meta["versions"] == ["1"]
        assert {i["name"] for i in meta["inputs"]} == {s.name for s in served.reg.get("demo").schema.inputs}
        assert client.get_model_metadata("mlp", headers=auth)["versions"] == ["1", "2"]
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    finally:
        client.close()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("column_shape", ["[N]", "[N,1]"])
def test_tritonclient_infer_demo(served, binary, column_shape):
    rows = demo_rows(7, seed=21)
    version = served.reg.get("demo")
    expected = reference_probabilities(version, rows)
    client = httpclient.InferenceServerClient(url=served.url())
    try:
        kwargs = {} if binary else {"outputs": [httpclient.InferRequestedOutput("probabilities", binary_data=False),
                                                httpclient.InferRequestedOutput("label", binary_data=False)]}
        result = client.infer("demo", demo_client_inputs(rows, binary, column_shape), request_id="trq-1",
                              headers=served.headers, **kwargs)
        response = result.get_response()
        assert response["id"] == "trq-1" and response["model_version"] == "1"
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5, atol=1e-6)
        labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
        assert labels == labels_of(version.schema, expected)
    finally:
        client.close()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_requested_outputs_are_honoured(served, binary):
    rows = demo_rows(3, seed=22)
    client = httpclient.InferenceServerClient(url=served.url())
    try:
        result = client.infer("demo", demo_client_inputs(rows, binary),
                              outputs=[httpclient.InferRequestedOutput("label", binary_data=binary)],
                              headers=served.headers)
        assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]
        assert result.as_numpy("probabilities") is None
        expected = reference_probabilities(served.reg.get("demo"), rows)
        labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
        assert labels == labels_of(served.reg.get("demo").schema, expected)
    finally:
        client.close()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("version", ["1", "2"])
def test_tritonclient_infer_user_model_versions(served, binary, version):
    x = np.random.default_rng(int(version)).normal(size=(4, 32)).astype(np.float32)
    tensor = httpclient.InferInput("x", [4, 32], "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    client = httpclient.InferenceServerClient(url=served.url())
    try:
        outputs = [httpclient.InferRequestedOutput("probabilities", binary_data=binary)]
        result = client.infer("mlp", [tensor], model_version=version, outputs=outputs, headers=served.headers)
        assert result.get_response()["model_version"] == version
        expected = reference_tensor(served.reg.get("mlp", int(version)), x)
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5, atol=1e-6)
    finally:
        client.close()


# -- a second user model, two served versions ------------------------------------------


def test_each_served_version_answers_on_its_own_route(served):
    x = np.random.default_rng(3).normal(size=(2, 32)).astype(np.float32)
    doc = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 32], "data": x.reshape(-1).tolist()}]}
    answers = {}
    for version in ("1", "2"):
        reply = post_json(served, f"/v2/models/mlp/versions/{version}/infer", doc)
        assert reply.status == 200 and reply.json()["model_version"] == version
        answers[version] = np.array(reply.json()["outputs"][0]["data"]).reshape(2, 3)
        np.testing.assert_allclose(answers[version], reference_tensor(served.reg.get("mlp", int(version)), x),
                                   rtol=1e-5, atol=1e-6)
    assert not np.allclose(answers["1"], answers["2"])  # really two different models
    latest = post_json(served, "/v2/models/mlp/infer", doc)
    assert latest.json()["model_version"] == "2"
    plain = post_json(served, "/v1/models/mlp/versions/1:predict", {"instances": x.tolist()})
    got = np.array([[p["probabilities"][c] for c in "abc"] for p in plain.json()["predictions"]])
    np.testing.assert_allclose(got, answers["1"], rtol=1e-5, atol=1e-6)


def test_plain_route_over_http(served):
    rows = demo_rows(4, seed=23)
    reply = post_json(served, "/v1/models/demo:predict", {"instances": rows, "id": "plain-1"})
    assert reply.status == 200
    doc = reply.json()
    assert doc["id"] == "plain-1"
    expected = reference_probabilities(served.reg.get("demo"), rows)
    got = np.array([[p["probabilities"]["stay"], p["probabilities"]["churn"]] for p in doc["predictions"]])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


# -- concurrency ------------------------------------------------------------------------


def test_concurrent_callers_each_match_a_single_row_reference(served):
    rng = random.Random(99)
    callers = 64
    sizes = [rng.randint(1, 5) for _ in range(callers)]
    rows = demo_rows(sum(sizes), seed=24)
    version = served.reg.get("demo")
    expected = reference_probabilities(version, rows)  # one row at a time, plain torch
    offsets = np.cumsum([0] + sizes)
    start = threading.Barrier(16)

    def call(i: int) -> Reply:
        chunk = rows[offsets[i]:offsets[i + 1]]
        if i < 16:
            start.wait(timeout=60)
        if i % 2:
            return post_json(served, "/v1/models/demo:predict", {"instances": chunk, "id": f"c{i}"})
        return post_json(served, "/v2/models/demo/infer",
                         {"id": f"c{i}", "inputs": v2_inputs(version.schema, chunk)})

    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(call, range(callers)))
    for i, reply in enumerate(replies):
        assert reply.status == 200, (i, reply.body[:300])
        doc = reply.json()
        assert doc["id"] == f"c{i}"
        if i % 2:
            got = np.array([[p["probabilities"]["stay"], p["probabilities"]["churn"]] for p in doc["predictions"]])
        else:
            got = np.array(doc["outputs"][0]["data"]).reshape(sizes[i], 2)
        np.testing.assert_allclose(got, expected[offsets[i]:offsets[i + 1]], rtol=1e-5, atol=1e-6)


# -- errors ------------------------------------------------------------------------------


def test_unknown_model_and_version_are_404(served):
    doc = {"inputs": v2_inputs(served.reg.get("demo").schema, [ROW])}
    assert_error(post_json(served, "/v2/models/nope/infer", doc), 404, "nope")
    assert_error(post_json(served, "/v2/models/demo/versions/7/infer", doc), 404, "7")
    assert_error(post_json(served, "/v1/models/nope:predict", {"instances": [ROW]}), 404)
    assert_error(request(served, "GET", "/v2/models/nope"), 404)
    assert_error(request(served, "GET", "/v2/models/demo/versions/7/ready"), 404)


@pytest.mark.parametrize("doc, fragment", [
    (demo_doc(age={"name": "agee"}), "agee"),
    (demo_doc(age={"shape": [1, 2], "data": [1, 2]}), "inputs.age.shape"),
    (demo_doc(age={"datatype": "BYTES", "data": ["1", "2"]}), "inputs.age.datatype"),
    (demo_doc(balance={"data": [1.0, float("inf")]}), "inputs.balance"),
])
def test_invalid_inputs_are_400(served, doc, fragment):
    assert_error(post_json(served, "/v2/models/demo/infer", doc), 400, fragment)


def test_malformed_bodies_are_400(served):
    assert_error(request(served, "POST", "/v2/models/demo/infer", b'{"inputs": ['), 400, "body")
    assert_error(request(served, "POST", "/v1/models/demo:predict", b"instances"), 400, "body")
    tensor = httpclient.InferInput("x", [2, 32], "FP32")
    tensor.set_data_from_numpy(np.ones((2, 32), dtype=np.float32), binary_data=True)
    raw, length = httpclient.InferenceServerClient.generate_request_body([tensor])
    reply = request(served, "POST", "/v2/models/mlp/infer", raw[:-10],
                    {"Inference-Header-Content-Length": str(length)})
    assert_error(reply, 400, "binary_data_size")


def test_body_over_the_limit_is_413(served):
    big = json.dumps({"instances": [ROW] * (MAX_BODY // 150 + 10)}).encode()
    assert len(big) > MAX_BODY
    assert_error(request(served, "POST", "/v1/models/demo:predict", big), 413)
    assert request(served, "GET", "/v2/health/ready").status == 200


def slow_input(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, 4)).astype(np.float32)


def slow_doc(x: np.ndarray, **extra) -> dict:
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}],
            **extra}


def test_overload_is_503_with_retry_after_and_every_other_answer_is_right(served):
    slow = served.reg.get("slow")
    statuses: list[int] = []
    for burst in range(5):  # bursts until the one-slot queue overflowed at least once
        inputs = [slow_input(1, 100 * burst + i) for i in range(12)]
        start = threading.Barrier(len(inputs))

        def call(x: np.ndarray, start: threading.Barrier = start) -> Reply:
            start.wait(timeout=60)
            return post_json(served, "/v2/models/slow/infer", slow_doc(x))

        with ThreadPoolExecutor(len(inputs)) as pool:
            replies = list(pool.map(call, inputs))
        for x, reply in zip(inputs, replies):
            statuses.append(reply.status)
            if reply.status == 503:
                assert int(reply.headers["retry-after"]) >= 1
                assert_error(reply, 503, "queue full")
            else:
                assert reply.status == 200, reply.body[:300]
                got = np.array(reply.json()["outputs"][0]["data"], dtype=np.float32).reshape(1, 4)
                np.testing.assert_allclose(got, reference_tensor(slow, x), rtol=1e-6)
        if 503 in statuses:
            break
    assert 503 in statuses and 200 in statuses
    assert request(served, "GET", "/v2/health/ready").status == 200


@pytest.mark.parametrize("how", ["header", "parameter"])
def test_deadline_is_504(served, how):
    x = slow_input(1, 7)
    wait_idle(served)  # the one-slot queue may still hold work from an earlier test
    if how == "header":
        reply = post_json(served, "/v2/models/slow/infer", slow_doc(x), {"X-Mlgate-Timeout-Ms": "5"})
    else:
        reply = post_json(served, "/v2/models/slow/infer", slow_doc(x, parameters={"timeout": 5000}))
    assert_error(reply, 504, "deadline")  # 5 ms against a model that computes far longer
    plain = post_json(served, "/v1/models/demo:predict", {"instances": [ROW], "parameters": {"timeout_s": 1e-6}})
    assert_error(plain, 504, "deadline")


def wait_idle(served, timeout_s: float = 60.0) -> None:
    """Until the slow model answers a request without a deadline (its queue has drained)."""
    until(lambda: post_json(served, "/v2/models/slow/infer", slow_doc(slow_input(1, 0))).status == 200,
          timeout_s, "slow model idle", interval_s=0.05)


def test_no_client_input_gives_a_500_and_the_replica_survives(served):
    rng = random.Random(2024)
    seeds = [json.dumps(demo_doc()).encode(), orjson.dumps({"instances": [ROW]}),
             json.dumps(slow_doc(slow_input(2, 1))).encode()]
    junk = [b"\x00", b"{", b"}", b"[", b"]", b'"', b",", b"NaN", b"-Infinity", b"1e999", b"\xff", b"9" * 25,
            b'"BYTES"', b"[-1]", b"null", b'"binary_data_size":3']
    paths = ["/v2/models/demo/infer", "/v1/models/demo:predict", "/v2/models/mlp/infer",
             "/v2/models/mlp/versions/1/infer", "/v1/models/mlp:predict"]
    for i in range(120):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(body) + 1)
            if rng.random() < 0.4:
                del body[pos:pos + rng.randint(1, 30)]
            else:
                body[pos:pos] = rng.choice(junk)
        headers = {}
        if rng.random() < 0.3:
            headers["Inference-Header-Content-Length"] = str(rng.randrange(-3, len(body) + 3))
        reply = request(served, "POST", rng.choice(paths), bytes(body), headers)
        assert reply.status not in (401, 403), reply.body[:300]  # the key is good: the body decides
        assert reply.status < 500 or reply.status in (503, 504), (i, reply.status, bytes(body)[:200], headers)
    auth = f"Authorization: {served.headers['Authorization']}\r\n".encode()  # so no 401 answers in its place
    for raw in (b"GARBAGE\r\n\r\n", b"POST /v2/models/demo/infer HTTP/1.1\r\n" + auth + b"Content-Length: zz\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
            sock.sendall(raw)
            answer = sock.recv(65536)
            assert not answer.startswith((b"HTTP/1.1 5", b"HTTP/1.1 401", b"HTTP/1.1 403")), answer[:100]
    assert request(served, "GET", "/v2/health/ready").status == 200
    again = post_json(served, "/v1/models/demo:predict", {"instances": [ROW]})
    assert again.status == 200
