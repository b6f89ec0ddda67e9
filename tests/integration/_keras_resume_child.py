"""A child process for tests/integration/test_keras_resume.py: scenarios of three fits each.

``python _keras_resume_child.py SCENARIO[,SCENARIO...] DIR`` runs for each scenario, under op
determinism: an uninterrupted ``fit``; the same ``fit`` interrupted (an exception raised by
a callback after a backup); and the resumed ``fit``. It prints one JSON line per scenario of
what each run did, for the test to compare. Nothing here reads safeckpt's files: what the
runs did is recorded by callbacks and a layer of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from safeckpt.keras import BackupAndRestore

tf.config.experimental.enable_op_determinism()
SCENARIOS, BASE = sys.argv[1].split(","), sys.argv[2]
SCENARIO, ROOT = SCENARIOS[0], BASE  # rebound for each scenario below
RNG = np.random.default_rng(0)
IDS = np.arange(40, dtype="float32")[:, None]
X = np.concatenate([IDS, RNG.random((40, 3), dtype=np.float32)], axis=1)
Y = RNG.random((40, 1), dtype=np.float32)
VAL = (np.concatenate([IDS[:8], RNG.random((8, 3), dtype=np.float32)], axis=1),
       RNG.random((8, 1), dtype=np.float32))  # fmt: skip
#: Interrupted in the middle of an epoch.
MID_EPOCH = ("batch", "dataset", "pydataset", "unbuilt_batch")
SEEN: list[list[int]] = []  # the sample ids of every batch trained, in order


class Tap(keras.layers.Layer):  # type: ignore[misc]
    """Record the ids of each training batch (eagerly) and drop the id column."""

    def call(self, x: Any, training: Any = None) -> Any:
        if training and hasattr(x, "numpy"):
            SEEN.append([int(i) for i in x.numpy()[:, 0]])
        return x[:, 1:]


class Log(keras.callbacks.Callback):  # type: ignore[misc]
    """What the run did: the learning rate of each epoch, its epoch-end logs."""

    def __init__(self) -> None:
        super().__init__()
        self.rates: dict[int, float] = {}
        self.losses: dict[int, float] = {}

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.rates[epoch] = float(np.asarray(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.losses[epoch] = float(logs["loss"])


class Interrupt(keras.callbacks.Callback):  # type: ignore[misc]
    def __init__(self, epoch: int | None = None, batches: int | None = None) -> None:
        super().__init__()
        self.epoch, self.batches, self.seen = epoch, batches, 0

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == self.epoch:
            raise RuntimeError("interrupted")

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.seen += 1
        if self.seen == self.batches:
            raise RuntimeError("interrupted")


def model(built: bool = True) -> keras.Model:
    keras.utils.set_random_seed(7)
    layers = [Tap(), keras.layers.Dense(16, "relu"), keras.layers.Dense(1)]
    m = keras.Sequential(([keras.layers.Input((4,))] if built else []) + layers)
    m.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", metrics=["mae"],
              run_eagerly=True)  # fmt: skip
    return m


def callbacks(run: str) -> list[Any]:
    folder = os.path.join(ROOT, run)
    os.makedirs(folder, exist_ok=True)
    return [
        keras.callbacks.ModelCheckpoint(
            os.path.join(folder, "m-{epoch:02d}.weights.h5"),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
        ),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
    ]


class Batches(keras.utils.PyDataset):  # type: ignore[misc]
    """The same 5 batches of 8 in the same order every epoch."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return X[index * 8 : (index + 1) * 8], Y[index * 8 : (index + 1) * 8]


def data() -> dict[str, Any]:
    if SCENARIO == "dataset":
        ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)
        return {"x": ds}
    if SCENARIO == "pydataset":
        return {"x": Batches(), "shuffle": False}
    return {"x": X, "y": Y, "batch_size": 8, "shuffle": False}


def fit(m: keras.Model, cbs: list[Any]) -> Any:
    return m.fit(**data(), epochs=30, validation_data=VAL, verbose=0, callbacks=cbs)


def run(name: str, interrupt: Interrupt | None, built: bool = True) -> dict[str, Any]:
    SEEN.clear()
    m, log = model(built), Log()
    options = {"save_freq": 3} if SCENARIO in MID_EPOCH else {}
    cbs = [BackupAndRestore(os.path.join(ROOT, "backup"), **options), *callbacks(name), log]
    if SCENARIO == "reversed":
        cbs = [*cbs[1:-1], cbs[0], log]  # the backup callback after the stateful ones
    epochs: list[int] = []
    with contextlib.suppress(RuntimeError):
        epochs = fit(m, cbs + ([interrupt] if interrupt else [])).epoch
    return {
        "epochs": epochs,
        "rates": log.rates,
        "losses": log.losses,
        "seen": list(SEEN),
        "weights": [w.tolist() for w in m.get_weights()],
        "files": sorted(os.listdir(os.path.join(ROOT, name))),
    }


for SCENARIO in SCENARIOS:  # one process for all: TensorFlow is imported once
    ROOT = os.path.join(BASE, SCENARIO)
    built = not SCENARIO.startswith("unbuilt")
    full = run("full", None, built)
    if SCENARIO in MID_EPOCH:
        first = run("first", Interrupt(batches=23), built)  # epoch 4 after 3 of its 5 batches
    else:
        first = run("first", Interrupt(epoch=4), built)  # a plateau: every counter is running
    resumed = run("resumed", None, built)
    result = {"scenario": SCENARIO, "full": full, "first": first, "resumed": resumed}
    print(json.dumps(result), flush=True)
