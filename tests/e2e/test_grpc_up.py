"""The v2 protocol over gRPC as a user calls it: the official tritonclient.grpc and its aio
client, unmodified, against ``mlgate up`` on a real local Ray (access control on, its admin key
the credential). Every RPC; outputs equal to REST for the same rows and to the plain-torch
reference; the request id echoed; a stream with many requests in flight answered in order;
each error with its code; deadlines; gRPC and REST callers at once; TLS with a client
certificate on a second ``mlgate up``."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aioclient

from access.keys import KeyStore
from registry import Registry
from tests.conftest import free_port
from tests.mlgate_up import mlgate_up
from tests.polling import until
from tests.reference import ROW, demo_rows, reference_probabilities, v2_inputs
from tests.tlscerts import make_pki

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
Code = grpc.StatusCode
QUEUE = 8  # demo's max_queue_size here: a burst of 100 overflows it, the concurrent callers below never do
STREAM_INFLIGHT = QUEUE // 2  # serving.grpc.max_stream_inflight: a stream computes this many at once, within the queue


def grpc_ready(url: str, **tls) -> bool:
    client = grpcclient.InferenceServerClient(url, **tls)
    try:
        return client.is_server_ready(client_timeout=2)
    except grpcclient.InferenceServerException:
        return False
    finally:
        client.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_registry):
    work = tmp_path_factory.mktemp("grpc-up")
    grpc_port = free_port()
    with mlgate_up(demo_registry, work, 300.0, MLGATE_SERVING__GRPC__PORT=str(grpc_port),
                   MLGATE_SERVING__GRPC__MAX_STREAM_INFLIGHT=str(STREAM_INFLIGHT),
                   MLGATE_SERVING__MODELS=json.dumps({"demo": {"max_queue_size": QUEUE}})) as up:
        url = f"127.0.0.1:{grpc_port}"
        until(lambda: grpc_ready(url), 120.0, "mlgate's gRPC port ready")
        client = grpcclient.InferenceServerClient(url)
        yield up, url, client, Registry(demo_registry).get("demo")
        client.close()


def md(up) -> dict[str, str]:
    """The admin key as gRPC metadata (keys are lowercase in gRPC)."""
    return {"authorization": up.headers["Authorization"]}


def features(rows: list[dict], module=grpcclient) -> list:
    inputs = []
    for name, sample in ROW.items():
        text = isinstance(sample, str)
        values = [r.get(name) for r in rows]
        array = np.array([(v or "").encode() for v in values], dtype=object) if text else \
            np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        tensor = module.InferInput(name, [len(rows)], "BYTES" if text else "FP64")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


def rest_infer(up, rows: list[dict]) -> dict:
    from training.demo_data import demo_schema

    body = json.dumps({"inputs": v2_inputs(demo_schema(), rows)}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{up.port}/v2/models/demo/infer", body,
                                     {**up.headers, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return {o["name"]: o for o in json.loads(response.read())["outputs"]}


def rest_get(up, path: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{up.port}{path}", headers=up.headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def refused(call, code: grpc.StatusCode, fragment: str = "") -> None:
    with pytest.raises(grpcclient.InferenceServerException) as info:
        call()
    assert info.value.status() == str(code), (info.value.status(), info.value.message())
    assert fragment in (info.value.message() or ""), info.value.message()


def test_every_rpc_with_the_official_client(served):
    up, url, client, version = served
    h = md(up)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("demo")
    assert client.get_server_metadata(as_json=True)["name"] == "mlgate"
    meta = client.get_model_metadata("demo", headers=h, as_json=True)
    assert [t["name"] for t in meta["inputs"]] == list(ROW)
    config = client.get_model_config("demo", headers=h, as_json=True)["config"]
    assert config["name"] == "demo" and [i["name"] for i in config["input"]] == \
        [i["name"] for i in rest_get(up, "/v2/models/demo/config")["input"]]
    rows = demo_rows(9, seed=11)
    result = client.infer("demo", features(rows), headers=h, request_id="e2e-1")
    assert result.get_response().id == "e2e-1"
    rest = rest_infer(up, rows)
    np.testing.assert_allclose(result.as_numpy("probabilities").ravel(), rest["probabilities"]["data"], rtol=1e-6)
    assert [v.decode() for v in result.as_numpy("label")] == rest["label"]["data"]
    np.testing.assert_allclose(result.as_numpy("probabilities"), reference_probabilities(version, rows),
                               rtol=1e-5, atol=1e-6)
    stats = client.get_inference_statistics("demo", headers=h, as_json=True)["model_stats"]
    assert int(stats[0]["inference_count"]) >= len(rows)
    index = client.get_model_repository_index(headers=h, as_json=True)["models"]
    assert {(m["name"], m["state"]) for m in index} == {("demo", "READY")}
    client.unload_model("demo", headers=h)
    assert not client.is_model_ready("demo")
    client.load_model("demo", headers=h)
    assert client.is_model_ready("demo")


def test_each_error_has_its_code(served):
    up, url, client, version = served
    h = md(up)
    narrow = KeyStore(str(up.keys_file)).create("grpc-e2e-other", ["infer:other"])[1]
    inputs = features([ROW])
    refused(lambda: client.infer("nope", inputs, headers=h), Code.NOT_FOUND, "unknown model")
    refused(lambda: client.infer("demo", inputs[:4], headers=h), Code.INVALID_ARGUMENT, "missing input")
    refused(lambda: client.infer("demo", inputs), Code.UNAUTHENTICATED)
    until(lambda: _denied(client, inputs, narrow), 30.0, "the new key known to the replica")
    refused(lambda: client.get_model_repository_index(headers={"authorization": f"Bearer {narrow}"}),
            Code.PERMISSION_DENIED, "admin")
    refused(lambda: client.infer("demo", inputs, headers=h, timeout=1), Code.DEADLINE_EXCEEDED)
    refused(lambda: client.infer("demo", inputs, headers=h, client_timeout=1e-4), Code.DEADLINE_EXCEEDED)
    many = features([ROW] * 300)  # over the row limit (4 x max_batch_size)
    refused(lambda: client.infer("demo", many, headers=h), Code.RESOURCE_EXHAUSTED, "rows")


def _denied(client, inputs, key: str) -> bool:
    try:
        client.infer("demo", inputs, headers={"authorization": f"Bearer {key}"})
    except grpcclient.InferenceServerException as exc:
        return exc.status() == str(Code.PERMISSION_DENIED)
    return False


def test_a_burst_over_the_queue_is_unavailable_and_the_rest_is_answered(served):
    up, url, client, version = served

    async def burst():
        client = aioclient.InferenceServerClient(url)
        try:
            return await asyncio.gather(*(client.infer("demo", features([ROW], aioclient), headers=md(up))
                                          for _ in range(100)), return_exceptions=True)
        finally:
            await client.close()

    for _ in range(5):
        answers = asyncio.run(burst())
        failed = [a for a in answers if isinstance(a, Exception)]
        if failed:
            break
    assert failed and len(failed) < len(answers)
    assert {e.status() for e in failed} == {str(Code.UNAVAILABLE)}, {e.message() for e in failed}


def test_the_aio_client_streams_many_requests_in_flight_in_order(served):
    up, url, client, version = served
    rows = demo_rows(60, seed=12)

    async def stream():
        client = aioclient.InferenceServerClient(url)

        async def requests():
            for i, row in enumerate(rows):
                yield {"model_name": "nope" if i % 15 == 7 else "demo", "inputs": features([row], aioclient),
                       "request_id": f"st-{i}"}

        try:
            return [answer async for answer in client.stream_infer(requests(), headers=md(up))]
        finally:
            await client.close()

    answers = asyncio.run(stream())
    assert len(answers) == len(rows)
    good = []
    for i, (result, error) in enumerate(answers):
        if i % 15 == 7:
            assert result is None and "NOT_FOUND" in error.message()
        else:
            assert error is None, (i, error.message())
            assert result.get_response().id == f"st-{i}"
            good.append(i)
    got = np.concatenate([answers[i][0].as_numpy("probabilities") for i in good])
    np.testing.assert_allclose(got, reference_probabilities(version, [rows[i] for i in good]), rtol=1e-5, atol=1e-6)


def test_grpc_and_rest_callers_at_once_match_the_single_row_reference(served):
    up, url, client, version = served
    rows = demo_rows(48, seed=13)
    expected = reference_probabilities(version, rows)
    local = threading.local()

    def by_grpc(i: int) -> np.ndarray:
        if not hasattr(local, "client"):
            local.client = grpcclient.InferenceServerClient(url)
        return local.client.infer("demo", features([rows[i]]), headers=md(up)).as_numpy("probabilities")[0]

    def by_rest(i: int) -> np.ndarray:
        return np.array(rest_infer(up, [rows[i]])["probabilities"]["data"], dtype=np.float32)

    with ThreadPoolExecutor(QUEUE - 2) as pool:
        futures = [pool.submit(by_grpc if i % 2 else by_rest, i) for i in range(len(rows))]
        got = np.stack([f.result(timeout=120) for f in futures])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_grpc_over_tls_with_a_client_certificate(tmp_path_factory, demo_registry):
    work = tmp_path_factory.mktemp("grpc-tls-up")
    pki = make_pki(work / "pki")
    grpc_port = free_port()
    url = f"127.0.0.1:{grpc_port}"
    tls = {"ssl": True, "root_certificates": str(pki.ca.cert_file), "private_key": str(pki.client.key_file),
           "certificate_chain": str(pki.client.cert_file)}
    with mlgate_up(demo_registry, work, 300.0, ready=lambda _: grpc_ready(url, **tls),
                   MLGATE_SERVING__GRPC__PORT=str(grpc_port),
                   MLGATE_SERVING__TLS__CERT_FILE=str(pki.server.cert_file),
                   MLGATE_SERVING__TLS__KEY_FILE=str(pki.server.key_file),
                   MLGATE_SERVING__TLS__CLIENT_CA_FILE=str(pki.ca.cert_file)) as up:
        client = grpcclient.InferenceServerClient(url, **tls)
        try:
            assert client.infer("demo", features([ROW]), headers=md(up)).as_numpy("probabilities").shape == (1, 2)
            refused(lambda: client.infer("demo", features([ROW])), Code.UNAUTHENTICATED)  # TLS is no credential
        finally:
            client.close()
        stranger = grpcclient.InferenceServerClient(url, ssl=True, root_certificates=str(pki.ca.cert_file))
        refused(lambda: stranger.is_server_live(client_timeout=10), Code.UNAVAILABLE)
        stranger.close()
        until(lambda: "gRPC (v2 protocol, tritonclient.grpc, TLS)" in up.log_path.read_text(), 30.0,
              "mlgate up's gRPC line")
