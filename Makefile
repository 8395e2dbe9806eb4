# hwnas developer entry points. `make demo` and `make test` are the two commands a fresh machine needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# torch must be installed explicitly before anything that depends on it, or pip pulls a multi-GB CUDA build.
# On a machine without a local CPU wheel, use: make TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=
# The suite runs on 2 pytest-xdist workers, a test file per worker at a time (most tests wait on agents and
# subprocesses); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

.PHONY: demo test test-long lint protos bench clean

$(BIN)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0 $(TORCH_PIP_ARGS)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/hwnas demo --out demo-output

test: $(BIN)/.installed
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The full-length forms of the tests marked slow (the default suite runs them short).
test-long: $(BIN)/.installed
	HWNAS_LONG=1 $(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile

protos: $(BIN)/.installed
	$(BIN)/python -m hwnas.protos.generate

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.fabric
	$(BIN)/python -m benchmarks.graph_export
	$(BIN)/python -m benchmarks.campaign
	$(BIN)/python -m benchmarks.protocols
	$(BIN)/python -m benchmarks.predictors

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
