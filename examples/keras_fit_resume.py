"""Resume `model.fit` after an interruption with `safeckpt.keras.BackupAndRestore`.

The only change from Keras's own callback is the import: ``keras.callbacks.BackupAndRestore``
becomes ``safeckpt.keras.BackupAndRestore``. The first `fit` is interrupted after epoch 3 (a
callback raises, as a preemption would end the process). A crash also damaged the newest
backup. The second `fit`, with a new model, restores the newest backup that verifies,
resumes at the right epoch, and at the end deletes its backups but not the user's notes. A
last `fit` starts fresh and, with ``delete_checkpoint=False``, keeps its backups.

Run: python examples/keras_fit_resume.py [DIRECTORY]   (default: in a new temp dir)
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import safeckpt.keras

EPOCHS = 6


class Preempted(keras.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs: object = None) -> None:
        if epoch == 3:
            raise RuntimeError("preempted after epoch 3")


def build() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def main(backup_dir: Path) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    x = np.random.default_rng(0).random((32, 4))
    y = x.sum(axis=1, keepdims=True)
    backup_dir.mkdir(parents=True, exist_ok=True)
    (backup_dir / "notes.txt").write_text("my notes about this run\n")
    print(f"backup_dir: {backup_dir}")

    callback = safeckpt.keras.BackupAndRestore(backup_dir)  # was: keras.callbacks.Backup…
    try:
        build().fit(x, y, epochs=EPOCHS, verbose=0, callbacks=[callback, Preempted()])
    except RuntimeError as error:
        print(f"first fit: {error}")
    backups = sorted(p.name.removesuffix(".index") for p in backup_dir.glob("*.index"))
    print(f"backups: {backups}")

    data = next(backup_dir.glob(f"{backups[-1]}.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    print(f"crash: {data.name} truncated")

    history = build().fit(x, y, epochs=EPOCHS, verbose=0, callbacks=[callback])
    print(f"second fit ran epochs {history.epoch}")
    print(f"left in backup_dir: {sorted(p.name for p in backup_dir.iterdir())}")

    keep = safeckpt.keras.BackupAndRestore(backup_dir, delete_checkpoint=False)
    history = build().fit(x, y, epochs=2, verbose=0, callbacks=[keep])
    print(f"a new fit starts fresh: epochs {history.epoch}")
    kept = sorted(p.name.removesuffix(".index") for p in backup_dir.glob("*.index"))
    print(f"delete_checkpoint=False keeps: {kept}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]).resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp) / "backup")
