# One-command set-up and checks. `make test` is what CI (.ci/run) runs.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv test test-fast lint window-size clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

lint: venv
	$(BIN)/ruff check .

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# The fast tier: every test that starts no study, server or browser (tests/conftest.py refuses one that does)
test-fast: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow"

window-size: venv
	$(BIN)/python -m platform.study studies/window_size.yaml

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
