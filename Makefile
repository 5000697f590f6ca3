# One-command set-up and checks. `make test` is what CI (.ci/run) runs.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv test lint window-size clean

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

window-size: venv
	$(BIN)/python -m platform.study studies/window_size.yaml

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
