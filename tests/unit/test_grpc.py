"""The gRPC transport on a real gateway (its HTTP and gRPC servers on loopback, no Ray): the
official tritonclient.grpc and raw grpc.aio stubs; every RPC, raw and typed contents equal to
REST and to the plain-torch reference, requested outputs in order, each error with its code
(and the retry hint), deadlines, access control, streaming in order with errors in it, the
repository RPCs, statistics, health and reflection, TLS."""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import threading

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from contracts import errors
from registry import Registry
from registry.torch_io import register_torch_model
from serving.config import ServingConfig
from serving.grpc.errors import grpc_error
from serving.grpc.generated import grpc_service_pb2 as pb
from serving.grpc.generated import grpc_service_pb2_grpc as pb_grpc
from tests.keys import make_keys
from tests.models import MLP_SCHEMA, mlp, publish_copy
from tests.reference import ROW, demo_rows, reference_probabilities, reference_tensor

MAX_BODY = 64 * 1024
Code = grpc.StatusCode


@pytest.fixture(scope="module")
def served(demo_registry, tmp_path_factory):
    from serving.gateway import Gateway

    root = tmp_path_factory.mktemp("grpc-registry")
    shutil.rmtree(root)
    shutil.copytree(demo_registry, root)
    reg = Registry(str(root))
    publish_copy(reg, reg.get("demo"), "busy")
    register_torch_model(reg, "mlp", mlp(1), MLP_SCHEMA)
    keys = make_keys(tmp_path_factory.mktemp("grpc-keys"))
    made = {"infer": keys.create("app", "infer:demo"), "other": keys.create("other", "infer:other")}
    cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth=keys.auth, max_body_bytes=MAX_BODY,
                        prediction_log={"flush_interval_s": 3600},
                        models={"busy": {"max_queue_size": 1, "max_batch_size": 1}})
    log_root = str(tmp_path_factory.mktemp("grpc-logs"))
    gw = Gateway(str(root), cfg, log_root=log_root, audit_root=str(tmp_path_factory.mktemp("grpc-audit")))
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{gw.grpc.port}")
    yield gw, keys, made, client, reg, log_root
    client.close()
    gw.stop()


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def demo_inputs(rows: list[dict], raw: bool = True) -> list[grpcclient.InferInput]:
    """The demo's features as tritonclient sends them (raw), or as typed contents (``raw=False``)."""
    inputs = []
    for name in ROW:
        text = isinstance(ROW[name], str)
        values = [r.get(name) for r in rows]
        if text:
            array = np.array([(v or "").encode() for v in values], dtype=object)
        else:
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        tensor = grpcclient.InferInput(name, [len(rows)], "BYTES" if text else "FP64")
        tensor.set_data_from_numpy(array)
        if not raw:
            message = tensor._get_tensor()
            if text:
                message.contents.bytes_contents.extend(array.tolist())
            else:
                message.contents.fp64_contents.extend(array.tolist())
            tensor._raw_content = None
        inputs.append(tensor)
    return inputs


