# Thin wrappers: every target works on a fresh clone (it creates what it needs).
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# The slowest tests are listed at the end of every run (CI logs show where the time goes).
PYTEST_ARGS ?= --durations=15
STAMP := $(VENV)/.installed

.PHONY: setup test lint typecheck unit controlplane engines demo bench crds clean

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "error: Python 3.11+ is needed (found '$(PY)'); install it or run 'make PY=/path/to/python3.11 ...'" >&2; exit 2; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

controlplane: $(STAMP)
	bash hack/control-plane.sh build

# Argo CD's Lua engine and kstatus, the judges of our status (tests/fixtures/engines.py).
engines:
	bash hack/engines.sh build

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The whole suite: lint, types, layering, then every test (the real control plane included).
test: setup controlplane engines lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup controlplane
	$(BIN)/python hack/demo.py

bench: setup controlplane
	$(BIN)/python benchmarks/run_all.py

crds: setup
	$(BIN)/python -m budai_operator.crdgen

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
