"""Example 2: handle a missing checkpoint with ``except tf.errors.NotFoundError``.

This is the tutorial's second example, rewritten for safeckpt. safeckpt raises
`CheckpointNotFoundError`, which subclasses `tf.errors.NotFoundError`. The tutorial's
``try/except tf.errors.NotFoundError`` therefore still catches it, and the error now carries
a ``.diagnosis``: the likely cause, the evidence, and what to do.

Run: python examples/error_handling.py [DIRECTORY]   (default: in a new temp dir)
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
    caught = 0
    print(f"Checkpoint directory: {directory}")

    print("\n-- 1. An empty directory, for a job that must resume (on_empty='raise')")
    model = Model()
    checkpoint = tf.train.Checkpoint(model=model)
    manager = safeckpt.SafeCheckpointManager(checkpoint, directory, max_to_keep=3, on_empty="raise")
    try:
        manager.restore(manager.latest_checkpoint)
    except tf.errors.NotFoundError as error:
        caught += 1
        print(f"  caught by `except tf.errors.NotFoundError`: {type(error).__name__}")
        print(
            f"  isinstance(error, safeckpt.CheckpointNotFoundError): "
            f"{isinstance(error, safeckpt.CheckpointNotFoundError)}"
        )
        print(f"  cause: {error.diagnosis.cause}")
        print("  diagnosis:")
        print(indent(error.diagnosis))

    print("\n-- 2. The same directory with the default on_empty='initialize' (TensorFlow's way)")
    trainer = safeckpt.SafeCheckpointManager(checkpoint, directory, max_to_keep=3)
    print(f"  {trainer.restore(trainer.latest_checkpoint)}")
    for value in (1.0, 2.0, 3.0):
        model.w.assign(tf.fill([4], value))
        print(f"  saved {trainer.save()} (w = {value})")

    print("\n-- 3. An explicit checkpoint that does not exist (a step that was never saved)")
    missing = os.path.join(directory, "ckpt-7")
    try:
        trainer.restore(missing)
    except tf.errors.NotFoundError as error:
        caught += 1
        print(f"  caught by `except tf.errors.NotFoundError`: {type(error).__name__}")
        print(f"  cause: {error.diagnosis.cause}")
        print("  diagnosis:")
        print(indent(error.diagnosis))
        # The diagnosis lists the checkpoints that could be used instead, newest first.
        newest = error.diagnosis.candidates[0].prefix
        report = trainer.restore(newest)
        print(f"  recovered: {report} (w = {model.w.numpy()[0]})")

    print(f"\n{caught} of 2 NotFoundErrors caught and diagnosed.")
    return 0 if caught == 2 and model.w.numpy()[0] == 3.0 else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = sys.argv[1]
    else:
        target = os.path.join(tempfile.mkdtemp(prefix="safeckpt-example2-"), "checkpoints")
    sys.exit(main(target))