def rest(port: int, method: str, path: str, key: str, body: bytes | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def refused(call, code: grpc.StatusCode, *fragments: str) -> str:
    with pytest.raises(grpcclient.InferenceServerException) as info:
        call()
    assert info.value.status() == str(code), (info.value.status(), info.value.message())
    for fragment in fragments:
        assert fragment in info.value.message(), info.value.message()
    return info.value.message()


# -- health, metadata, configuration -------------------------------------------------------


def test_server_and_model_health_and_metadata(served):
    gw, keys, made, client, reg, _ = served
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("demo") and client.is_model_ready("demo", "1")
    assert not client.is_model_ready("nope") and not client.is_model_ready("demo", "99")
    meta = client.get_server_metadata(as_json=True)
    assert meta["name"] == "mlgate" and "binary_tensor_data" in meta["extensions"]
    model = client.get_model_metadata("demo", headers=auth(made["infer"]), as_json=True)
    _, doc = rest(gw.port, "GET", "/v2/models/demo", made["infer"])
    assert model["versions"] == doc["versions"] and model["platform"] == doc["platform"]
    assert [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in model["inputs"]] == \
        [(t["name"], t["datatype"], t["shape"]) for t in doc["inputs"]]


def test_model_config_is_the_rest_config_document(served):
    gw, keys, made, client, reg, _ = served
    config = client.get_model_config("demo", headers=auth(made["infer"]), as_json=True)["config"]
    status, doc = rest(gw.port, "GET", "/v2/models/demo/config", made["infer"])
    assert status == 200
    assert config["name"] == doc["name"] == "demo" and int(config["max_batch_size"]) == doc["max_batch_size"] == 64
    assert [i["name"] for i in config["input"]] == [i["name"] for i in doc["input"]] == list(ROW)
    assert {i["data_type"] for i in doc["input"]} == {"TYPE_FP64", "TYPE_STRING"}
    assert int(config["dynamic_batching"]["default_queue_policy"]["max_queue_size"]) == 256
    assert rest(gw.port, "GET", "/v2/models/demo/versions/1/config", made["infer"])[1] == doc
    assert rest(gw.port, "GET", "/v2/models/nope/config", keys.admin)[0] == 404
    assert rest(gw.port, "GET", "/v2/models/demo/config", made["other"])[0] == 403


def test_standard_health_checking_and_reflection(served):
    gw = served[0]

    async def check():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gw.grpc.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            overall = await health.Check(health_pb2.HealthCheckRequest(service=""))
            service = await health.Check(health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService"))
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = [a async for a in stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
                list_services="")]))]
            return overall.status, service.status, {s.name for s in answers[0].list_services_response.service}

    overall, service, names = asyncio.run(check())
    assert overall == service == health_pb2.HealthCheckResponse.SERVING
    assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names


# -- inference --------------------------------------------------------------------------------


def test_raw_and_typed_contents_equal_rest_and_the_torch_reference(served):
    gw, keys, made, client, reg, _ = served
    rows = demo_rows(12, seed=3)
    expected = reference_probabilities(reg.get("demo"), rows)
    raw = client.infer("demo", demo_inputs(rows), headers=auth(made["infer"]))
    typed = client.infer("demo", demo_inputs(rows, raw=False), headers=auth(made["infer"]))
    body = {"inputs": [{"name": i.name(), "datatype": i.datatype(), "shape": list(i.shape()),
                        "data": [v if isinstance(v, float) else v for v in _json_values(i, rows)]}
                       for i in demo_inputs(rows)]}
    status, doc = rest(gw.port, "POST", "/v2/models/demo/infer", made["infer"], json.dumps(body).encode())
    assert status == 200
    by_name = {o["name"]: o for o in doc["outputs"]}
    for result in (raw, typed):
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(result.as_numpy("probabilities").ravel(), by_name["probabilities"]["data"],
                                   rtol=1e-6)
        assert [v.decode() for v in result.as_numpy("label")] == by_name["label"]["data"]
        assert result.get_response().model_version == "1"


def _json_values(tensor, rows):
    name = tensor.name()
    values = [r.get(name) for r in rows]
    return [("" if v is None else v) if isinstance(ROW[name], str) else (float("nan") if v is None else v)
            for v in values]


def test_requested_outputs_come_back_in_their_order_and_the_id_is_echoed(served):
    gw, keys, made, client, reg, _ = served
    outputs = [grpcclient.InferRequestedOutput("label"), grpcclient.InferRequestedOutput("probabilities")]
    result = client.infer("demo", demo_inputs([ROW]), outputs=outputs, request_id="order-1",
                          headers=auth(made["infer"]))
    response = result.get_response()
    assert [o.name for o in response.outputs] == ["label", "probabilities"] and response.id == "order-1"
    assert result.as_numpy("probabilities").shape == (1, 2)


