# mlgate: `make run` serves the demo model; `make test` runs the suite. Both set up everything.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=

.PHONY: setup run lint fuzz test test-clock test-slow test-all bench bench-kernels loadtest clean help

help:
	@echo "make run        set up, then serve the demo model on http://127.0.0.1:8000 (Ctrl-C stops)"
	@echo "make test       set up, then run the default test suite"
	@echo "make lint       ruff on the whole tree (configuration: [tool.ruff] in pyproject.toml)"
	@echo "make fuzz       the HTTP + codec fuzz target for FUZZ_SECONDS (default 300), corpus in var/fuzz-corpus"
	@echo "make test-clock the unit tests with the process clock moved far away (CLOCK_OFFSETS='+400d -30d')"
	@echo "make test-slow  the tests marked slow"
	@echo "make bench      side-by-side serving benchmark (benchmarks/); BENCH_ARGS='--duration-s 5 --record'"
	@echo "make loadtest   locust against a running mlgate: HOST, SCENARIO, DURATION, SLO_P99_MS, USERS, MODEL, TOKEN_FILE"
	@echo "make grpc-stubs regenerate the checked-in gRPC stubs (serving/grpc/generated) from ../shared/specs/triton-grpc"

setup: $(STAMP)

$(STAMP): pyproject.toml $(wildcard */__init__.py)  # a new package needs the editable install redone
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  echo "GPU found: installing torch==$(TORCH_VERSION) (CUDA build)"; \
	  $(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)"; \
	else \
	  echo "no GPU: installing the CPU build of torch==$(TORCH_VERSION)"; \
	  $(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)+cpu" \
	    || $(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)" --index-url https://download.pytorch.org/whl/cpu; \
	fi
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: setup
	exec $(BIN)/mlgate up

lint: setup
	$(BIN)/ruff check .

# Coverage-guided fuzzing (atheris) of the HTTP connection and the wire codecs; the corpus grows
# in var/fuzz-corpus across runs. `make test` runs a short seeded run of the same target.
FUZZ_SECONDS ?= 300
fuzz: setup
	mkdir -p var/fuzz-corpus
	$(BIN)/python -m tests.fuzz.fuzz_protocol -max_total_time=$(FUZZ_SECONDS) -max_len=4096 var/fuzz-corpus

test: setup deps-browser deps-alerting
	$(BIN)/python -m pytest -m "not slow and not gpu" $(PYTEST_ARGS)

# The unit tests with the process's calendar moved (issue 13): no test may depend on the date
# it runs on. libfaketime is preloaded into pytest and every process it starts; only the wall
# clock moves, the monotonic clock that times waits and deadlines is left alone (durations are
# not dates). The library comes from PyPI's libfaketime package (a dev dependency, so `setup`
# installs it): Debian's faketime 0.9.10 either hangs Python's timed waits (monotonic faked) or
# fails every time.sleep with EINVAL (monotonic kept: libfaketime issue 426, fixed later).
CLOCK_OFFSETS ?= +400d -30d
FAKETIME_LIB = $$($(BIN)/python -c "import importlib.util as u, pathlib as p; \
  print(p.Path(u.find_spec('libfaketime').origin).parent / 'vendor/libfaketime/src/libfaketime.so.1')")
test-clock: setup deps-browser
	@set -e; lib="$(FAKETIME_LIB)"; test -f "$$lib"; \
	for offset in $(CLOCK_OFFSETS); do \
	  export LD_PRELOAD="$$lib" FAKETIME="$$offset" FAKETIME_DONT_FAKE_MONOTONIC=1; \
	  moved_s=$$($(BIN)/python -c "import time; print(int(time.time()))"); \
	  skew_s=$$(( moved_s - $$(env -u LD_PRELOAD date +%s) )); \
	  echo "== unit tests with the clock at $$offset: $$(env -u LD_PRELOAD date -u -d @$$moved_s +%FT%TZ)"; \
	  test "$${skew_s#-}" -gt 86400 || { echo "test-clock: the process clock did not move"; exit 1; }; \
	  $(BIN)/python -m pytest tests/unit -m "not slow and not gpu" -p no:cacheprovider -q $(PYTEST_ARGS); \
	done

test-slow: setup deps-browser
	$(BIN)/python -m pytest -m "slow and not gpu" $(PYTEST_ARGS)

