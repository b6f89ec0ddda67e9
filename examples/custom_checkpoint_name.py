"""Example 3: save under a custom ``checkpoint_name``, and load it again.

This is the tutorial's third example, rewritten for safeckpt. With
``checkpoint_name="my_model"`` the checkpoints are ``my_model-1``, ``my_model-2``, ... A job
that loads them should use the same name. If a loader forgets the name (and so uses the
default ``"ckpt"``), it still restores what the state file names, as TensorFlow does, and the
report notes the other name. Without the state file (only the checkpoint files were copied),
TensorFlow would quietly start from scratch; safeckpt raises `CheckpointNotFoundError` (a
`tf.errors.NotFoundError`) whose diagnosis names the checkpoints that are there and the
``checkpoint_name`` to use.

Run: python examples/custom_checkpoint_name.py [DIRECTORY]   (default: in a new temp dir)
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

import safeckpt


class Model(tf.Module):
    """A tiny model: one weight vector."""

    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable(tf.zeros([4]), name="w")


def indent(text: object, prefix: str = "    ") -> str:
    return prefix + str(text).replace("\n", "\n" + prefix)


def main(directory: str) -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="  [%(name)s] %(message)s")
    tf.get_logger().setLevel(logging.ERROR)
    print(f"Checkpoint directory: {directory}")

    print("\n-- Save with checkpoint_name='my_model'")
    model = Model()
    manager = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(model=model), directory, max_to_keep=2, checkpoint_name="my_model"
    )
    for value in (1.0, 2.0, 3.0):
        model.w.assign(tf.fill([4], value))
        print(f"  saved {manager.save()} (w = {value})")
    print(f"  files: {sorted(os.listdir(directory))}")

    print("\n-- Load with the same checkpoint_name")
    loaded = Model()
    loader = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(model=loaded), directory, max_to_keep=2, checkpoint_name="my_model"
    )
    report = loader.restore(loader.latest_checkpoint)
    print(f"  {report} (step {report.step}, w = {loaded.w.numpy()[0]})")

    print("\n-- A loader that forgot checkpoint_name (so it looks for 'ckpt-N')")
    follower = Model()
    wrong = safeckpt.SafeCheckpointManager(
        tf.train.Checkpoint(model=follower), directory, max_to_keep=2
    )
    followed = wrong.restore(wrong.latest_checkpoint)
    print(indent(followed, "  "))
    print(f"  w = {follower.w.numpy()[0]}: the state file names it, as in TF")

    print("\n-- The same loader on a copy without the state file")
    copy = directory.rstrip("/") + "-copy"
    tf.io.gfile.makedirs(copy)
    for name in tf.io.gfile.listdir(directory):
        if name.startswith("my_model-"):
            tf.io.gfile.copy(os.path.join(directory, name), os.path.join(copy, name))
    forgetful = Model()
    lost = safeckpt.SafeCheckpointManager(tf.train.Checkpoint(model=forgetful), copy, max_to_keep=2)
    try:
        lost.restore(lost.latest_checkpoint)
        print("  restored?! (unexpected)")
        return 1
    except tf.errors.NotFoundError as error:
        print(f"  caught by `except tf.errors.NotFoundError`: {type(error).__name__}")
        print(f"  cause: {error.diagnosis.cause}")
        print("  diagnosis:")
        print(indent(error.diagnosis))
    print(f"  the model was not touched: w = {forgetful.w.numpy()[0]}")

    print("\n-- safeckpt.diagnose() (like `safeckpt doctor`) finds the name by itself")
    print(indent(safeckpt.diagnose(directory), "  "))

    ok = (
        report.step == 3
        and loaded.w.numpy()[0] == 3.0
        and follower.w.numpy()[0] == 3.0
        and forgetful.w.numpy()[0] == 0.0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = sys.argv[1]
    else:
        target = os.path.join(tempfile.mkdtemp(prefix="safeckpt-example3-"), "checkpoints")
    sys.exit(main(target))