def test_a_tensor_model_and_fp32_raw_contents(served):
    gw, keys, made, client, reg, _ = served
    x = np.random.default_rng(1).normal(size=(5, 32)).astype(np.float32)
    tensor = grpcclient.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer("mlp", [tensor], headers=auth(keys.admin))
    np.testing.assert_allclose(result.as_numpy("probabilities"), reference_tensor(reg.get("mlp"), x), rtol=1e-5,
                               atol=1e-6)


def test_grpc_requests_are_logged_with_route_grpc(served):
    from contracts.predlog import read_logs

    gw, keys, made, client, reg, log_root = served
    client.infer("demo", demo_inputs([ROW]), request_id="logged-1", headers=auth(made["infer"]))
    gw.writer.flush()
    table = read_logs(log_root, "demo", columns=["request_id", "route", "status"]).to_pylist()
    assert {"request_id": "logged-1", "route": "grpc", "status": 200} in table


# -- errors -----------------------------------------------------------------------------------


def test_bad_inputs_are_invalid_argument_naming_the_field(served):
    gw, keys, made, client, reg, _ = served
    h = auth(made["infer"])
    inputs = demo_inputs([ROW])
    refused(lambda: client.infer("demo", inputs[:3], headers=h), Code.INVALID_ARGUMENT, "missing input")
    wrong = grpcclient.InferInput("age", [2], "FP64")
    wrong.set_data_from_numpy(np.zeros(2))
    wrong._get_tensor().shape[:] = [3]
    refused(lambda: client.infer("demo", [wrong, *inputs[1:]], headers=h), Code.INVALID_ARGUMENT,
            "raw_input_contents[0]")
    odd = grpcclient.InferInput("age", [1], "BF16")
    odd._raw_content = b"\0\0"
    refused(lambda: client.infer("demo", [odd, *inputs[1:]], headers=h), Code.INVALID_ARGUMENT,
            "inputs[0].datatype")
    refused(lambda: client.infer("demo", inputs, headers=h, outputs=[grpcclient.InferRequestedOutput("nope")]),
            Code.INVALID_ARGUMENT, "outputs[0].name")


def test_typed_contents_of_the_wrong_count_or_field(served):
    gw, keys, made, client, reg, _ = served

    async def send(message):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gw.grpc.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(message, metadata=tuple(
                    auth(keys.admin).items()))
            return info.value

    short = pb.ModelInferRequest(model_name="mlp")
    short.inputs.add(name="x", datatype="FP32", shape=[1, 32]).contents.fp32_contents.extend([0.0] * 31)
    error = asyncio.run(send(short))
    assert error.code() == Code.INVALID_ARGUMENT and "inputs[0].contents.fp32_contents" in error.details()
    crossed = pb.ModelInferRequest(model_name="mlp")
    crossed.inputs.add(name="x", datatype="FP32", shape=[1, 32]).contents.fp64_contents.extend([0.0] * 32)
    error = asyncio.run(send(crossed))
    assert error.code() == Code.INVALID_ARGUMENT and "fp32_contents" in error.details()


def test_unknown_model_is_not_found_and_access_control_has_its_codes(served):
    gw, keys, made, client, reg, _ = served
    inputs = demo_inputs([ROW])
    refused(lambda: client.infer("nope", inputs, headers=auth(keys.admin)), Code.NOT_FOUND, "unknown model")
    refused(lambda: client.infer("demo", inputs), Code.UNAUTHENTICATED, "credentials required")
    refused(lambda: client.infer("demo", inputs, headers=auth("mlg_bogus_key")), Code.UNAUTHENTICATED)
    refused(lambda: client.infer("demo", inputs, headers=auth(made["other"])), Code.PERMISSION_DENIED, "infer:demo")
    refused(lambda: client.get_model_metadata("demo"), Code.UNAUTHENTICATED)
    refused(lambda: client.get_model_repository_index(headers=auth(made["infer"])), Code.PERMISSION_DENIED, "admin")


