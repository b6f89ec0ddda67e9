"""The command line reads local directories without importing TensorFlow (issue 24).

Each command runs as ``python -X importtime -m safeckpt ...`` in a child process, on healthy
and damaged directories (so that error paths run too), and the child's import log must not
name ``tensorflow``. The oracle is the interpreter's own import log; that the detector works
is checked on a command that does import TensorFlow (a gs:// path).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testing.checkpoints import write_checkpoints


def _imports_of(args: list[str], cwd: Path) -> tuple[int, set[str], str]:
    """Run ``python -X importtime -m safeckpt ARGS``; its exit code, imported modules, stdout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "safeckpt", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )
    modules = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return proc.returncode, modules, proc.stdout


def _flip_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A healthy directory and directories damaged the ways the world damages them."""
    root = tmp_path_factory.mktemp("cli-no-tf")
    good = root / "good"
    good.mkdir()
    write_checkpoints(good, 3)
    found: dict[str, Path] = {"good": good}

    def copy(name: str) -> Path:
        found[name] = root / name
        shutil.copytree(good, found[name])
        return found[name]

    _flip_byte(next(copy("flipped").glob("ckpt-3.data-*")))
    next(copy("no_shard").glob("ckpt-3.data-*")).unlink()
    index = copy("cut_index") / "ckpt-3.index"
    index.write_bytes(index.read_bytes()[:-20])
    (copy("bad_state") / "checkpoint").write_bytes(b"\x00\xff not a state file")
    (copy("no_state") / "checkpoint").unlink()
    empty = root / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no checkpoints here\n")
    found["empty"] = empty
    found["missing"] = root / "does-not-exist"
    return found


def _copy(source: Path, target: Path) -> Path:
    if source.exists():
        shutil.copytree(source, target)
    return target


def _commands(d: dict[str, Path]) -> list[list[str]]:
    """Every command, on every directory, in its text and JSON forms."""
    runs: list[list[str]] = []
    for name, path in d.items():
        p = str(path)
        runs += [
            ["doctor", p],
            ["doctor", p, "--deep", "--json"],
            ["ls", p],
            ["ls", p, "--json"],
            ["verify", p, "--deep"],
            ["verify", p + "/ckpt-3", "--json"],
            ["inspect", p + "/ckpt-3"],
            ["inspect", p, "--json"],
            ["diff", p + "/ckpt-1", p + "/ckpt-3"],
            ["repair", p, "--dry-run"],
        ]
        if name != "good":
            runs.append(["repair", p, "--json"])
    return runs


_RUN_ALL = """
import json, runpy, sys
results = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["safeckpt", *args]
    try:
        runpy.run_module("safeckpt", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code
    results.append([" ".join(args), code, "tensorflow" in sys.modules])
with open(OUT, "w") as out:
    json.dump(results, out)
"""


@pytest.mark.slow
def test_no_command_imports_tensorflow_on_a_local_directory(
    dirs: dict[str, Path], tmp_path: Path
) -> None:
    # One child runs every command as `python -m safeckpt` does (runpy of safeckpt.__main__),
    # and looks at sys.modules after each. On copies: `repair` writes.
    dirs = {name: _copy(path, tmp_path / name) for name, path in dirs.items()}
    out = tmp_path / "results.json"
    code = _RUN_ALL.replace("OUT", repr(str(out)))
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(_commands(dirs))],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert len(results) == len(_commands(dirs))
    imported = [shown for shown, _, tf_loaded in results if tf_loaded]
    assert imported == [], f"TensorFlow was imported by: safeckpt {imported[0]}"
    exits = {shown: exit_code for shown, exit_code, _ in results}
    # The runs did work: healthy directories pass, damaged ones are reported.
    good, flipped = dirs["good"], dirs["flipped"]
    assert exits[f"doctor {good}"] == 0
    assert exits[f"doctor {flipped} --deep --json"] == 1
    assert exits[f"verify {flipped} --deep"] == 1
    assert exits[f"inspect {flipped}/ckpt-3"] == 1
    assert exits[f"doctor {dirs['no_shard']}"] == 1
    assert exits[f"ls {dirs['missing']}"] == 1
    assert exits[f"repair {dirs['bad_state']} --json"] == 0  # rewritten from the checkpoints


@pytest.mark.parametrize("damage", ["good", "flipped"])
def test_the_whole_process_never_imports_tensorflow(
    dirs: dict[str, Path], tmp_path: Path, damage: str
) -> None:
    # The interpreter's own import log of the console entry point, start to exit.
    code, modules, out = _imports_of(["doctor", str(dirs[damage]), "--deep"], tmp_path)
    assert "safeckpt._cli.main" in modules  # the log is read right
    assert "tensorflow" not in modules
    assert code == (0 if damage == "good" else 1), out


def test_the_detector_sees_tensorflow_when_it_is_imported(tmp_path: Path) -> None:
    # A gs:// path needs TensorFlow's filesystem: the same log must name it.
    code, modules, _ = _imports_of(["ls", "gs://no-such-bucket-safeckpt/x"], tmp_path)
    assert "tensorflow" in modules
    assert code != 0


def test_python_api_imports_tensorflow_only_for_its_names(tmp_path: Path) -> None:
    code = (
        "import sys, safeckpt\n"
        "assert 'tensorflow' not in sys.modules\n"
        "d = safeckpt.diagnose(sys.argv[1])\n"
        "assert 'tensorflow' not in sys.modules, 'diagnose'\n"
        "assert {'SafeCheckpointManager', 'RestoreError', 'diagnose'} <= set(dir(safeckpt))\n"
        "from safeckpt import SafeCheckpointManager\n"
        "import tensorflow as tf\n"
        "assert issubclass(SafeCheckpointManager, tf.train.CheckpointManager)\n"
        "assert issubclass(safeckpt.CheckpointNotFoundError, tf.errors.NotFoundError)\n"
        "print(d.cause.value)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "no_checkpoints"
