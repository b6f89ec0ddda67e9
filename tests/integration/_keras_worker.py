"""One worker of a two-worker Keras job under MultiWorkerMirroredStrategy (test_multiworker.py).

Not a test module. ``TF_CONFIG`` (set by the test) says which worker this is. ``--api``:

* ``tf_keras``: TensorFlow's own Keras 2 integration, ``tf_keras.callbacks.BackupAndRestore``
  with ``tf.train.CheckpointManager`` swapped for `safeckpt.SafeCheckpointManager` (as a user
  would), trained by ``model.fit``. Its ``WorkerTrainingState`` builds one manager on the chief
  (``<backup_dir>/chief``) and two on the other worker (the same, plus a write manager on
  ``<backup_dir>/workertemp_1``).
* ``safeckpt_keras``: `safeckpt.keras.BackupAndRestore` on a Keras 3 model, its hooks driven by
  a custom training loop (Keras 3's ``model.fit`` does not run under this strategy on TF 2.21,
  see docs/keras.md).

``--interrupt-after N`` raises at the end of epoch N (after that epoch's backup), as a
preemption would; the test then starts both workers again without it. The last stdout line is
``RESULT <json>``: the epochs run, the weights after each, and the error if interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import safeckpt


class Interrupted(Exception):
    pass


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")).astype("float32")


def run_tf_keras(args: argparse.Namespace, strategy: Any, result: dict[str, Any]) -> None:
    import tf_keras

    # The swap: every CheckpointManager tf_keras builds is a SafeCheckpointManager.
    tf.train.CheckpointManager = safeckpt.SafeCheckpointManager
    tf.compat.v2.train.CheckpointManager = safeckpt.SafeCheckpointManager

    class Record(tf_keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:  # after BackupAndRestore's
            state = backup._training_state
            read, write = state.read_checkpoint_manager, state.write_checkpoint_manager
            result["managers"] = [
                {"type": type(m).__name__, "directory": m.directory}
                for m in dict.fromkeys([read, write])
            ]
            result["restore"] = read.last_restore.to_dict()
            result["restored_weights"] = [float(v) for v in self.model.get_weights()[0].ravel()]

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            weights = self.model.get_weights()[0]
            result["epochs"].append(epoch)
            result["weights"].append([float(v) for v in weights.ravel()])
            if epoch == args.interrupt_after:
                raise Interrupted(f"interrupted after epoch {epoch}")

    with strategy.scope():
        model = tf_keras.Sequential([tf_keras.layers.Dense(1, input_shape=(3,))])
        model.compile(tf_keras.optimizers.SGD(0.05), "mse")
    x, y = _data()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).with_options(options)
    backup = tf_keras.callbacks.BackupAndRestore(args.directory)
    model.fit(dataset, epochs=args.epochs, verbose=0, callbacks=[backup, Record()])


def run_safeckpt_keras(args: argparse.Namespace, strategy: Any, result: dict[str, Any]) -> None:
    import keras

    import safeckpt.keras

    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        optimizer = keras.optimizers.SGD(0.05)
        model.compile(optimizer, "mse")
        optimizer.build(model.trainable_variables)
    x, y = (tf.constant(a) for a in _data())

    @tf.function
    def train_step() -> Any:
        def replica_step() -> Any:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((model(x) - y) ** 2)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        return strategy.reduce("MEAN", strategy.run(replica_step), axis=None)

    callback = safeckpt.keras.BackupAndRestore(args.directory)
    callback.set_model(model)
    callback.on_train_begin()  # restores the newest backup, sets where fit would resume
    assert callback.manager is not None and callback.manager.last_restore is not None
    result["restore"] = callback.manager.last_restore.to_dict()
    result["managers"] = [
        {"type": "SafeCheckpointManager", "directory": callback.manager.directory}
    ]
    result["restored_weights"] = [float(v) for v in model.get_weights()[0].ravel()]
    start = safeckpt._io.tf.initial_epoch(model) or 0
    for epoch in range(start, args.epochs):
        callback.on_epoch_begin(epoch)
        for _ in range(4):
            train_step()
        callback.on_epoch_end(epoch)  # the backup
        result["epochs"].append(epoch)
        result["weights"].append([float(v) for v in model.get_weights()[0].ravel()])
        if epoch == args.interrupt_after:
            raise Interrupted(f"interrupted after epoch {epoch}")
    callback.on_train_end()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", choices=("tf_keras", "safeckpt_keras"), required=True)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--phase", default="run")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--interrupt-after", type=int, default=-1)
    args = parser.parse_args()

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    result: dict[str, Any] = {"epochs": [], "weights": []}
    run = run_tf_keras if args.api == "tf_keras" else run_safeckpt_keras
    try:
        run(args, strategy, result)
    except Interrupted as exc:
        result["interrupted"] = str(exc)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