def test_deadlines_are_deadline_exceeded(served):
    gw, keys, made, client, reg, _ = served
    inputs = demo_inputs([ROW])
    refused(lambda: client.infer("demo", inputs, headers=auth(made["infer"]), timeout=1), Code.DEADLINE_EXCEEDED)
    refused(lambda: client.infer("demo", inputs, headers=auth(made["infer"]), client_timeout=1e-4),
            Code.DEADLINE_EXCEEDED)


def test_too_large_is_resource_exhausted(served):
    gw, keys, made, client, reg, _ = served
    for rows in (300, 600):  # over the row limit (4 x max_batch_size); over the message limit (the body limit)
        tensor = grpcclient.InferInput("x", [rows, 32], "FP32")
        tensor.set_data_from_numpy(np.zeros((rows, 32), np.float32))
        refused(lambda t=tensor: client.infer("mlp", [t], headers=auth(keys.admin)), Code.RESOURCE_EXHAUSTED)


def test_a_full_queue_is_unavailable_with_a_retry_hint(served):
    gw, keys, made, client, reg, _ = served
    request = pb.ModelInferRequest(model_name="busy")
    for tensor in demo_inputs([ROW]):
        request.inputs.append(tensor._get_tensor())
        request.raw_input_contents.append(tensor._get_content())

    async def burst():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gw.grpc.port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            calls = [stub.ModelInfer(request, metadata=tuple(auth(keys.admin).items())) for _ in range(100)]
            return await asyncio.gather(*calls, return_exceptions=True)

    # fewer calls than serving.grpc.max_concurrent_streams: a new connection's first calls beyond it
    # can meet REFUSED_STREAM before the client has the server's settings
    for _ in range(5):  # a burst that the one-slot queue keeps up with refuses nothing: try again
        answers = asyncio.run(burst())
        failed = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
        if failed:
            break
    assert failed and len(failed) < len(answers)
    assert {e.code() for e in failed} == {Code.UNAVAILABLE}, {(e.code(), e.details()) for e in failed}
    assert all(dict(e.trailing_metadata()).get("retry-after") == "1" for e in failed), \
        {(e.details(), tuple(e.trailing_metadata())) for e in failed}


def _malformed() -> list[pb.ModelInferRequest]:
    """Requests no client should send: each must be refused with a client error, never INTERNAL."""
    out = []

    def one(datatype="FP32", shape=(1, 32), raw=None, name="x", model="mlp", **contents):
        msg = pb.ModelInferRequest(model_name=model)
        tensor = msg.inputs.add(name=name, datatype=datatype, shape=list(shape))
        for field, values in contents.items():
            getattr(tensor.contents, field).extend(values)
        if raw is not None:
            msg.raw_input_contents.append(raw)
        out.append(msg)
        return msg

    one(raw=b"\0" * 127)  # not a whole number of FP32 elements
    one(raw=b"\0" * 64)  # too few
    one(shape=(1, -32), raw=b"")  # a negative dimension
    one(shape=(1 << 40, 1 << 40), raw=b"")  # far over what the message can hold
    one(shape=[1] * 17, raw=b"\0" * 4)  # rank over 16
    one(datatype="NOPE", raw=b"")
    one(datatype="BYTES", shape=(1,), raw=b"\xff\xff\xff\xff")  # a length prefix past the end
    one(datatype="BYTES", shape=(2,), bytes_contents=[b"a"])
    one(datatype="INT8", shape=(1, 32), int_contents=[1000] * 32)  # out of INT8's range
    one(datatype="FP16", shape=(1, 32), fp32_contents=[0.0] * 32)  # FP16 has no typed field
    one(datatype="UINT64", shape=(1, 32), uint64_contents=[2**64 - 1] * 32)  # the model wants FP32
    one(shape=(1, 32))  # no data at all
    one(name="", raw=b"\0" * 128)
    one(model="", raw=b"\0" * 128)
    two = one(raw=b"\0" * 128)
    two.inputs.add(name="x", datatype="FP32", shape=[1, 32])
    two.raw_input_contents.append(b"\0" * 128)  # a duplicate input
    shared = one(raw=b"\0" * 128)
    shared.inputs[0].parameters["shared_memory_region"].string_param = "r"
    timeout = one(raw=b"\0" * 128)
    timeout.parameters["timeout"].string_param = "soon"
    unnamed = one(raw=b"\0" * 128)
    unnamed.outputs.add(name="")
    long_id = one(raw=b"\0" * 128)
    long_id.id = "i" * 300
    mixed = one(raw=b"\0" * 128)
    mixed.inputs[0].contents.fp32_contents.extend([0.0] * 32)  # both raw and typed
    return out


