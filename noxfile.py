"""The compatibility matrix (``make matrix``): the test suite on each supported TF/Python pair.

Each session gets its own virtualenv with ``tensorflow-cpu`` pinned, the Keras that this
TensorFlow pulls in, the ``tf-keras`` of its minor version, and safeckpt installed from this
checkout with its ``dev`` extra; then it runs ``pytest -m "not stress"`` (what ``make unit``
runs). Results go in docs/compatibility.md.

The interpreters are looked up on ``PATH`` as ``python3.X``; pyenv's installed versions
(``$PYENV_ROOT/versions/3.X.*``) are put in front of its shims, which only work for the
versions selected with ``pyenv global``/``pyenv local``. A missing interpreter is an error,
not a skip.

    nox --list                                 # the sessions
    nox                                        # all of them (make matrix)
    nox -s "tests(tf2.19.1-py3.12)" -- -x -k rule  # one pair; extra pytest arguments after --
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

#: (Python, tensorflow-cpu): the oldest supported pair, the last TF without
#: ``last_checkpoint_step``, and the newest.
MATRIX = [
    ("3.10", "2.16.2"),
    ("3.12", "2.19.1"),
    ("3.13", "2.21.0"),
]

nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False


def _put_pyenv_versions_on_path() -> None:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    bins = []
    for python, _ in MATRIX:
        found = sorted(
            root.glob(f"{python}.*/bin"),
            key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()],
        )
        if found:
            bins.append(str(found[-1]))  # the newest patch release
    os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])


_put_pyenv_versions_on_path()


@nox.session
@nox.parametrize(
    ("python", "tensorflow"),
    MATRIX,
    ids=[f"tf{tf}-py{py}" for py, tf in MATRIX],
)
def tests(session: nox.Session, tensorflow: str) -> None:
    """Install safeckpt with tensorflow-cpu==TENSORFLOW and run pytest -m "not stress"."""
    session.install(f"tensorflow-cpu=={tensorflow}", ".[dev]")
    # TensorFlow's Keras 2 (multi-worker tests), the release of this TF's minor version, without
    # its dependency on the `tensorflow` distribution (tensorflow-cpu is installed).
    minor = ".".join(tensorflow.split(".")[:2])
    session.install("--no-deps", f"tf-keras~={minor}.0")
    session.run(
        "python",
        "-c",
        "import sys, tensorflow as tf, keras, numpy;"
        "print('python', sys.version.split()[0], '| tensorflow', tf.__version__,"
        " '| keras', keras.__version__, '| numpy', numpy.__version__)",
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not stress",
        *session.posargs,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"},
    )
