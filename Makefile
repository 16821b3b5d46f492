# Two commands matter: `make benchmark` (set up, run the benchmark) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PyPI's torch wheel for Linux is a CUDA build: what a GPU machine wants. On a machine whose pip
# has a local CPU wheel of this version (as here), pip takes that one. For a CPU-only machine
# elsewhere: make benchmark TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
PROFILE ?= auto
JOBS ?= auto
RUN ?= $(shell ls -td runs/*/ 2>/dev/null | head -1)

.PHONY: setup benchmark test lint dashboard report perf gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is needed"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

# quick on a CPU-only machine, standard with a GPU; PROFILE=full or PROFILE=my.yaml to choose
benchmark: setup
	$(VENV)/bin/suite benchmark --profile $(PROFILE) --jobs $(JOBS)

# optuna-dashboard / report on the newest run folder (or RUN=runs/NAME)
dashboard: setup
	$(VENV)/bin/suite dashboard $(RUN)

report: setup
	$(VENV)/bin/suite report $(RUN)

# the suite's overhead against a bare PyTorch loop (see README, Performance)
perf: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/suite perf

# the checks that need an NVIDIA GPU, into runs/gpu-check (see README, GPU check); exit 2 without one
gpu-check: setup
	@$(PY) -m suite.gpu_check

test: setup
	$(PY) -m pytest -n auto -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
