"""The training process of `stress.keras`: one ``fit`` of a configuration.

``python -m stress.keras._child CONFIG_JSON RUN_DIR BACKUP_DIR [RAISE_AT]``: trains with
``safeckpt.keras.BackupAndRestore`` unless the run is the uninterrupted reference
(BACKUP_DIR ``-``). As they happen, it appends to ``RUN_DIR/seen`` the sample ids of each
batch trained and to ``RUN_DIR/rates`` each epoch's learning rate (a killed run leaves what
it did); its ``ModelCheckpoint`` saves ``RUN_DIR/m-<epoch>.weights.h5``; if ``fit`` returns,
``RUN_DIR/result.json`` gets the epochs and the final weights. ``RAISE_AT``: a callback
raises once that many batches are trained.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import safeckpt.keras

SAMPLES, BATCH = 48, 8  # 6 batches an epoch
EPOCHS = 8


def main(argv: list[str]) -> None:
    config, run_dir, backup_dir = json.loads(argv[0]), Path(argv[1]), argv[2]
    raise_at = int(argv[3]) if len(argv) > 3 else None
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    ids = np.arange(SAMPLES, dtype="float32")[:, None]
    x = np.concatenate([ids, rng.random((SAMPLES, 3), dtype=np.float32)], axis=1)
    y = rng.random((SAMPLES, 1), dtype=np.float32)
    validation = (x[:16] * np.float32(0.9), rng.random((16, 1), dtype=np.float32))
    seen, rates = run_dir / "seen", run_dir / "rates"

    class Tap(keras.layers.Layer):  # type: ignore[misc]
        def call(self, inputs: Any, training: Any = None) -> Any:
            if training and hasattr(inputs, "numpy"):
                with seen.open("a") as f:
                    f.write(json.dumps([int(i) for i in inputs.numpy()[:, 0]]) + "\n")
            return inputs[:, 1:]

    class Rates(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            rate = float(np.asarray(self.model.optimizer.learning_rate))
            with rates.open("a") as f:
                f.write(json.dumps([epoch, rate]) + "\n")

    class Raise(keras.callbacks.Callback):  # type: ignore[misc]
        count = 0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.count += config["steps_per_execution"]
            if raise_at is not None and self.count >= raise_at:
                raise RuntimeError("interrupted")

    class Batches(keras.utils.PyDataset):  # type: ignore[misc]
        def __len__(self) -> int:
            return SAMPLES // BATCH

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            return x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]

    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.layers.Input((4,)), Tap(), keras.layers.Dense(16, "relu"),
                              keras.layers.Dense(1)])  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", metrics=["mae"],
                  run_eagerly=True, steps_per_execution=config["steps_per_execution"])  # fmt: skip
    callbacks: list[Any] = [
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "m-{epoch:02d}.weights.h5"),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
        ),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
        Rates(),
    ]
    if backup_dir != "-":
        callbacks.insert(config["backup_rank"], safeckpt.keras.BackupAndRestore(
            backup_dir, save_freq=config["save_freq"], save_before_preemption=True))  # fmt: skip
    if raise_at is not None:
        callbacks.append(Raise())
    data: dict[str, Any]
    if config["input"] == "dataset":
        data = {"x": tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)}
    elif config["input"] == "pydataset":
        data = {"x": Batches(), "shuffle": False}
    else:
        data = {"x": x, "y": y, "batch_size": BATCH, "shuffle": False}
    history = model.fit(**data, epochs=EPOCHS, validation_data=validation, verbose=0,
                        callbacks=callbacks)  # fmt: skip
    weights = [w.tolist() for w in model.get_weights()]
    result = {"epochs": history.epoch, "weights": weights}
    (run_dir / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
