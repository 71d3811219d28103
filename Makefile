# mlgate: `make run` serves the demo model; `make test` runs the suite. Both set up everything.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=

.PHONY: setup run test test-slow test-all bench bench-kernels loadtest clean help

help:
	@echo "make run        set up, then serve the demo model on http://127.0.0.1:8000 (Ctrl-C stops)"
	@echo "make test       set up, then run the default test suite"
	@echo "make test-slow  the tests marked slow"
	@echo "make bench      side-by-side serving benchmark (benchmarks/)"

setup: $(STAMP)

$(STAMP): pyproject.toml
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

test: setup
	$(BIN)/python -m pytest -m "not slow and not gpu" $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -m "slow and not gpu" $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest -m "not gpu" $(PYTEST_ARGS)

bench-kernels: setup
	$(BIN)/python benchmarks/bench_kernels.py

clean:
	rm -rf $(VENV) var .pytest_cache
