# All targets set themselves up on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TF_PIN ?= tensorflow-cpu==2.21.0
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: demo test lint typecheck unit stress bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TF_PIN)" -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py

lint: $(VENV)/.installed
	$(PY) -m ruff check safeckpt tests examples benchmarks stress
	$(PY) -m ruff format --check safeckpt tests examples benchmarks stress

typecheck: $(VENV)/.installed
	$(PY) -m mypy --strict safeckpt

unit: $(VENV)/.installed
	$(PY) -m pytest -q -m "not stress"

test: lint typecheck unit

# Long harnesses (not part of make test, which runs a few cases of each): kill -9 during saves,
# seeded corruption fuzzing, and the one-rule fuzzer (state files, names, spellings, copies). Each prints its figures and exits non-zero on any violation.
stress: $(VENV)/.installed
	$(PY) -m stress.crash --kills 200
	$(PY) -m stress.fuzz --cases 2000
	$(PY) -m stress.ranking --cases 2000

# Side-by-side timings against plain tf.train.CheckpointManager; rewrites docs/benchmarks.md.
bench: $(VENV)/.installed
	$(PY) benchmarks/bench.py --output docs/benchmarks.md

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info
