"""The gateway's ASGI app driven in-process (no sockets, no Ray) over a real data plane:
every route, the v2 and plain codecs end to end, and every error status."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import orjson
import pytest

from contracts.errors import DeadlineExceeded, InvalidInput
from registry import Registry
from registry.torch_io import register_torch_model
from serving.config import ServingConfig
from serving.dataplane import DataPlane
from serving.http.app import GatewayApp
from tests.models import MLP_SCHEMA, mlp, publish_copy
from tests.reference import ROW, demo_doc, demo_rows, labels_of, reference_probabilities, reference_tensor, v2_inputs

httpclient = pytest.importorskip("tritonclient.http")
Client = httpclient.InferenceServerClient
MAX_BODY = 64 * 1024
SAFETY_S = 60.0


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


async def asgi(app, method: str, path: str, body: bytes = b"", headers: dict | None = None,
               chunks: list[bytes] | None = None) -> Reply:
    """One HTTP exchange as an ASGI server performs it. ``chunks``: a streamed body
    without Content-Length."""
    parts = [body] if chunks is None else chunks
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    raw_headers = [(k.lower().encode(), v.encode() if isinstance(v, str) else v) for k, v in (headers or {}).items()]
    if chunks is None and method == "POST":
        raw_headers.append((b"content-length", str(len(body)).encode()))
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": raw_headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    await app(scope, receive, send)
    start, body_msg = sent
    assert start["type"] == "http.response.start" and body_msg["type"] == "http.response.body"
    hdrs = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return Reply(start["status"], hdrs, body_msg.get("body", b""))




@pytest.fixture(scope="module")
def env(demo_registry, tmp_path_factory):
    root = tmp_path_factory.mktemp("app-registry")
    shutil.rmtree(root)
    shutil.copytree(demo_registry, root)
    reg = Registry(str(root))
    publish_copy(reg, reg.get("demo"), "busy")  # the demo model behind a one-slot queue
    publish_copy(reg, reg.get("demo"), "strict")  # the demo model with a tiny default deadline
    register_torch_model(reg, "mlp", mlp(1), MLP_SCHEMA)
    register_torch_model(reg, "mlp", mlp(2), MLP_SCHEMA)
    cfg = ServingConfig(max_body_bytes=MAX_BODY, torch_num_threads=1, models={
        "mlp": {"version_policy": {"policy": "all"}},
        "busy": {"max_queue_size": 1, "max_batch_size": 1},
        "strict": {"default_timeout_s": 1e-6},
    })
    loop = asyncio.new_event_loop()
    dp = DataPlane.load(reg, cfg)
    app = GatewayApp(dp, cfg.max_body_bytes)

    def call(*args, **kwargs) -> Reply:
        return loop.run_until_complete(asyncio.wait_for(asgi(app, *args, **kwargs), SAFETY_S))

    def gather(coros):
        async def together():
            return await asyncio.gather(*coros)

        return loop.run_until_complete(asyncio.wait_for(together(), SAFETY_S))

    yield SimpleNamespace(app=app, dp=dp, reg=reg, call=call, gather=gather)
    loop.run_until_complete(dp.close())
    loop.close()


def infer_json(env, model: str, doc: dict, version: str | None = None, headers: dict | None = None) -> Reply:
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    return env.call("POST", path, json.dumps(doc).encode(), headers)


def assert_error(reply: Reply, status: int, *fragments: str) -> str:
    assert reply.status == status, (reply.status, reply.body)
    doc = reply.json()
    assert list(doc) == ["error"] and isinstance(doc["error"], str)
    for fragment in fragments:
        assert fragment in doc["error"], doc["error"]
    return doc["error"]


# -- metadata and health --------------------------------------------------------------


def test_server_metadata_and_health(env):
    meta = env.call("GET", "/v2")
    assert meta.status == 200
    assert meta.json()["name"] == "mlgate" and "binary_tensor_data" in meta.json()["extensions"]
    assert env.call("GET", "/v2/health/live").json() == {"live": True}
    ready = env.call("GET", "/v2/health/ready")
    assert ready.status == 200 and ready.json() == {"ready": True}


def test_model_metadata(env):
    demo = env.call("GET", "/v2/models/demo").json()
    assert demo["name"] == "demo" and demo["versions"] == ["1"]
    assert {i["name"]: (i["datatype"], i["shape"]) for i in demo["inputs"]}["region"] == ("BYTES", [-1])
    assert {o["name"]: (o["datatype"], o["shape"]) for o in demo["outputs"]} == {
        "probabilities": ("FP32", [-1, 2]), "label": ("BYTES", [-1])}
    assert env.call("GET", "/v2/models/mlp").json()["versions"] == ["1", "2"]
    one = env.call("GET", "/v2/models/mlp/versions/1").json()
    assert one["versions"] == ["1"] and one["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 32]}]


def test_model_readiness(env):
    for path in ("/v2/models/demo/ready", "/v2/models/mlp/versions/1/ready", "/v2/models/mlp/versions/2/ready"):
        reply = env.call("GET", path)
        assert reply.status == 200 and reply.json()["ready"] is True
    assert_error(env.call("GET", "/v2/models/nope/ready"), 404, "nope")
    assert_error(env.call("GET", "/v2/models/demo/versions/9/ready"), 404, "version '9'")


@pytest.mark.parametrize("path", ["/v2/models/nope", "/v2/models/demo/versions/2", "/v2/models/demo/versions/x"])
def test_unknown_model_or_version_metadata(env, path):
    assert_error(env.call("GET", path), 404)


@pytest.mark.parametrize("path", ["/", "/v3", "/v2/models/", "/v2/models/demo/versions/1/infer/x",
                                  "/v2/models/demo/explain", "/v1/models/demo", "/v1/models/:predict"])
def test_unknown_routes_are_404(env, path):
    assert_error(env.call("GET", path), 404)
    assert_error(env.call("POST", path, b"{}"), 404)


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/v2/models/demo/infer", "POST"),
    ("PUT", "/v1/models/demo:predict", "POST"),
    ("POST", "/v2/health/ready", "GET"),
    ("DELETE", "/v2/models/demo", "GET"),
])
def test_wrong_method_is_405(env, method, path, allowed):
    reply = env.call(method, path, b"{}" if method != "GET" else b"")
    assert_error(reply, 405)
    assert reply.headers["allow"] == allowed


# -- v2 inference ---------------------------------------------------------------------


def test_v2_json_inference_matches_the_torch_reference(env):
    rows = demo_rows(6, seed=3)
    version = env.reg.get("demo")
    reply = infer_json(env, "demo", {"id": "req-42", "inputs": v2_inputs(version.schema, rows)})
    assert reply.status == 200, reply.body
    doc = reply.json()
    assert doc["id"] == "req-42" and doc["model_name"] == "demo" and doc["model_version"] == "1"
    outputs = {o["name"]: o for o in doc["outputs"]}
    assert outputs["probabilities"]["shape"] == [6, 2] and outputs["label"]["shape"] == [6]
    expected = reference_probabilities(version, rows)
    np.testing.assert_allclose(np.array(outputs["probabilities"]["data"]).reshape(6, 2), expected,
                               rtol=1e-5, atol=1e-6)
    assert outputs["label"]["data"] == labels_of(version.schema, expected)


def test_v2_column_shapes_n_and_n_by_1_agree(env):
    rows = demo_rows(3, seed=4)
    schema = env.reg.get("demo").schema
    flat = infer_json(env, "demo", {"inputs": v2_inputs(schema, rows, "[N]")}).json()
    column = infer_json(env, "demo", {"inputs": v2_inputs(schema, rows, "[N,1]")}).json()
    assert flat["outputs"] == column["outputs"]


def test_v2_requested_outputs_are_honoured(env):
    schema = env.reg.get("demo").schema
    doc = {"inputs": v2_inputs(schema, [ROW]), "outputs": [{"name": "label"}]}
    reply = infer_json(env, "demo", doc)
    assert [o["name"] for o in reply.json()["outputs"]] == ["label"]
    doc["outputs"] = [{"name": "score"}]
    assert_error(infer_json(env, "demo", doc), 400, "outputs[0].name", "score")


@pytest.mark.parametrize("binary_in", [True, False], ids=["binary-in", "json-in"])
@pytest.mark.parametrize("binary_out", [True, False], ids=["binary-out", "json-out"])
def test_v2_with_the_official_client_codec(env, binary_in, binary_out):
    """tritonclient writes the request and reads the response, as over the network."""
    x = np.random.default_rng(0).normal(size=(5, 32)).astype(np.float32)
    tensor = httpclient.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary_in)
    outputs = [httpclient.InferRequestedOutput("probabilities", binary_data=binary_out),
               httpclient.InferRequestedOutput("label", binary_data=binary_out)]
    body, header_length = Client.generate_request_body([tensor], outputs=outputs, request_id="c-1")
    headers = {} if header_length is None else {"Inference-Header-Content-Length": str(header_length)}
    reply = env.call("POST", "/v2/models/mlp/infer", body, headers)
    assert reply.status == 200, reply.body
    result = Client.parse_response_body(reply.body, header_length=reply.headers.get("inference-header-content-length")
                                        and int(reply.headers["inference-header-content-length"]))
    assert result.get_response()["id"] == "c-1"
    assert result.get_response()["model_version"] == "2"
    expected = reference_tensor(env.reg.get("mlp", 2), x)
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5, atol=1e-6)
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
    assert labels == labels_of(MLP_SCHEMA, expected)


def test_versioned_routes_reach_each_served_version(env):
    x = np.random.default_rng(1).normal(size=(3, 32)).astype(np.float32)
    doc = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 32], "data": x.tolist()}]}
    for version in ("1", "2"):
        reply = infer_json(env, "mlp", doc, version=version)
        assert reply.status == 200 and reply.json()["model_version"] == version
        got = np.array(reply.json()["outputs"][0]["data"]).reshape(3, 3)
        np.testing.assert_allclose(got, reference_tensor(env.reg.get("mlp", int(version)), x), rtol=1e-5, atol=1e-6)
    assert infer_json(env, "mlp", doc).json()["model_version"] == "2"  # unversioned: the newest served
    assert_error(infer_json(env, "mlp", doc, version="3"), 404, "version '3'")


# -- plain route ----------------------------------------------------------------------


def test_plain_route_matches_the_torch_reference(env):
    rows = demo_rows(5, seed=8)
    rows[1]["income"] = None
    rows[2].pop("plan")
    version = env.reg.get("demo")
    reply = env.call("POST", "/v1/models/demo:predict", orjson.dumps({"instances": rows, "id": "p-1"}))
    assert reply.status == 200, reply.body
    doc = reply.json()
    assert doc["id"] == "p-1" and doc["model_name"] == "demo" and doc["model_version"] == "1"
    expected = reference_probabilities(version, rows)
    got = np.array([[p["probabilities"]["stay"], p["probabilities"]["churn"]] for p in doc["predictions"]])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert [p["label"] for p in doc["predictions"]] == labels_of(version.schema, expected)
    versioned = env.call("POST", "/v1/models/demo/versions/1:predict", orjson.dumps({"instances": rows}))
    assert versioned.json()["predictions"] == doc["predictions"]


def test_plain_route_for_a_tensor_model(env):
    x = np.random.default_rng(2).normal(size=(2, 32)).astype(np.float32)
    reply = env.call("POST", "/v1/models/mlp/versions/1:predict", orjson.dumps({"instances": x.tolist()}))
    assert reply.status == 200, reply.body
    got = np.array([[p["probabilities"][c] for c in "abc"] for p in reply.json()["predictions"]])
    np.testing.assert_allclose(got, reference_tensor(env.reg.get("mlp", 1), x), rtol=1e-5, atol=1e-6)


# -- client errors --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v2/models/nope/infer", "/v2/models/demo/versions/5/infer",
                                  "/v1/models/nope:predict", "/v1/models/demo/versions/5:predict"])
def test_unknown_model_or_version_inference_is_404(env, path):
    body = orjson.dumps(demo_doc() if path.startswith("/v2") else {"instances": [ROW]})
    assert_error(env.call("POST", path, body), 404)


@pytest.mark.parametrize("doc, fragments", [
    ({"inputs": [{"name": "height", "datatype": "FP64", "shape": [1], "data": [1.0]}]}, ["height"]),
    (demo_doc(age={"shape": [2, 2], "data": [1, 2, 3, 4]}), ["inputs.age.shape"]),
    (demo_doc(age={"datatype": "BYTES", "data": ["1", "2"]}), ["inputs.age.datatype"]),
    (demo_doc(region={"datatype": "FP32", "data": [1.0, 2.0]}), ["inputs.region.datatype"]),
    (demo_doc(age={"shape": [3], "data": [1.0, 2.0, 3.0]}), ["batch size"]),
    (demo_doc(age={"shape": [2], "data": [1.0]}), ["inputs[0].data"]),
    (demo_doc(age={"datatype": "FP99"}), ["inputs[0].datatype"]),
    ({"inputs": []}, ["inputs"]),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 31], "data": [0.0] * 62}]}, ["inputs.x.shape"]),
])
def test_invalid_v2_requests_are_400_naming_the_field(env, doc, fragments):
    model = "mlp" if doc["inputs"] and doc["inputs"][0]["name"] == "x" else "demo"
    assert_error(infer_json(env, model, doc), 400, *fragments)


def test_non_finite_input_is_400(env):
    body = json.dumps(demo_doc(balance={"data": [1.0, float("inf")]})).encode()  # the Infinity literal
    assert b"Infinity" in body
    assert_error(env.call("POST", "/v2/models/demo/infer", body), 400, "inputs.balance", "infinity")
    x = np.zeros((1, 32), dtype=np.float32)
    x[0, 5] = -np.inf
    tensor = httpclient.InferInput("x", [1, 32], "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    raw, length = Client.generate_request_body([tensor])
    reply = env.call("POST", "/v2/models/mlp/infer", raw, {"Inference-Header-Content-Length": str(length)})
    assert_error(reply, 400, "inputs.x", "infinity")


@pytest.mark.parametrize("body", [b"{", b"", b"null", b"[]", b"\xff\xfe", b'{"inputs": "x"}'])
def test_malformed_v2_body_is_400(env, body):
    assert_error(env.call("POST", "/v2/models/demo/infer", body), 400)


def test_truncated_binary_body_and_bad_header_length_are_400(env):
    x = np.ones((4, 32), dtype=np.float32)
    tensor = httpclient.InferInput("x", [4, 32], "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    raw, length = Client.generate_request_body([tensor])
    header = {"Inference-Header-Content-Length": str(length)}
    assert_error(env.call("POST", "/v2/models/mlp/infer", raw[:-7], header), 400, "binary_data_size")
    assert_error(env.call("POST", "/v2/models/mlp/infer", raw[:length], header), 400)
    assert_error(env.call("POST", "/v2/models/mlp/infer", raw), 400)  # binary sections without the header
    for bad in ("abc", "-1", str(len(raw) + 1), "0"):
        assert_error(env.call("POST", "/v2/models/mlp/infer", raw, {"Inference-Header-Content-Length": bad}), 400,
                     "Inference-Header-Content-Length")


@pytest.mark.parametrize("value", ["soon", "-5", "0", "nan"])
def test_bad_timeout_header_is_400(env, value):
    reply = infer_json(env, "demo", demo_doc(), headers={"X-Mlgate-Timeout-Ms": value})
    assert_error(reply, 400, "X-Mlgate-Timeout-Ms")


@pytest.mark.parametrize("params", [{"timeout_s": -1}, {"timeout_s": "1"}, {"timeout_s": True}])
def test_bad_plain_timeout_is_400(env, params):
    body = orjson.dumps({"instances": [ROW], "parameters": params})
    assert_error(env.call("POST", "/v1/models/demo:predict", body), 400, "parameters.timeout_s")


@pytest.mark.parametrize("body, fragment", [
    (b"{oops", "body"),
    (b'{"instances": [{"age": "x"}]}', "instances[0].age"),
    (b'{"instances": [{"height": 1}]}', "instances[0].height"),
    (b'{"instances": [{"balance": 1e308, "income": -1e308}]}', None),
])
def test_plain_route_errors_are_400(env, body, fragment):
    reply = env.call("POST", "/v1/models/demo:predict", body)
    if fragment is None:  # extreme but finite numbers are clipped, never an error
        assert reply.status == 200
    else:
        assert_error(reply, 400, fragment)


# -- size, deadline, overload ---------------------------------------------------------


def test_body_over_the_limit_is_413(env):
    big = b'{"instances": [' + b'{"age": 1},' * (MAX_BODY // 10) + b'{"age": 1}]}'
    assert len(big) > MAX_BODY
    assert_error(env.call("POST", "/v1/models/demo:predict", big), 413)
    assert_error(env.call("POST", "/v2/models/demo/infer", big), 413)
    streamed = [big[i:i + 8192] for i in range(0, len(big), 8192)]  # no Content-Length
    assert_error(env.call("POST", "/v2/models/demo/infer", chunks=streamed), 413)
    small = [b'{"instances": [', b'{"age": 1}', b"]}"]  # a streamed body under the limit is fine
    assert env.call("POST", "/v1/models/demo:predict", chunks=small).status == 200


def test_client_gone_before_the_body_arrived_is_not_a_500(env):
    async def run():  # the first chunk says more is coming; then the client disconnects
        messages = [{"type": "http.request", "body": b'{"inst', "more_body": True}]
        sent = []

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(m):
            sent.append(m)

        scope = {"type": "http", "method": "POST", "path": "/v1/models/demo:predict", "headers": []}
        await env.app(scope, receive, send)
        return sent[0]["status"]

    assert env.gather([run()]) == [400]


@pytest.mark.parametrize("how", ["header", "parameter"])
def test_deadline_is_504(env, how):
    doc = demo_doc()
    headers = None
    if how == "header":
        headers = {"X-Mlgate-Timeout-Ms": "0.001"}  # one microsecond
    else:
        doc["parameters"] = {"timeout": 1}  # microseconds, as in Triton
    assert_error(infer_json(env, "demo", doc, headers=headers), 504, "deadline")
    plain = orjson.dumps({"instances": [ROW], "parameters": {"timeout_s": 1e-6}})
    assert_error(env.call("POST", "/v1/models/demo:predict", plain), 504, "deadline")


def test_the_deadline_runs_from_arrival_not_from_the_end_of_decoding(env):
    from serving.protocol.v2 import decode_infer_request

    request = decode_infer_request(orjson.dumps(demo_doc()), model="demo", version=None, header_length=None)
    request.timeout_s = 5.0
    arrived_10_s_ago = time.perf_counter() - 10.0  # e.g. a decode that took longer than the deadline

    async def run():
        with pytest.raises(DeadlineExceeded):
            await env.dp.infer(request, arrived_10_s_ago, time.time() - 10.0)

    env.gather([run()])


def test_the_smallest_deadline_wins(env):
    doc = demo_doc()
    doc["parameters"] = {"timeout": 1}  # 1 us in the body, a minute in the header
    assert_error(infer_json(env, "demo", doc, headers={"X-Mlgate-Timeout-Ms": "60000"}), 504)
    doc["parameters"] = {"timeout": 60_000_000}  # a minute in the body, 1 us in the header
    assert_error(infer_json(env, "demo", doc, headers={"X-Mlgate-Timeout-Ms": "0.001"}), 504)
    doc["parameters"] = {"timeout": 60_000_000}
    assert infer_json(env, "demo", doc, headers={"X-Mlgate-Timeout-Ms": "60000"}).status == 200
    plain = orjson.dumps({"instances": [ROW], "parameters": {"timeout_s": 60}})
    assert_error(env.call("POST", "/v1/models/demo:predict", plain, {"X-Mlgate-Timeout-Ms": "0.001"}), 504)


def test_model_default_deadline_applies_when_the_request_sets_none(env):
    body = orjson.dumps({"instances": [ROW]})
    assert_error(env.call("POST", "/v1/models/strict:predict", body), 504, "deadline")
    assert env.call("POST", "/v1/models/strict:predict", body, {"X-Mlgate-Timeout-Ms": "60000"}).status == 200


def test_a_header_deadline_the_queue_rules_out_is_504_before_the_body_is_decoded(env):
    batcher = env.dp.model("busy").batcher
    before, batcher.service_time.batch_s = batcher.service_time.batch_s, 100.0  # a batch takes 100 s
    try:
        reply = env.call("POST", "/v2/models/busy/infer", b"{not json", {"X-Mlgate-Timeout-Ms": "1000"})
        assert_error(reply, 504, "cannot be met")  # not the 400 the body would get: it was never decoded
        assert_error(env.call("POST", "/v2/models/busy/infer", b"{not json"), 400, "body")  # no deadline: decoded
    finally:
        batcher.service_time.batch_s = before


def test_queue_full_is_503_with_retry_after_and_other_answers_are_right(env):
    rows = demo_rows(20, seed=11)
    expected = reference_probabilities(env.reg.get("busy"), rows)
    bodies = [orjson.dumps({"instances": [row]}) for row in rows]
    replies = env.gather([asgi(env.app, "POST", "/v1/models/busy:predict", b) for b in bodies])
    statuses = [r.status for r in replies]
    assert set(statuses) <= {200, 503} and statuses.count(503) >= 1 and statuses.count(200) >= 1
    for i, reply in enumerate(replies):
        if reply.status == 503:
            assert int(reply.headers["retry-after"]) >= 1
            assert_error(reply, 503, "queue full")
        else:
            p = reply.json()["predictions"][0]["probabilities"]
            np.testing.assert_allclose([p["stay"], p["churn"]], expected[i], rtol=1e-5, atol=1e-6)
    assert env.call("GET", "/v2/health/ready").status == 200


def test_concurrent_callers_each_get_their_own_rows(env):
    rng = random.Random(5)
    rows = demo_rows(150, seed=12)
    version = env.reg.get("demo")
    expected = reference_probabilities(version, rows)
    requests, start = [], 0
    while start < len(rows):
        n = rng.randint(1, 5)
        requests.append((start, rows[start:start + n]))
        start += n
    replies = env.gather([asgi(env.app, "POST", "/v2/models/demo/infer",
                               json.dumps({"id": str(s), "inputs": v2_inputs(version.schema, chunk)}).encode())
                          for s, chunk in requests])
    for (s, chunk), reply in zip(requests, replies):
        assert reply.status == 200, reply.body
        doc = reply.json()
        assert doc["id"] == str(s)
        got = np.array(doc["outputs"][0]["data"]).reshape(len(chunk), 2)
        np.testing.assert_allclose(got, expected[s:s + len(chunk)], rtol=1e-5, atol=1e-6)


def test_no_client_input_gives_a_500(env):
    rng = random.Random(1234)
    x = np.ones((2, 32), dtype=np.float32)
    tensor = httpclient.InferInput("x", [2, 32], "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    binary, length = Client.generate_request_body([tensor])
    seeds = [
        json.dumps(demo_doc()).encode(),
        orjson.dumps({"instances": [ROW, {"age": None}]}),
        binary,
        b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1,32],"data":[' + b"0," * 31 + b"0]}]}",
    ]
    junk = [b"\x00", b"{", b"}", b"[", b"]", b'"', b",", b":", b"null", b"NaN", b"-Infinity", b"1e999",
            b"\xff", b'"BYTES"', b'"shape"', b"[-1]", b"9" * 30, b"true", b'"binary_data_size":']
    paths = ["/v2/models/demo/infer", "/v2/models/mlp/infer", "/v1/models/demo:predict", "/v1/models/mlp:predict",
             "/v2/models/mlp/versions/1/infer"]
    statuses = []
    for i in range(400):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(len(body) + 1)
            if op < 0.3:
                del body[pos:pos + rng.randint(1, 20)]
            elif op < 0.6:
                body[pos:pos] = rng.choice(junk)
            elif op < 0.8 and body:
                body[min(pos, len(body) - 1)] = rng.randrange(256)
            else:
                body = body[:pos]
        headers = {}
        if rng.random() < 0.5:
            headers["Inference-Header-Content-Length"] = str(rng.choice([length, rng.randrange(-5, len(body) + 5)]))
        if rng.random() < 0.2:
            headers["X-Mlgate-Timeout-Ms"] = rng.choice(["1e309", "-0", "1", "abc", "\u00e9", "1e-300"])
        reply = env.call("POST", rng.choice(paths), bytes(body), headers)
        statuses.append(reply.status)
        assert reply.status < 500 or reply.status in (503, 504), (i, reply.status, bytes(body)[:200], headers)
        if reply.status != 200:
            assert isinstance(reply.json()["error"], str)
    assert 400 in statuses
    assert env.call("GET", "/v2/health/ready").status == 200
    assert env.call("POST", "/v1/models/demo:predict", orjson.dumps({"instances": [ROW]})).status == 200


# -- hostile input: bounded before anything is allocated ---------------------------------


@pytest.mark.parametrize(("shape", "fragment"), [
    ([2**62] * 2_000, "2000 dimensions; at most 16"),  # 40 kB of shape: refused at its length
    ([1] * 17, "17 dimensions; at most 16"),
    ([0, 2**62], "needs more elements than"),
    ([2**31, 2**31, 0], "needs more elements than"),
])
def test_shapes_beyond_what_the_body_can_hold_are_400_naming_the_shape(env, shape, fragment):
    doc = {"inputs": [{"name": "x", "datatype": "FP32", "shape": shape, "data": []}]}
    assert_error(infer_json(env, "mlp", doc), 400, "inputs[0].shape", fragment)


def test_shape_bound_off_by_one():
    from serving.protocol.json_data import MAX_RANK, check_shape

    assert check_shape([10, 10], "s", 100) == (10, 10) and check_shape([0, 100], "s", 100) == (0, 100)
    assert check_shape([1] * MAX_RANK, "s", 1) == (1,) * MAX_RANK
    for shape, limit in (([10, 11], 109), ([101], 100), ([0, 101], 100), ([1] * (MAX_RANK + 1), 10)):
        with pytest.raises(InvalidInput, match=r"^s: "):
            check_shape(shape, "s", limit)


@pytest.mark.parametrize(("route", "request_id", "fragment"), [
    ("v2", "a\r\nX-Injected: 1", "control characters"),
    ("v2", "x" * 257, "257 characters; at most 256"),
    ("plain", "a\nb", "control characters"),
    ("plain", "\x00", "control characters"),
])
def test_request_ids_that_cannot_be_echoed_safely_are_400(env, route, request_id, fragment):
    if route == "v2":
        reply = infer_json(env, "demo", {**demo_doc(), "id": request_id})
    else:
        reply = env.call("POST", "/v1/models/demo:predict", orjson.dumps({"instances": [ROW], "id": request_id}))
    assert_error(reply, 400, "id:", fragment)
    assert all("\r" not in v and "\n" not in v for v in reply.headers.values())
    assert reply.headers["x-request-id"] != request_id  # a fresh id of ours, not the client's


def test_the_longest_printable_id_is_echoed(env):
    request_id = "é" + "x" * 255
    reply = infer_json(env, "demo", {**demo_doc(), "id": request_id})
    assert reply.status == 200 and reply.json()["id"] == request_id


def test_rows_per_request_are_limited_with_413_naming_the_setting(env):
    limit = env.dp.model("busy").cfg.row_limit  # 4 x its max_batch_size of 1
    assert limit == 4
    ok = env.call("POST", "/v1/models/busy:predict", orjson.dumps({"instances": [ROW] * limit}))
    assert ok.status == 200 and len(ok.json()["predictions"]) == limit
    assert_error(env.call("POST", "/v1/models/busy:predict", orjson.dumps({"instances": [ROW] * (limit + 1)})),
                 413, "instances: 5 rows", "max_rows_per_request")
    from training.demo_data import demo_schema

    doc = {"inputs": v2_inputs(demo_schema(), [ROW] * (limit + 1))}
    assert_error(infer_json(env, "busy", doc), 413, "inputs: 5 rows", "max_rows_per_request")


def test_big_bodies_are_decoded_off_the_event_loop(env, monkeypatch):
    import threading

    from serving import protocol
    from serving.http import app as app_module

    threads: list[bool] = []
    decode = protocol.decode_infer_request

    def spy(*args, **kwargs):
        threads.append(threading.current_thread() is threading.main_thread())  # the loop runs on the main thread
        return decode(*args, **kwargs)

    monkeypatch.setattr(protocol, "decode_infer_request", spy)
    monkeypatch.setattr(app_module, "OFFLOAD_DECODE_BYTES", 4096)
    small = infer_json(env, "demo", demo_doc())
    big = infer_json(env, "demo", {**demo_doc(), "parameters": {"padding": "x" * 8192}})
    assert (small.status, big.status) == (200, 200) and threads == [True, False]
