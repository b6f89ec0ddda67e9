"""A resumed `model.fit` resumes ModelCheckpoint, EarlyStopping and ReduceLROnPlateau too.

Keras's own ``BackupAndRestore`` backs up the weights, the optimizer and the epoch, not the
state of the other callbacks: after a restart, ``ModelCheckpoint(save_best_only=True)`` has
forgotten its best ``val_loss`` and saves again at once, ``EarlyStopping`` has forgotten how
long it has waited and ``ReduceLROnPlateau`` too. ``safeckpt.keras.BackupAndRestore`` backs
up their state with the weights, in the same checkpoint, and puts it back.

The script trains three times, under op determinism and with the same seeds: an
uninterrupted ``fit``; the same ``fit`` interrupted after epoch 3 (a callback raises; it
stands in for a crash or a preemption that ends the process); and that ``fit`` started
again, with a new model and new callbacks, as a restarted script would. The interrupted and
the resumed run together must do what the uninterrupted run did: the same ModelCheckpoint
saves, the same learning rate at every epoch, and EarlyStopping stopping at the same epoch.
(With ``keras.callbacks.BackupAndRestore`` instead, the resumed fit saves best-05 and
best-06, which the uninterrupted fit did not, and stops at epoch 7 instead of 5.)

Run: python examples/keras_callbacks_resume.py [DIRECTORY]   (default: in a new temp dir)
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import safeckpt.keras

EPOCHS = 30  # at most: EarlyStopping ends the fit sooner
CRASH_AFTER = 3  # the epoch (numbered from 0, like fit's) at whose end the first attempt dies

rng = np.random.default_rng(0)
X, Y = rng.random((64, 4), dtype=np.float32), rng.random((64, 1), dtype=np.float32)
VALIDATION = rng.random((16, 4), dtype=np.float32), rng.random((16, 1), dtype=np.float32)


class Crash(keras.callbacks.Callback):  # type: ignore[misc]
    """Stands in for a crash or a preemption: the process dies at the end of an epoch."""

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == CRASH_AFTER:
            raise RuntimeError(f"crashed after epoch {epoch}")


class LearningRates(keras.callbacks.Callback):  # type: ignore[misc]
    """Records the learning rate each epoch trains with."""

    def __init__(self) -> None:
        super().__init__()
        self.rates: dict[int, float] = {}

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.rates[epoch] = round(float(np.asarray(self.model.optimizer.learning_rate)), 6)


def build() -> keras.Model:
    keras.utils.set_random_seed(7)
    layers = [keras.Input((4,)), keras.layers.Dense(16, "relu"), keras.layers.Dense(1)]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    return model


def train(
    backup_dir: Path, saves_dir: Path, crash: bool = False
) -> tuple[dict[int, float], int | None]:
    """One `fit` of a new model; returns the learning rate of each epoch it ran, and the
    epoch EarlyStopping stopped at (None if the fit crashed)."""
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    rates = LearningRates()
    callbacks = [
        safeckpt.keras.BackupAndRestore(backup_dir),  # was: keras.callbacks.BackupAndRestore
        keras.callbacks.ModelCheckpoint(
            str(saves_dir / "best-{epoch:02d}.weights.h5"),  # {epoch} counts from 1
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
        ),
        early_stopping,
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
        rates,
    ]
    try:
        build().fit(
            X, Y, batch_size=16, epochs=EPOCHS, shuffle=False, validation_data=VALIDATION,
            verbose=0, callbacks=callbacks + ([Crash()] if crash else []),
        )  # fmt: skip
    except RuntimeError as error:
        print(f"  {error}; epochs run: {sorted(rates.rates)}")
        return rates.rates, None
    stopped = early_stopping.stopped_epoch
    print(f"  epochs run: {sorted(rates.rates)}; EarlyStopping stopped at epoch {stopped}")
    return rates.rates, stopped


def saves(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.weights.h5"))


def main(root: Path) -> None:
    logging.basicConfig(level=logging.WARNING, format="  %(message)s", stream=sys.stdout)
    tf.config.experimental.enable_op_determinism()
    if root.exists() and any(root.iterdir()):
        sys.exit(f"{root} is not empty: give a new or an empty directory")
    print(f"directory: {root}")

    print("uninterrupted fit:")
    full_rates, full_stop = train(root / "backup", root / "uninterrupted")

    print("the same fit, interrupted:")
    first_rates, _ = train(root / "backup", root / "interrupted", crash=True)
    backups = sorted(p.name.removesuffix(".index") for p in (root / "backup").glob("*.index"))
    print(f"  backups: {backups}; ModelCheckpoint saves: {saves(root / 'interrupted')}")

    print("started again, it resumes from the newest backup:")
    resumed_rates, resumed_stop = train(root / "backup", root / "interrupted")
    assert min(resumed_rates) == CRASH_AFTER + 1, "the resumed fit did not resume"

    print("uninterrupted vs interrupted and resumed:")
    print(f"  ModelCheckpoint saves: {saves(root / 'uninterrupted')}")
    print(f"                         {saves(root / 'interrupted')}")
    assert saves(root / "interrupted") == saves(root / "uninterrupted")
    print(f"  EarlyStopping stopped at epoch {full_stop} / {resumed_stop}")
    assert resumed_stop == full_stop
    print(f"  learning rate per epoch: {[full_rates[e] for e in sorted(full_rates)]}")
    rates = {**first_rates, **resumed_rates}
    print(f"                           {[rates[e] for e in sorted(rates)]}")
    assert rates == full_rates
    print("The resumed fit did what the uninterrupted fit did.")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]).resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp) / "run")
