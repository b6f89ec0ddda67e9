"""Checkpoints written with plain TensorFlow, shared by tests and harnesses.

`Trainee` (a weight vector and a step), `write_checkpoints` (plain `tf.train.CheckpointManager`
saves, value k in checkpoint k), a rotating trainer and a checkpoint whose restore lets that
trainer save first, another process that saved with safeckpt and is still running, and
TensorFlow's own manager signature.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf


class Trainee:
    """A tiny trainable state: one weight vector and a step counter."""

    def __init__(self) -> None:
        self.w = tf.Variable(tf.zeros([4]), name="w")
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        self.checkpoint = tf.train.Checkpoint(w=self.w, step=self.step)

    def set(self, value: float) -> None:
        """Put `value` in every weight and `int(value)` in the step."""
        self.w.assign(tf.fill([4], float(value)))
        self.step.assign(int(value))

    @property
    def value(self) -> float:
        """The first weight (the value last set)."""
        return float(self.w.numpy()[0])


def tf_manager_parameters() -> list[inspect.Parameter]:
    """`tf.train.CheckpointManager.__init__`'s parameters as of TF 2.20 (with ``self``).

    TF 2.16-2.19 lack ``last_checkpoint_step`` (added in 2.20); safeckpt takes it on every
    version, in the same place, so it is appended where TF lacks it.
    """
    params = list(inspect.signature(tf.train.CheckpointManager.__init__).parameters.values())
    if "last_checkpoint_step" not in {p.name for p in params}:
        params.append(
            inspect.Parameter(
                "last_checkpoint_step", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None
            )
        )
    return params


def write_checkpoints(directory: Path, count: int, name: str = "ckpt") -> list[str]:
    """Save `count` checkpoints with plain TF; checkpoint k holds the value k."""
    t = Trainee()
    manager = tf.train.CheckpointManager(
        t.checkpoint, str(directory), max_to_keep=None, checkpoint_name=name
    )
    paths = []
    for k in range(1, count + 1):
        t.set(k)
        paths.append(manager.save())
    return paths


class RotatedWhileRead(tf.train.Checkpoint):  # type: ignore[misc]
    """A `tf.train.Checkpoint` whose restore lets a trainer save first.

    That is another process's rotation deleting what is being read, at that exact moment.

    The first `times` restores of a path run `saves` real saves of `trainer` (a plain TF
    manager, ``max_to_keep=2``, value k in ckpt-k) before TensorFlow reads the path.
    """

    def __init__(self, trainer: tf.train.CheckpointManager, saves: int, times: int, **kw: object):
        super().__init__(**kw)
        self._trainer, self._saves, self._times = trainer, saves, times

    def restore(self, save_path: str | None, options: object = None) -> object:
        """Let the trainer save (the first `times` calls with a path), then restore."""
        if save_path is not None and self._times > 0:
            self._times -= 1
            for _ in range(self._saves):
                step = int(self._trainer.checkpoint.save_counter.numpy()) + 1
                self._trainer.checkpoint.v.assign(float(step))
                self._trainer.save()
        return super().restore(save_path, options=options)


def rotating_trainer(directory: Path, saves: int) -> tf.train.CheckpointManager:
    """A plain TF manager (``max_to_keep=2``) that saved ckpt-1..`saves` (value k in ckpt-k)."""
    checkpoint = tf.train.Checkpoint(v=tf.Variable(0.0))
    manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=2)
    for step in range(1, saves + 1):
        checkpoint.v.assign(float(step))
        manager.save()
    return manager


_WRITER = """
import sys
import tensorflow as tf
import safeckpt
v = tf.Variable(7.0)
manager = safeckpt.SafeCheckpointManager(tf.train.Checkpoint(v=v), sys.argv[1], max_to_keep=3)
print(manager.save(), flush=True)
sys.stdin.read()  # hold on until the test is done with this writer
"""


@contextlib.contextmanager
def other_writer(directory: Path) -> Iterator[str]:
    """A separate process that saved into `directory` with safeckpt and is still running.

    Yields the path it saved; the process ends when the block exits.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        saved = proc.stdout.readline().strip()
        assert saved, f"the other writer did not save (exit code {proc.poll()})"
        yield saved
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