def test_no_malformed_request_is_internal(served):
    gw, keys, made, client, reg, _ = served

    async def send_all():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gw.grpc.port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            codes = []
            for msg in _malformed():
                try:
                    await stub.ModelInfer(msg, metadata=tuple(auth(keys.admin).items()))
                    codes.append((None, ""))
                except grpc.aio.AioRpcError as exc:
                    codes.append((exc.code(), exc.details()))
            return codes

    codes = asyncio.run(send_all())
    assert all(code in (Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.RESOURCE_EXHAUSTED) for code, _ in codes), codes
    assert client.is_server_live()


def test_grpc_requests_are_counted_with_route_grpc(served):
    gw, keys, made, client, reg, _ = served
    client.infer("demo", demo_inputs([ROW]), headers=auth(made["infer"]))
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {keys.admin}"})
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    assert any(line.startswith("mlgate_requests_total{") and 'route="grpc"' in line and 'status="200"' in line
               for line in text.splitlines())


def test_the_checked_in_stubs_are_the_spec_s(tmp_path):
    """``serving/grpc/generated`` holds what ``make grpc-stubs`` makes of ../shared/specs/triton-grpc."""
    from pathlib import Path

    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    from serving.grpc.generated import model_config_pb2

    specs = Path(__file__).resolve().parents[3] / "shared" / "specs" / "triton-grpc"
    if not specs.is_dir():
        pytest.skip(f"no {specs}")
    out = tmp_path / "set.pb"
    assert protoc.main(["protoc", f"-I{specs}", f"--descriptor_set_out={out}", "grpc_service.proto",
                        "model_config.proto"]) == 0
    files = {f.name: _without_json_names(f) for f in descriptor_pb2.FileDescriptorSet.FromString(
        out.read_bytes()).file}
    for module in (pb, model_config_pb2):
        checked_in = _without_json_names(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
        assert checked_in == files[module.DESCRIPTOR.name], f"{module.__name__}: run make grpc-stubs"


def _without_json_names(file):
    """The Python generator leaves the fields' json_name out of what it embeds; protoc's set has them."""
    def clear(messages):
        for message in messages:
            for f in message.field:
                f.ClearField("json_name")
            clear(message.nested_type)

    clear(file.message_type)
    return file


def test_every_error_class_maps_to_its_code():
    cases = {errors.InvalidInput("x: bad"): Code.INVALID_ARGUMENT, errors.NotFound("m"): Code.NOT_FOUND,
             errors.Unauthenticated("no"): Code.UNAUTHENTICATED, errors.Forbidden("no"): Code.PERMISSION_DENIED,
             errors.RateLimited("slow", 2.5): Code.RESOURCE_EXHAUSTED, errors.PayloadTooLarge("big"):
             Code.RESOURCE_EXHAUSTED, errors.Overloaded("full"): Code.UNAVAILABLE,
             errors.DeadlineExceeded("late"): Code.DEADLINE_EXCEEDED, errors.ClientClosed(): Code.CANCELLED,
             RuntimeError("secret detail"): Code.INTERNAL}
    for exc, code in cases.items():
        assert grpc_error(exc).code == code, exc
    assert grpc_error(RuntimeError("secret detail")).message == "internal server error"
    assert dict(grpc_error(errors.RateLimited("slow", 2.5)).trailers) == {"retry-after": "3",
                                                                          "grpc-retry-pushback-ms": "3000"}


# -- streaming ----------------------------------------------------------------------------------


def test_a_stream_answers_many_in_flight_in_order_and_errors_do_not_close_it(served):
    gw, keys, made, client, reg, _ = served
    rows = demo_rows(40, seed=5)
    expected = reference_probabilities(reg.get("demo"), rows)
    answers: list = []
    finished = threading.Event()  # the sync client's callback runs on its own thread

    def callback(result, error):
        answers.append((result, error))
        if len(answers) == 2 * len(rows):
            finished.set()

    client.start_stream(callback, headers=auth(keys.admin))
    try:
        for i, row in enumerate(rows):
            client.async_stream_infer("demo", demo_inputs([row]), request_id=f"s-{i}")
            client.async_stream_infer("nope" if i % 10 == 0 else "demo", demo_inputs([row]), request_id=f"t-{i}")
        assert finished.wait(120)
    finally:
        client.stop_stream()
    ids = [f"{p}-{i}" for i in range(len(rows)) for p in "st"]
    for (result, error), want in zip(answers, ids):
        if want.startswith("t-") and int(want[2:]) % 10 == 0:
            assert result is None and "NOT_FOUND" in error.message()
            continue
        assert error is None and result.get_response().id == want
    got = np.concatenate([answers[2 * i][0].as_numpy("probabilities") for i in range(len(rows))])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_stream_without_a_credential_is_unauthenticated(served):
    gw, keys, made, client, reg, _ = served
    errors_seen: list = []
    finished = threading.Event()

    def callback(result, error):
        errors_seen.append(error)
        finished.set()

    client.start_stream(callback)
    try:
        try:  # the server may end the stream before the client writes: the callback has the error then
            client.async_stream_infer("demo", demo_inputs([ROW]))
        except grpcclient.InferenceServerException:
            pass
        assert finished.wait(30)
    finally:
        client.stop_stream()
    assert errors_seen[0].status() == str(Code.UNAUTHENTICATED), errors_seen[0]


# -- repository and statistics ------------------------------------------------------------------


def test_repository_rpcs_are_admin_only_and_audited(served):
    gw, keys, made, client, reg, _ = served
    h = auth(keys.admin)
    index = client.get_model_repository_index(headers=h, as_json=True)["models"]
    assert {"name": "mlp", "version": "1", "state": "READY"} in index
    refused(lambda: client.unload_model("mlp", headers=auth(made["infer"])), Code.PERMISSION_DENIED)
    client.unload_model("mlp", headers=h)
    assert not client.is_model_ready("mlp")
    client.load_model("mlp", headers=h)
    assert client.is_model_ready("mlp")
    refused(lambda: client.load_model("nope", headers=h), Code.NOT_FOUND)
    from access.audit import AuditLog

    records = AuditLog(gw.audit_root).records()
    actions = [(r["action"], r["outcome"]) for r in records if r["target"] == "mlp"]
    assert ("repository.unload", "refused") in actions and ("repository.unload", "ok") in actions


def test_statistics_count_this_replica_s_inferences(served):
    gw, keys, made, client, reg, _ = served
    before = client.get_inference_statistics("demo", headers=auth(made["infer"]), as_json=True)["model_stats"][0]
    client.infer("demo", demo_inputs([ROW, ROW, ROW]), headers=auth(made["infer"]))
    after = client.get_inference_statistics("demo", headers=auth(made["infer"]), as_json=True)["model_stats"][0]
    count = lambda s, k: int(s.get(k, 0))  # noqa: E731 - proto3 JSON leaves zeros out
    assert count(after, "inference_count") == count(before, "inference_count") + 3
    assert int(after["inference_stats"]["success"]["count"]) == \
        int(before.get("inference_stats", {}).get("success", {}).get("count", 0)) + 1
    refused(lambda: client.get_inference_statistics("demo", headers=auth(made["other"])), Code.PERMISSION_DENIED)


# -- TLS ----------------------------------------------------------------------------------------


def test_tls_with_a_client_certificate(demo_registry, tmp_path_factory):
    from serving.gateway import Gateway
    from tests.tlscerts import make_pki

    work = tmp_path_factory.mktemp("grpc-tls")
    pki = make_pki(work / "pki")
    cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth={"enabled": False},
                        prediction_log={"enabled": False},
                        tls={"cert_file": str(pki.server.cert_file), "key_file": str(pki.server.key_file),
                             "client_ca_file": str(pki.ca.cert_file)})
    gw = Gateway(demo_registry, cfg)
    try:
        url = f"127.0.0.1:{gw.grpc.port}"
        good = grpcclient.InferenceServerClient(url, ssl=True, root_certificates=str(pki.ca.cert_file),
                                                private_key=str(pki.client.key_file),
                                                certificate_chain=str(pki.client.cert_file))
        assert good.infer("demo", demo_inputs([ROW])).as_numpy("probabilities").shape == (1, 2)
        good.close()
        for cert in (None, pki.stranger):
            extra = {} if cert is None else {"private_key": str(cert.key_file),
                                             "certificate_chain": str(cert.cert_file)}
            bad = grpcclient.InferenceServerClient(url, ssl=True, root_certificates=str(pki.ca.cert_file), **extra)
            refused(lambda b=bad: b.is_server_live(client_timeout=10), Code.UNAVAILABLE)
            bad.close()
        plain = grpcclient.InferenceServerClient(url)
        refused(lambda: plain.is_server_live(client_timeout=10), Code.UNAVAILABLE)
        plain.close()
    finally:
        gw.stop()


