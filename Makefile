# All targets set themselves up on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TF_PIN ?= tensorflow-cpu==2.21.0
# TensorFlow's Keras 2 integration, for the multi-worker tests (its version tracks TF's minor
# version). Installed without dependencies: it requires the `tensorflow` distribution, which
# would be installed over tensorflow-cpu.
TF_KERAS_PIN ?= tf-keras==2.21.0
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: demo test lint typecheck unit stress bench matrix dist docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TF_PIN)" -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps "$(TF_KERAS_PIN)"
	touch $@

# The docs site's tools (mkdocs, mkdocs-material, mkdocstrings-python), pinned in the docs extra.
$(VENV)/.installed-docs: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet "$(TF_PIN)" -e ".[dev,docs]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py

lint: $(VENV)/.installed
	$(PY) -m ruff check safeckpt tests testing examples benchmarks stress noxfile.py
	$(PY) -m ruff format --check safeckpt tests testing examples benchmarks stress noxfile.py

typecheck: $(VENV)/.installed
	$(PY) -m mypy --strict safeckpt

unit: $(VENV)/.installed
	$(PY) -m pytest -q -m "not stress"

test: lint typecheck unit

# Long harnesses (not part of make test, which runs a few cases of each): kill -9 during saves,
# seeded corruption fuzzing, the one-rule fuzzer (state files, names, spellings, copies), hostile
# inputs against every entry point (canary tree, time and memory bounds), several processes on one
# directory, and every layout of TensorFlow's PreemptionCheckpointHandler with safeckpt next to
# plain TF. Each prints its figures and exits non-zero on any violation.
stress: $(VENV)/.installed
	$(PY) -m stress.crash --kills 200
	$(PY) -m stress.fuzz --cases 2000
	$(PY) -m stress.ranking --cases 2000
	$(PY) -m stress.hostile --cases 2000
	$(PY) -m stress.concurrency --seconds 60 --rounds 500
	$(PY) -m stress.keras --trials 40
	$(PY) -m pytest -q -m stress tests/integration/test_preemption.py \
		tests/integration/test_save_retry_gcs.py tests/integration/test_gcs_faults.py

# Side-by-side timings against plain tf.train.CheckpointManager; rewrites docs/benchmarks.md.
bench: $(VENV)/.installed
	$(PY) benchmarks/bench.py --output docs/benchmarks.md

# The test suite on each supported TensorFlow/Python pair (noxfile.py), each in its own
# virtualenv under .nox/; run before a release, figures in docs/compatibility.md.
# NOX_ARGS: e.g. -s "tests(tf2.19.1-py3.12)" -- -x
NOX_ARGS ?=
matrix: $(VENV)/.installed
	$(PY) -m nox $(NOX_ARGS)

# The sdist and wheel as users get them: build, twine check, check their contents, then
# install the wheel with the tensorflow-cpu extra into a fresh virtualenv outside the repo and
# run the tests from the unpacked sdist with its safeckpt/ removed, so that `import safeckpt`
# is the installed wheel (a module left out of the wheel, a missing py.typed or a test that
# imports from the checkout fails here). Also: `safeckpt --help`, `python -m safeckpt --version`
# and `safeckpt doctor` on a damaged directory, from a folder with no checkout in it.
DIST_PYTEST_ARGS ?=
dist: $(VENV)/.installed
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(PY) -m twine check --strict dist/*
	$(PY) -m zipfile -l dist/safeckpt-*.whl | awk '{print $$1}' > dist/.wheel-files
	grep -qx 'safeckpt/py.typed' dist/.wheel-files
	grep -qx 'safeckpt/__main__.py' dist/.wheel-files
	for f in $$(find safeckpt -name '*.py' -not -path '*/__pycache__/*'); do \
		grep -qx "$$f" dist/.wheel-files || { echo "wheel lacks $$f"; exit 1; }; done
	! grep -E '^(tests|testing|stress|examples|benchmarks|docs)/' dist/.wheel-files
	$(PY) -m tarfile -l dist/safeckpt-*.tar.gz | awk '{print $$1}' | sed 's|^[^/]*/||' > dist/.sdist-files
	for f in tests/conftest.py testing/__init__.py stress/__init__.py examples/demo.py docs/index.md Makefile \
		pyproject.toml README.md safeckpt/py.typed; do grep -qx "$$f" dist/.sdist-files \
		|| { echo "sdist lacks $$f"; exit 1; }; done
	rm dist/.wheel-files dist/.sdist-files
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; py="$$tmp/venv/bin/python"; \
	"$$py" -m pip install --quiet --upgrade pip; \
	"$$py" -m pip install --quiet "$(TF_PIN)" "$$(ls "$$PWD"/dist/safeckpt-*.whl)[tensorflow-cpu,dev]"; \
	"$$py" -m pip install --quiet --no-deps "$(TF_KERAS_PIN)"; \
	tar xzf dist/safeckpt-*.tar.gz -C "$$tmp"; src=$$(ls -d "$$tmp"/safeckpt-*/); \
	cd "$$tmp"; \
	"$$tmp/venv/bin/safeckpt" --help > /dev/null; \
	"$$py" -m safeckpt --version; \
	"$$py" -c 'import sys, tensorflow as tf; m = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), sys.argv[1], 3); [m.save() for _ in range(2)]; open(m.latest_checkpoint + ".data-00000-of-00001", "r+b").truncate(3)' "$$tmp/damaged"; \
	rc=0; "$$tmp/venv/bin/safeckpt" doctor "$$tmp/damaged" > "$$tmp/doctor.txt" || rc=$$?; \
	test "$$rc" = 1 && grep -q 'ckpt-2 is truncated' "$$tmp/doctor.txt" \
	|| { cat "$$tmp/doctor.txt"; echo "safeckpt doctor (exit $$rc) missed the truncated ckpt-2"; exit 1; }; \
	rm -rf "$$src/safeckpt"; cd "$$src"; \
	"$$py" -c 'import safeckpt, sys; assert "site-packages" in safeckpt.__file__, safeckpt.__file__; print("testing", safeckpt.__file__)'; \
	"$$py" -m pytest -q -p no:cacheprovider -m "not stress" $(DIST_PYTEST_ARGS)

# The documentation site (mkdocs.yml, docs/), built into site/; warnings and broken links fail.
# docs/api.md must have a `::: safeckpt.NAME` block for every name in safeckpt.__all__.
docs: $(VENV)/.installed-docs
	$(PY) -c 'import ast, pathlib, sys; tree = ast.parse(pathlib.Path("safeckpt/__init__.py").read_text()); names = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "__all__"); api = pathlib.Path("docs/api.md").read_text(); missing = [n for n in names if f"::: safeckpt.{n}\n" not in api]; sys.exit(f"docs/api.md lacks {missing}" if missing else 0)'
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .nox build dist site *.egg-info
