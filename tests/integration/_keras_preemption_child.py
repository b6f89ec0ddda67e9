"""A child process for tests/integration/test_keras_preemption.py.

``python _keras_preemption_child.py MODE DIR``, MODE one of:

- ``full``: an uninterrupted ``fit``;
- ``preempted`` / ``keras-preempted``: the same ``fit`` with safeckpt's
  ``BackupAndRestore(save_before_preemption=True)`` / Keras's ``BackupAndRestore``; at batch
  2 of epoch 1 it writes ``DIR/ready`` and waits for the parent's SIGTERM (the parent writes
  ``DIR/sent`` after sending it);
- ``resumed`` / ``keras-resumed``: the ``fit`` started again with that callback.

Every run appends the sample ids of each batch it trains to ``DIR/<MODE>.seen`` as the
batch is trained (the run may not live to write anything afterwards) and, if ``fit``
returns, its final weights to ``DIR/<MODE>.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import safeckpt.keras

tf.config.experimental.enable_op_determinism()
MODE, ROOT = sys.argv[1], Path(sys.argv[2])
IDS = np.arange(40, dtype="float32")[:, None]
X = np.concatenate([IDS, np.random.default_rng(0).random((40, 3), dtype=np.float32)], axis=1)
Y = np.random.default_rng(1).random((40, 1), dtype=np.float32)
SEEN = ROOT / f"{MODE}.seen"


class Tap(keras.layers.Layer):  # type: ignore[misc]
    """Append the ids of each training batch to `SEEN` (eagerly) and drop the id column."""

    def call(self, x: Any, training: Any = None) -> Any:
        if training and hasattr(x, "numpy"):
            with SEEN.open("a") as f:
                f.write(json.dumps([int(i) for i in x.numpy()[:, 0]]) + "\n")
        return x[:, 1:]


class WaitForSignal(keras.callbacks.Callback):  # type: ignore[misc]
    """At batch 2 of epoch 1: tell the parent, then wait until it has sent SIGTERM."""

    epoch = -1

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if (self.epoch, batch) != (1, 2):
            return
        (ROOT / "ready").write_text("")
        deadline = time.monotonic() + 120
        while not (ROOT / "sent").exists() and time.monotonic() < deadline:
            time.sleep(0.01)


keras.utils.set_random_seed(7)
model = keras.Sequential([keras.layers.Input((4,)), Tap(), keras.layers.Dense(16, "relu"),
                          keras.layers.Dense(1)])  # fmt: skip
model.compile(optimizer="adam", loss="mse", run_eagerly=True)
backups = str(ROOT / ("keras-backup" if MODE.startswith("keras") else "backup"))
callbacks: list[Any] = []
if MODE in ("preempted", "resumed"):
    callbacks.append(safeckpt.keras.BackupAndRestore(backups, save_before_preemption=True))
elif MODE in ("keras-preempted", "keras-resumed"):
    callbacks.append(keras.callbacks.BackupAndRestore(backups))
if MODE.endswith("preempted"):
    callbacks.append(WaitForSignal())
history = model.fit(X, Y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)
(ROOT / f"{MODE}.json").write_text(
    json.dumps({"epochs": history.epoch, "weights": [w.tolist() for w in model.get_weights()]})
)