def _served_serial(port: int, ca_file) -> int:
    """The serial of the certificate a new TLS handshake with the gRPC port presents."""
    import socket
    import ssl

    from cryptography import x509

    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def test_a_renewed_certificate_reaches_new_grpc_handshakes(demo_registry, tmp_path):
    from serving.gateway import Gateway
    from tests.tlscerts import make_pki

    pki = make_pki(tmp_path / "pki")
    cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth={"enabled": False},
                        prediction_log={"enabled": False},
                        tls={"cert_file": str(pki.server.cert_file), "key_file": str(pki.server.key_file),
                             "reload_interval_s": 3600})
    gw = Gateway(demo_registry, cfg)
    try:
        assert _served_serial(gw.grpc.port, pki.ca.cert_file) == pki.server.serial
        renewed = pki.ca.issue("server", "127.0.0.1", server=True)  # written over the served files
        assert asyncio.run_coroutine_threadsafe(gw.grpc.tls.check(), gw.server.loop).result(30)
        assert _served_serial(gw.grpc.port, pki.ca.cert_file) == renewed.serial != pki.server.serial
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{gw.grpc.port}", ssl=True,
                                                  root_certificates=str(pki.ca.cert_file))
        assert client.is_server_live()
        client.close()
    finally:
        gw.stop()


