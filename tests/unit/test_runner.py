"""TorchRunner against its oracle, a plain torch forward pass. No Ray."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from serving.runner import TorchRunner, pick_device

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def make_module(seed: int = 0) -> torch.jit.ScriptModule:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3), nn.Softmax(dim=-1)).eval()
    return torch.jit.trace(net, torch.zeros(1, 12))


def oracle(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.tensor(x)).numpy()


def batch(rows: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, 12)).astype(np.float32)


def test_cpu_output_equals_a_plain_torch_forward():
    module = make_module()
    runner = TorchRunner(module, device="cpu")
    for rows in (1, 7, 256):
        x = batch(rows, seed=rows)
        out = runner(x)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (rows, 3)
        np.testing.assert_allclose(out, oracle(module, x), rtol=1e-6, atol=1e-7)


def test_auto_device_is_cpu_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert pick_device("auto") == "cpu"
    assert TorchRunner(make_module()).device.type == "cpu"


def test_non_contiguous_and_read_only_input():
    module = make_module()
    runner = TorchRunner(module, device="cpu")
    x = batch(20)
    strided = x[::2]
    np.testing.assert_allclose(runner(strided), oracle(module, np.ascontiguousarray(strided)), rtol=1e-6)
    frozen = np.frombuffer(x.tobytes(), dtype=np.float32).reshape(20, 12)  # as the binary codec decodes
    assert not frozen.flags.writeable
    np.testing.assert_allclose(runner(frozen), oracle(module, x), rtol=1e-6)


def test_thread_safe_under_concurrent_calls():
    module = make_module()
    runner = TorchRunner(module, device="cpu")
    inputs = [batch(1 + i % 9, seed=i) for i in range(64)]
    start = threading.Barrier(8)

    def worker(chunk: list[np.ndarray]) -> list[np.ndarray]:
        start.wait(timeout=30)  # all threads call the runner at the same time
        return [runner(x) for x in chunk]

    with ThreadPoolExecutor(8) as pool:
        chunks = list(pool.map(worker, [inputs[i::8] for i in range(8)]))
    for i, outs in enumerate(chunks):
        for x, out in zip(inputs[i::8], outs):
            np.testing.assert_allclose(out, oracle(module, x), rtol=1e-6, atol=1e-7)


def test_from_bytes_loads_torchscript():
    module = make_module(seed=3)
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    runner = TorchRunner.from_bytes(buf.getvalue(), device="cpu")
    x = batch(5)
    np.testing.assert_allclose(runner(x), oracle(module, x), rtol=1e-6)


def test_warm_up_runs_and_leaves_results_unchanged():
    module = make_module()
    runner = TorchRunner(module, device="cpu")
    runner.warm_up((12,), batch_sizes=(1, 8, 64))
    x = batch(8)
    np.testing.assert_allclose(runner(x), oracle(module, x), rtol=1e-6)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_precision_is_accepted_on_cpu_and_stays_exact(precision):
    module = make_module()
    runner = TorchRunner(module, device="cpu", precision=precision, cuda_graph_batch_sizes=(8, 16))
    x = batch(4)
    np.testing.assert_allclose(runner(x), oracle(module, x), rtol=1e-6)


def test_eager_module_is_accepted():
    torch.manual_seed(0)
    module = nn.Linear(12, 2)
    runner = TorchRunner(module, device="cpu")
    x = batch(3)
    np.testing.assert_allclose(runner(x), oracle(module, x), rtol=1e-6)


# -- CUDA (run on the GPU machine) ---------------------------------------------------


@pytest.mark.gpu
@cuda
def test_cuda_fp32_matches_cpu_reference():
    module = make_module()
    reference = oracle(module, batch(33))
    runner = TorchRunner(make_module(), device="cuda")
    assert runner.device.type == "cuda"
    np.testing.assert_allclose(runner(batch(33)), reference, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_autocast_is_close_and_returns_float32(precision):
    module = make_module()
    reference = oracle(module, batch(16))
    out = TorchRunner(make_module(), device="cuda", precision=precision)(batch(16))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, reference, atol=2e-2)


@pytest.mark.gpu
@cuda
def test_cuda_graph_buckets_pad_and_match_reference():
    module = make_module()
    runner = TorchRunner(make_module(), device="cuda", cuda_graph_batch_sizes=(4, 16))
    runner.warm_up((12,), batch_sizes=(1,))
    for rows in (1, 3, 4, 9, 16, 40):  # 40 is above every bucket: plain path
        x = batch(rows, seed=rows)
        np.testing.assert_allclose(runner(x), oracle(module, x), rtol=1e-4, atol=1e-5)
    # a replayed graph must not hand back a view later overwritten by the next replay
    a = runner(batch(3, seed=10))
    runner(batch(3, seed=11))
    np.testing.assert_allclose(a, oracle(module, batch(3, seed=10)), rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@cuda
def test_cuda_runner_is_thread_safe():
    module = make_module()
    runner = TorchRunner(make_module(), device="cuda", cuda_graph_batch_sizes=(8,))
    inputs = [batch(1 + i % 8, seed=i) for i in range(48)]
    with ThreadPoolExecutor(6) as pool:
        outs = list(pool.map(runner, inputs))
    for x, out in zip(inputs, outs):
        np.testing.assert_allclose(out, oracle(module, x), rtol=1e-4, atol=1e-5)
