"""Example 1: save and load a Keras model correctly with SafeCheckpointManager.

This is the tutorial's first example, rewritten for safeckpt. The training job tracks the
model *and* its optimizer in one `tf.train.Checkpoint` and saves through the manager. A later
job builds the same model and loads with ``manager.restore(manager.latest_checkpoint)``.
Plain TensorFlow's `CheckpointManager` has no ``restore`` method; safeckpt adds one. It
returns a `RestoreReport` that says which checkpoint was restored and why.

Run: python examples/saving_and_loading.py [DIRECTORY]   (default: in a new temp dir)
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


def build_model() -> keras.Model:
    """The same architecture in both jobs: checkpoints match variables by structure."""
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    # Create the optimizer's slots now, so that a restore fills them immediately
    # instead of waiting for the first training step.
    model.optimizer.build(model.trainable_variables)
    return model


def main(directory: str) -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="  [%(name)s] %(message)s")
    tf.get_logger().setLevel(logging.ERROR)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 1))

    print(f"Checkpoint directory: {directory}")
    print("\n-- Training job: save every epoch")
    model = build_model()
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = safeckpt.SafeCheckpointManager(checkpoint, directory, max_to_keep=3)
    report = manager.restore(manager.latest_checkpoint)
    print(f"  before training: {report}")
    for epoch in range(1, 5):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        print(f"  epoch {epoch}: saved {manager.save()}")
    kept = [os.path.basename(path) for path in manager.checkpoints]
    print(f"  kept (max_to_keep=3): {kept}")

    print("\n-- Inference job: a new model loads the newest checkpoint")
    loaded = build_model()
    loaded_checkpoint = tf.train.Checkpoint(model=loaded, optimizer=loaded.optimizer)
    loader = safeckpt.SafeCheckpointManager(loaded_checkpoint, directory, max_to_keep=3)
    report = loader.restore(loader.latest_checkpoint)
    # Every variable of the new model was given a value from the checkpoint.
    report.assert_existing_objects_matched()
    print(f"  {report}")
    print(f"  outcome: {report.outcome}, step: {report.step}")

    same_weights = all(
        np.array_equal(a, b) for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True)
    )
    same_predictions = np.allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    print(f"  weights identical to the trained model: {same_weights}")
    print(f"  predictions identical: {same_predictions}")
    print(f"  optimizer steps restored: {int(loaded.optimizer.iterations)}")
    return 0 if same_weights and same_predictions else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = sys.argv[1]
    else:
        target = os.path.join(tempfile.mkdtemp(prefix="safeckpt-example1-"), "checkpoints")
    sys.exit(main(target))
