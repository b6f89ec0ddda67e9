"""Resume training after a crash that damaged the newest checkpoint.

A training job saves every 5 steps. Then a crash (a full disk, a killed copy, a preempted
node) leaves the newest checkpoint's data shard half-written. Plain TensorFlow fails
on that checkpoint. The restarted job uses ``fallback=("previous_valid", "fresh_init")``:
it skips the damaged checkpoint, resumes from the previous one, and prints the
`RestoreReport` that explains why. It starts from scratch only when no checkpoint can be
restored at all.

Run: python examples/resume_training.py [DIRECTORY]   (default: in a new temp dir)
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import safeckpt

SAVE_EVERY = 5
FALLBACK = ("previous_valid", "fresh_init")


def build() -> tuple[keras.Model, tf.train.Checkpoint]:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model, tf.train.Checkpoint(model=model, optimizer=model.optimizer)


def train(model: keras.Model, manager: safeckpt.SafeCheckpointManager, until: int) -> None:
    """Train one batch per step up to step `until`, saving every SAVE_EVERY steps."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)), rng.normal(size=(16, 1))
    # The optimizer counts the steps, and the checkpoint stores it with the weights.
    while (step := int(model.optimizer.iterations)) < until:
        # Keras < 3.15 train_on_batch reports the mean loss since compile(), not this batch's.
        model.reset_metrics()
        loss = model.train_on_batch(x, y)
        if (step + 1) % SAVE_EVERY == 0:
            path = manager.save(checkpoint_number=step + 1)
            print(f"  step {step + 1}: loss {float(loss):.4f}, saved {os.path.basename(path)}")


def main(directory: str) -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="  [%(name)s] %(message)s")
    tf.get_logger().setLevel(logging.ERROR)
    print(f"Checkpoint directory: {directory}")

    print("\n-- First run: train to step 15")
    model, checkpoint = build()
    manager = safeckpt.SafeCheckpointManager(checkpoint, directory, 3, fallback=FALLBACK)
    print(f"  {manager.restore()}")
    train(model, manager, until=15)

    shard = manager.latest_checkpoint + ".data-00000-of-00001"
    size = os.path.getsize(shard)
    with open(shard, "r+b") as handle:
        handle.truncate(size // 2)
    print(f"\n-- Crash: {os.path.basename(shard)} truncated from {size} to {size // 2} bytes")

    _, plain = build()
    try:
        plain.restore(tf.train.latest_checkpoint(directory))
        print("  plain TensorFlow restored it?!")
    except Exception as error:
        # An IndexError, not even a tf.errors.OpError: `except OpError` would miss it.
        print(f"  plain TensorFlow: {type(error).__name__}: {str(error).splitlines()[0]}")

    print(f"\n-- Restart with fallback={FALLBACK!r}")
    model, checkpoint = build()
    manager = safeckpt.SafeCheckpointManager(checkpoint, directory, 3, fallback=FALLBACK)
    report = manager.restore(manager.latest_checkpoint)
    print("  RestoreReport:")
    print("    " + str(report).replace("\n", "\n    "))
    print(f"  outcome: {report.outcome}; restored step {report.step}")
    print(f"  resuming at step {int(model.optimizer.iterations)}")
    train(model, manager, until=20)
    print(f"  checkpoints now: {[os.path.basename(p) for p in manager.checkpoints]}")

    print("\n-- Restart once more: the run is healthy again")
    model, checkpoint = build()
    manager = safeckpt.SafeCheckpointManager(checkpoint, directory, 3, fallback=FALLBACK)
    final = manager.restore()
    print(f"  {final} (outcome: {final.outcome}, step {int(model.optimizer.iterations)})")

    print("\n-- Worst case: every checkpoint damaged, so the second policy, fresh_init, applies")
    for info in safeckpt.list_checkpoints(directory):
        os.truncate(info.prefix + ".data-00000-of-00001", 10)
    model, checkpoint = build()
    manager = safeckpt.SafeCheckpointManager(checkpoint, directory, 3, fallback=FALLBACK)
    worst = manager.restore()
    print("    " + str(worst).replace("\n", "\n    "))
    kept = [info.basename for info in safeckpt.list_checkpoints(directory)]
    print(f"  outcome: {worst.outcome}; the damaged checkpoints stay on disk: {kept}")

    ok = (
        report.outcome is safeckpt.Outcome.FELL_BACK
        and report.step == 10
        and final.step == 20
        and worst.outcome is safeckpt.Outcome.INITIALIZED
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = sys.argv[1]
    else:
        target = os.path.join(tempfile.mkdtemp(prefix="safeckpt-resume-"), "checkpoints")
    sys.exit(main(target))