test-all: setup deps-browser deps-alerting
	$(BIN)/python -m pytest -m "not gpu" $(PYTEST_ARGS)

# Serving benchmark: mlgate vs plain Ray Serve, TorchServe, PyTriton and a bare uvicorn
# reference, driven by wrk (Debian's package, installed here when missing). The peers
# install into their own venvs under benchmarks/out/venvs on first use.
BENCH_ARGS ?=
bench: setup
	$(BIN)/python -m pip install -q -e ".[bench]"
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk || { apt-get update -qq && apt-get install -y wrk; }
	$(BIN)/python -m benchmarks.serving.run $(BENCH_ARGS)

# Load test against a running mlgate (e.g. `make run` in another shell). Scenarios:
# v2json, v2binary, plain, mixed (BAD_SHARE bad inputs expect 400), ramp (past capacity).
# Exits non-zero when unexpected failures exceed MAX_FAIL_RATIO or admitted p99 > SLO_P99_MS.
HOST ?= http://127.0.0.1:8000
SCENARIO ?= mixed
DURATION ?= $(if $(filter rollout,$(SCENARIO)),300s,30s)
SLO_P99_MS ?= 200
USERS ?= 16
MODEL ?= demo
# the key make loadtest sends (mlgate up creates it; MLGATE_TOKEN works too)
TOKEN_FILE ?= var/auth/admin.key
BAD_SHARE ?= 0.1
MAX_FAIL_RATIO ?= 0.01
LOCUST_ARGS ?=
LOADTEST_DIR := benchmarks/out/loadtest
loadtest: setup
	mkdir -p $(LOADTEST_DIR)
	$(BIN)/locust -f benchmarks/locustfile.py --headless -H $(HOST) -u $(USERS) -r $(USERS) -t $(DURATION) \
	  --stop-timeout 5 --scenario $(SCENARIO) --model $(MODEL) --bad-share $(BAD_SHARE) \
	  --slo-p99-ms $(SLO_P99_MS) --max-fail-ratio $(MAX_FAIL_RATIO) --only-summary \
	  --csv $(LOADTEST_DIR)/$(SCENARIO) --html $(LOADTEST_DIR)/$(SCENARIO).html \
	  $(if $(wildcard $(TOKEN_FILE)),--token-file $(TOKEN_FILE)) $(LOCUST_ARGS)

bench-kernels: setup
	$(BIN)/python benchmarks/bench_kernels.py

clean:
	rm -rf $(VENV) var .pytest_cache

# Headless chromium for the drift-report browser tests (Debian; as root). The tests also try
# this themselves and skip, saying why, only when it cannot be installed.
.PHONY: deps-browser deps-alerting bench-monitor
deps-browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; } \
	  || echo "deps-browser: could not install chromium; the report browser tests will skip"

bench-monitor: setup
	$(BIN)/python benchmarks/bench_monitor.py

# Alertmanager and promtool for the alert-delivery e2e test and the rules check (Debian; as
# root). The tests also install them on demand and skip, saying why, only when they cannot.
deps-alerting:
	@{ command -v prometheus-alertmanager >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || { \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus-alertmanager prometheus \
	    >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends prometheus-alertmanager prometheus; }; } \
	  || echo "deps-alerting: could not install Alertmanager/promtool; their tests will skip"

# The gRPC stubs of Triton's v2 service (serving/grpc/generated, checked in): regenerate them after
# a change of ../shared/specs/triton-grpc or of grpcio-tools. The imports are made absolute, as
# tritonclient's own stubs are, so both register the same descriptors in one process.
TRITON_PROTO ?= ../shared/specs/triton-grpc
GRPC_STUBS := serving/grpc/generated
.PHONY: grpc-stubs
grpc-stubs: setup
	$(BIN)/python -m grpc_tools.protoc -I $(TRITON_PROTO) --python_out=$(GRPC_STUBS) \
	  --grpc_python_out=$(GRPC_STUBS) grpc_service.proto model_config.proto
	sed -i 's/^import \(grpc_service_pb2\|model_config_pb2\) as/from serving.grpc.generated import \1 as/' \
	  $(GRPC_STUBS)/*_pb2*.py
	rm -f $(GRPC_STUBS)/model_config_pb2_grpc.py
