# Quick start: `make demo` (the whole story on the bundled mini model) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel of torch; set TORCH_INDEX=https://download.pytorch.org/whl/cpu where PyPI would give a CUDA build.
TORCH_INDEX ?=

.PHONY: demo test lint setup

$(BIN)/revival: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(BIN)/revival

setup: $(BIN)/revival

demo: setup
	$(BIN)/revival demo

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
