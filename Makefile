# All targets set themselves up on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TF_PIN ?= tensorflow-cpu==2.21.0
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: demo test lint typecheck unit clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TF_PIN)" -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py

lint: $(VENV)/.installed
	$(PY) -m ruff check safeckpt tests examples
	$(PY) -m ruff format --check safeckpt tests examples

typecheck: $(VENV)/.installed
	$(PY) -m mypy --strict safeckpt

unit: $(VENV)/.installed
	$(PY) -m pytest -q -m "not stress"

test: lint typecheck unit

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info
