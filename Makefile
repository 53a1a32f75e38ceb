# Thin wrappers: every target works on a fresh clone (it creates what it needs).
SHELL := /bin/bash
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint typecheck unit controlplane demo bench crds clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found; install Python 3.11 or run 'make PY=python3 ...'" >&2; exit 2; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

controlplane: $(STAMP)
	bash hack/control-plane.sh build

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The whole suite: lint, types, layering, then every test (the real control plane included).
test: setup controlplane lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup controlplane
	$(BIN)/python hack/demo.py

bench: setup controlplane
	$(BIN)/python benchmarks/run_all.py

crds: setup
	$(BIN)/python -m budai_operator.crdgen

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
