"""Run every examples/*.py as a user would, and check the lines that prove its behaviour.

The scripts start together (each is a separate TensorFlow process, mostly import time), so
the whole module takes about as long as the slowest example.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 300  # seconds per script; they take seconds, but CI machines can be loaded

# Regular expressions that must all match the script's stdout (re.MULTILINE).
EXPECTED: dict[str, list[str]] = {
    "saving_and_loading.py": [
        r"before training: Initialized from scratch$",
        r"epoch 4: saved .*/ckpt-4$",
        re.escape("kept (max_to_keep=3): ['ckpt-2', 'ckpt-3', 'ckpt-4']"),
        r"^  Restored .*/ckpt-4$",
        r"outcome: restored, step: 4$",
        r"weights identical to the trained model: True$",
        r"predictions identical: True$",
        r"optimizer steps restored: 16$",
    ],
    "error_handling.py": [
        r"caught by `except tf\.errors\.NotFoundError`: CheckpointNotFoundError(.|\n)*"
        r"caught by `except tf\.errors\.NotFoundError`: CheckpointNotFoundError",
        r"isinstance\(error, safeckpt\.CheckpointNotFoundError\): True$",
        r"cause: no_checkpoints$",
        r"There are no checkpoints in this directory\.",
        r"cause: step_not_found$",
        r"There is no checkpoint ckpt-7",
        r"recovered: Restored .*/ckpt-3 \(w = 3\.0\)$",
        r"^2 of 2 NotFoundErrors caught and diagnosed\.$",
    ],
    "custom_checkpoint_name.py": [
        r"saved .*/my_model-3 \(w = 3\.0\)$",
        r"Restored .*/my_model-3 \(step 3, w = 3\.0\)$",
        r"note: No checkpoint is named 'ckpt'",
        r"the state file names it, as in TF$",
        r"caught by `except tf\.errors\.NotFoundError`: CheckpointNotFoundError$",
        r"cause: name_mismatch$",
        r"Use checkpoint_name='my_model'",
        r"the model was not touched: w = 0\.0$",
    ],
    "resume_training.py": [
        r"step 15: loss [\d.]+, saved ckpt-15$",
        r"Crash: ckpt-15\.data-00000-of-00001 truncated",
        r"plain TensorFlow: \w+",
        r"Restored .*/ckpt-10 \(fell back past 1 unusable checkpoint\)$",
        r"skipped .*/ckpt-15: ckpt-15 is truncated",
        r"outcome: fell_back; restored step 10$",
        r"resuming at step 10$",
        re.escape("checkpoints now: ['ckpt-10', 'ckpt-15', 'ckpt-20']"),
        r"Restored .*/ckpt-20 \(outcome: restored, step 20\)$",
        r"outcome: initialized; the damaged checkpoints stay on disk",
    ],
    "keras_callbacks_resume.py": [
        r"^  crashed after epoch 3; epochs run: \[0, 1, 2, 3\]$",
        re.escape("backups: ['backup-3', 'backup-4']"),
        r"^  epochs run: \[4, 5\]; EarlyStopping stopped at epoch 5$",
        r"EarlyStopping stopped at epoch 5 / 5$",
        r"^The resumed fit did what the uninterrupted fit did\.$",
    ],
    "keras_fit_resume.py": [
        r"^first fit: preempted after epoch 3$",
        re.escape("backups: ['backup-3', 'backup-4']"),
        r"^crash: backup-4\.data-00000-of-00001 truncated$",
        r"Restored .*/backup-3 \(fell back past 1 unusable checkpoint\)$",
        r"skipped .*/backup-4: backup-4 is truncated",
        re.escape("second fit ran epochs [3, 4, 5]"),
        re.escape("left in backup_dir: ['notes.txt']"),
        re.escape("a new fit starts fresh: epochs [0, 1]"),
        re.escape("delete_checkpoint=False keeps: ['backup-1', 'backup-2']"),
    ],
    "demo.py": [
        r"epoch 3: saved .*/ckpt-3$",
        r"\[truncated_data\]",
        r"^  FAIL .*/ckpt-3: ckpt-3 is truncated",
        r"outcome: fell_back; step 2; weights equal epoch 2's: True$",
        r"did you mean .*/runs/exp1/checkpoints ",
        r"caught by `except tf\.errors\.NotFoundError`: CheckpointNotFoundError$",
        r"\[no_checkpoints\]",
        r"plain TensorFlow: restore\(\) raised nothing; weights unchanged: True$",
        r"\[object_graph_mismatch\]",
        r"checkpoint's `model` looks like the program's `net`",
        r"^All demo checks passed\.$",
    ],
}


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    target: Path

    def wait(self) -> tuple[int, str, str]:
        try:
            code = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return code, self.stdout.read_text(), self.stderr.read_text()


class Runs:
    """Example processes, started on demand, each in its own temporary directory."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self._env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.started: dict[str, Run] = {}

    def start(self, name: str) -> Run:
        if name not in self.started:
            cwd = self._factory.mktemp(name.removesuffix(".py"))
            # Examples take a checkpoint directory; the demo a working directory.
            target = cwd / ("work" if name == "demo.py" else "checkpoints")
            out, err = cwd / "stdout.txt", cwd / "stderr.txt"
            with out.open("wb") as stdout, err.open("wb") as stderr:
                process = subprocess.Popen(
                    [sys.executable, str(EXAMPLES / name), str(target)],
                    cwd=cwd,
                    env=self._env,
                    stdout=stdout,
                    stderr=stderr,
                )
            self.started[name] = Run(process, out, err, target)
        return self.started[name]

    def __getitem__(self, name: str) -> Run:
        return self.start(name)


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runs]:
    """Start every example the selected tests need at once; each test waits for its own."""
    runs = Runs(tmp_path_factory)
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and item.name.startswith("test_example["):
            runs.start(callspec.params["name"])
    yield runs
    for run in runs.started.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def test_every_example_has_expectations() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example(name: str, runs: Runs) -> None:
    code, out, err = runs[name].wait()
    assert code == 0, f"{name} exited with {code}\n--- stdout\n{out}\n--- stderr\n{err}"
    assert "Traceback" not in out + err, err
    missing = [p for p in EXPECTED[name] if not re.search(p, out, re.MULTILINE)]
    assert not missing, f"{name}: no match for {missing}\n--- stdout\n{out}"
    # The script worked in the directory it was given, not somewhere else.
    assert str(runs[name].target) in out
    # Checkpoints were written there (a completed Keras fit deletes its backups, not the
    # weights its ModelCheckpoint saved).
    assert any(runs[name].target.rglob("*.index")) or any(runs[name].target.rglob("*.weights.h5"))


def test_resume_example_continues_where_it_fell_back(runs: Runs) -> None:
    """Training resumed from step 10 reproduces the steps lost to the crash exactly."""
    code, out, _ = runs["resume_training.py"].wait()
    assert code == 0
    losses = re.findall(r"step 15: loss ([\d.]+), saved ckpt-15", out)
    assert len(losses) == 2  # before the crash, and again after resuming from step 10
    assert losses[0] == losses[1]