# -- stop -----------------------------------------------------------------------------------------


def test_at_stop_new_calls_are_refused_and_a_stream_in_flight_finishes(demo_registry):
    from serving.gateway import Gateway

    cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth={"enabled": False},
                        prediction_log={"enabled": False}, grpc={"shutdown_grace_s": 20})
    gw = Gateway(demo_registry, cfg)
    request = pb.ModelInferRequest(model_name="demo")
    for tensor in demo_inputs([ROW]):
        request.inputs.append(tensor._get_tensor())
        request.raw_input_contents.append(tensor._get_content())

    async def scenario():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gw.grpc.port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            stream = stub.ModelStreamInfer()
            await stream.write(request)
            first = await stream.read()
            stopping = asyncio.get_running_loop().run_in_executor(None, gw.stop)
            while True:  # until the stop has begun: new calls are refused
                try:
                    await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                except grpc.aio.AioRpcError as exc:
                    refused_code = exc.code()
                    break
                await asyncio.sleep(0.01)
            await stream.write(request)  # the stream in flight is still answered
            second = await stream.read()
            await stream.done_writing()
            await stopping
            return first, second, refused_code

    first, second, refused_code = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert not first.error_message and not second.error_message
    assert second.infer_response.outputs[0].name == "probabilities"
    assert refused_code == Code.UNAVAILABLE
