#!/usr/bin/env bash
# The GPU machine check, Ray-free: runner tests (CUDA, autocast, CUDA graphs), the runner
# benchmark and the numba kernels tests. Run from the repo root with OUT set; wheels for
# packages the GPU image lacks (pydantic, httptools) in .whl/ (see README: GPU).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1
nvidia-smi -L; python3 -c "import torch, numba, numpy; print('torch', torch.__version__, 'numba', numba.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name(0))"
echo "=== runner tests (gpu marked and all) ==="
timeout 240 python3 -m pytest -p no:cacheprovider -q tests/unit/test_runner.py -o addopts="--strict-markers -ra" 2>&1 | tail -15 | tee $OUT/runner_tests.txt
echo "=== runner benchmark ==="
timeout 270 python3 benchmarks/bench_runner_gpu.py --out $OUT 2>&1 | tail -80 | tee $OUT/bench_runner.txt
echo "=== kernels tests under numba on this machine ==="
timeout 150 python3 -m pytest -p no:cacheprovider -q -x tests/unit/kernels -o addopts="--strict-markers -ra" 2>&1 | tail -6 | tee $OUT/kernels_tests.txt
