# Two commands do all set-up on a machine that has only Python, pip and the package registries:
#   make demo   - install, augment the bundled MovieLens-100K offline, write a RecBole dataset
#   make test   - install with test extras, run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CI installs the CPU wheel of torch; install any CUDA torch yourself and `make` keeps it.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "setuptools<81" wheel

$(STAMP): $(BIN)/python setup.cfg pyproject.toml constraints.txt
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/llmaug augment --dataset ml-100k --out runs/ml-100k

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py

clean:
	rm -rf runs saved log log_tensorboard
