"""`safeckpt.keras.BackupAndRestore` with real `model.fit` runs and real checkpoints.

Runs are interrupted the way Keras's own tests do it (a callback that raises after our
backup was written), or by SIGKILL of a training child process in the middle of a backup.
The oracle of a resume is an uninterrupted run under op determinism (in a child process,
since determinism cannot be switched off again), or TensorFlow's own reader for what is on
disk; never the code under test.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import safeckpt
import safeckpt.keras
from safeckpt.keras import BackupAndRestore

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


class Interrupt(keras.callbacks.Callback):
    """Raise at the end of epoch `epoch` (0-based) or after `batches` batches of a fit."""

    def __init__(self, epoch: int | None = None, batches: int | None = None) -> None:
        super().__init__()
        self.epoch, self.batches, self.seen = epoch, batches, 0

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == self.epoch:
            raise RuntimeError("EpochInterruption")

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.seen += 1
        if self.seen == self.batches:
            raise RuntimeError("StepsInterruption")


def make_model(units: int = 4) -> keras.Model:
    model = keras.Sequential(
        [keras.layers.Input((3,)), keras.layers.Dense(units, "relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


DATA = (np.random.default_rng(0).random((16, 3)), np.random.default_rng(1).random((16, 1)))


def fit(model: keras.Model, callbacks: list[Any], epochs: int = 5) -> Any:
    x, y = DATA
    return model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0,
                     callbacks=callbacks)  # fmt: skip


def interrupted(backup_dir: Path, after_epoch: int, **options: Any) -> keras.Model:
    model = make_model()
    with pytest.raises(RuntimeError, match="EpochInterruption"):
        fit(model, [BackupAndRestore(backup_dir, **options), Interrupt(epoch=after_epoch)])
    return model


# --- the oracle: interrupted + resumed == uninterrupted, under op determinism -----------------

ORACLE = """
import json, sys
import keras, numpy as np, tensorflow as tf
from safeckpt.keras import BackupAndRestore
tf.config.experimental.enable_op_determinism()
x = np.random.default_rng(0).random((32, 3)); y = np.random.default_rng(1).random((32, 1))
def model():
    keras.utils.set_random_seed(7)
    m = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(8, "relu"),
                          keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m
class Stop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("stop")
def run(m, callbacks):
    return m.fit(x, y, batch_size=8, epochs=6, shuffle=False, verbose=0, callbacks=callbacks)
full = model(); run(full, [])
first = model()
try:
    run(first, [BackupAndRestore(sys.argv[1]), Stop()])
except RuntimeError:
    pass
resumed = model()
history = run(resumed, [BackupAndRestore(sys.argv[1])])
diff = max(float(np.max(np.abs(a - b))) for a, b in
           zip(full.get_weights(), resumed.get_weights(), strict=True))
iterations = [int(full.optimizer.iterations), int(resumed.optimizer.iterations)]
print(json.dumps({"diff": diff, "epochs": history.epoch, "iterations": iterations}))
"""


def test_resumed_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", ORACLE, str(tmp_path / "b")],
                          capture_output=True, text=True, env=ENV, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["epochs"] == [3, 4, 5]  # exactly the remaining epochs
    assert result["iterations"] == [24, 24]
    assert result["diff"] <= 1e-6
    assert not (tmp_path / "b").exists()  # completed: backups deleted, empty directory too


# --- damaged newest backup ----------------------------------------------------------------


def _damage(prefix: Path, how: str) -> None:
    data = next(prefix.parent.glob(prefix.name + ".data-*"))
    if how == "bitflip":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0x10
        data.write_bytes(bytes(raw))
    elif how == "truncate":
        data.write_bytes(data.read_bytes()[:-8])
    else:
        (prefix.parent / (prefix.name + ".index")).unlink()


@pytest.mark.parametrize("how", ["bitflip", "truncate", "missing_index"])
def test_damaged_newest_backup_resumes_one_backup_earlier(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    backup_dir = tmp_path / "backup"
    interrupted(backup_dir, after_epoch=2)  # backups of epochs 0..2: backup-2 and backup-3 kept
    names = sorted(p.name for p in backup_dir.glob("*.index"))
    assert names == ["backup-2.index", "backup-3.index"]
    _damage(backup_dir / "backup-3", how)
    model = make_model()
    callback = BackupAndRestore(backup_dir, verify="deep" if how == "bitflip" else "quick")
    with caplog.at_level(logging.WARNING, logger="safeckpt"):
        history = fit(model, [callback])
    assert history.epoch == [2, 3, 4]  # backup-2 holds the end of epoch 1
    assert callback.manager is not None and callback.manager.last_restore is not None
    assert callback.manager.last_restore.outcome is safeckpt.Outcome.FELL_BACK
    assert "backup-2" in caplog.text and "backup-3" in caplog.text


# --- delete_checkpoint, fresh starts, step-wise backups, mismatches -------------------------


def test_delete_checkpoint_leaves_other_files(tmp_path: Path) -> None:
    backup_dir = tmp_path / "backup"
    (backup_dir / "mine").mkdir(parents=True)
    (backup_dir / "notes.txt").write_text("keep me")
    (backup_dir / "mine" / "data.npy").write_bytes(b"123")
    interrupted(backup_dir, after_epoch=1)
    assert (backup_dir / "checkpoint").exists()
    fit(make_model(), [BackupAndRestore(backup_dir)])
    assert sorted(str(p.relative_to(backup_dir)) for p in backup_dir.rglob("*")) == [
        "mine", "mine/data.npy", "notes.txt"
    ]  # fmt: skip
    assert (backup_dir / "notes.txt").read_text() == "keep me"


def test_delete_checkpoint_false_keeps_the_backups(tmp_path: Path) -> None:
    fit(make_model(), [BackupAndRestore(tmp_path, delete_checkpoint=False)], epochs=3)
    assert sorted(p.name for p in tmp_path.glob("*.index")) == ["backup-2.index", "backup-3.index"]


def test_completed_run_then_new_fit_starts_fresh(tmp_path: Path) -> None:
    model = interrupted(tmp_path / "b", after_epoch=1)
    callback = BackupAndRestore(tmp_path / "b")
    assert fit(model, [callback], epochs=4).epoch == [2, 3]
    # Keras's own callback leaves model._initial_epoch at 2 here: the next fit skips 2 epochs.
    assert fit(model, [callback], epochs=4).epoch == [0, 1, 2, 3]
    assert fit(model, [], epochs=2).epoch == [0, 1]


def test_step_backups_resume_the_interrupted_epoch_after_the_backed_up_batch(
    tmp_path: Path,
) -> None:
    model = make_model()
    with pytest.raises(RuntimeError, match="StepsInterruption"):
        # 4 batches an epoch; a backup every 3 batches: after batches 3, 6 (epoch 1, batch 1)
        fit(model, [BackupAndRestore(tmp_path, save_freq=3), Interrupt(batches=7)])
    iterations = int(model.optimizer.iterations)
    assert iterations == 7
    resumed = make_model()
    callback = BackupAndRestore(tmp_path, save_freq=3, delete_checkpoint=False)
    history = fit(resumed, [callback], epochs=3)
    assert history.epoch == [1, 2]  # epoch 1 continues after its second batch
    assert int(resumed.optimizer.iterations) == 6 + 2 + 4  # restored 6, 2 of epoch 1, epoch 2


def test_a_backup_of_another_model_raises_the_mismatch(tmp_path: Path) -> None:
    interrupted(tmp_path, after_epoch=0)
    other = make_model(units=5)
    before = [w.copy() for w in other.get_weights()]
    with pytest.raises(safeckpt.CheckpointMismatchError):
        fit(other, [BackupAndRestore(tmp_path)])
    assert all(np.array_equal(a, b) for a, b in zip(before, other.get_weights(), strict=True))
    assert sorted(p.name for p in tmp_path.glob("*.index")) == ["backup-1.index"]


# --- Keras's argument validation and error messages ----------------------------------------


@pytest.mark.parametrize("save_freq", ["batch", 0.15, None])
def test_invalid_save_freq(save_freq: Any) -> None:
    with pytest.raises(ValueError, match="Invalid value for argument `save_freq`"):
        BackupAndRestore("backup_dir", save_freq=save_freq)


@pytest.mark.parametrize("backup_dir", ["", None])
def test_empty_backup_dir(backup_dir: Any) -> None:
    with pytest.raises(ValueError, match="Empty `backup_dir` argument passed"):
        BackupAndRestore(backup_dir)


def test_safeckpt_options_are_validated(tmp_path: Path) -> None:
    assert BackupAndRestore(tmp_path, max_to_keep=1).max_to_keep == 1
    assert BackupAndRestore(tmp_path, double_checkpoint=True, max_to_keep=1).max_to_keep == 2
    assert BackupAndRestore("rel/dir").backup_dir == str(Path.cwd() / "rel" / "dir")
    for bad in ({"max_to_keep": 0}, {"verify": "fast"}, {"match": "all"}, {"fallback": "x"}):
        with pytest.raises(ValueError):
            BackupAndRestore(tmp_path, **bad)
    with pytest.raises(safeckpt.CheckpointDirectoryError):
        BackupAndRestore(" /tmp/x")
    with pytest.raises(TypeError):
        BackupAndRestore(tmp_path, "epoch", False, True, 2)  # type: ignore[misc]


def test_an_unbuilt_model_resumes_and_is_matched_once_built(tmp_path: Path) -> None:
    interrupted(tmp_path, after_epoch=1)
    unbuilt = keras.Sequential([keras.layers.Dense(4, "relu"), keras.layers.Dense(1)])
    unbuilt.compile(optimizer="adam", loss="mse")
    assert fit(unbuilt, [BackupAndRestore(tmp_path)], epochs=3).epoch == [2]
    assert int(unbuilt.optimizer.iterations) == 8 + 4  # 2 epochs restored, then 1 of 4
    other = keras.Sequential([keras.layers.Dense(5, "relu"), keras.layers.Dense(1)])
    other.compile(optimizer="adam", loss="mse")
    interrupted(tmp_path / "again", after_epoch=1)
    with pytest.raises(safeckpt.CheckpointMismatchError):
        fit(other, [BackupAndRestore(tmp_path / "again")], epochs=3)


def test_importing_safeckpt_does_not_import_safeckpt_keras() -> None:
    code = "import sys, safeckpt; print('safeckpt.keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=ENV, timeout=300)  # fmt: skip
    assert done.stdout.strip() == "False", done.stderr


# --- kill -9 of a training process in the middle of a backup --------------------------------

CHILD = """
import json, sys
import keras, numpy as np, tensorflow as tf
from safeckpt.keras import BackupAndRestore
keras.utils.set_random_seed(3)
model = keras.Sequential([keras.layers.Input((512,)), keras.layers.Dense(2048),
                          keras.layers.Dense(1)])   # 1M weights, 12 MB with Adam's slots
model.compile(optimizer="adam", loss="mse")
x = np.random.default_rng(0).random((8, 512)); y = np.zeros((8, 1))
class Say(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print("epoch", epoch, flush=True)
callback = BackupAndRestore(sys.argv[1], delete_checkpoint=False, max_to_keep=3)
history = model.fit(x, y, batch_size=8, epochs=int(sys.argv[2]), verbose=0,
                    callbacks=[callback, Say()])
print(json.dumps({"epochs": history.epoch, "iterations": int(model.optimizer.iterations)}))
"""


def _complete_backups(directory: Path) -> dict[int, int]:
    """Backup step -> epoch of every backup TensorFlow's reader reads in full (CRC32C checked)."""
    import tensorflow as tf

    result = {}
    for index in directory.glob("backup-*.index"):
        prefix = str(index)[: -len(".index")]
        try:
            reader = tf.train.load_checkpoint(prefix)
            for key in reader.get_variable_to_shape_map():
                reader.get_tensor(key)
        except (tf.errors.OpError, ValueError):
            continue
        result[int(prefix.rsplit("-", 1)[1])] = int(
            reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")
        )
    return result


@pytest.mark.slow
def test_kill_during_a_backup_resumes_from_the_newest_complete_backup(tmp_path: Path) -> None:
    backup_dir = tmp_path / "backup"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(backup_dir), "1000"],
                             stdout=subprocess.PIPE, env=ENV, text=True)  # fmt: skip
    try:
        assert child.stdout is not None
        while child.stdout.readline().strip() != "epoch 3":  # backup-4 is written now
            assert child.poll() is None
        deadline = time.monotonic() + 60
        while not any(backup_dir.glob("backup-6*")):  # the save of epoch 5 began
            assert time.monotonic() < deadline
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    landed = sorted(p.name for p in backup_dir.iterdir())
    complete = _complete_backups(backup_dir)
    newest = max(complete)
    assert newest >= 5, landed
    snapshot = {p.name: p.read_bytes() for p in backup_dir.glob(f"backup-{newest}.*")}
    done = subprocess.run([sys.executable, "-c", CHILD, str(backup_dir), str(newest + 2)],
                          capture_output=True, text=True, env=ENV, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    resumed_epoch = complete[newest]
    assert result["epochs"] == list(range(resumed_epoch, newest + 2)), (landed, complete)
    assert result["iterations"] == newest + 2
    # The resumed backup's files are untouched, and nothing was numbered over it.
    assert {n: (backup_dir / n).read_bytes() for n in snapshot} == snapshot
    shutil.rmtree(backup_dir)


# --- the fit's other callbacks, and where an interrupted epoch continues -----------------------


class EpochCounter(keras.callbacks.Callback):
    """A user callback with a state of its own (the `safeckpt.keras.StatefulCallback` methods)."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs_seen: list[int] = []

    def on_train_begin(self, logs: Any = None) -> None:
        self.epochs_seen = []  # reset, as Keras's own callbacks do

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.epochs_seen.append(epoch)

    def backup_state(self) -> dict[str, Any]:
        return {"epochs_seen": list(self.epochs_seen), "array": np.arange(3)}

    def restore_state(self, state: dict[str, Any]) -> None:
        assert np.array_equal(state["array"], np.arange(3))
        self.epochs_seen = state["epochs_seen"]


@pytest.mark.parametrize("order", ["backup first", "backup last"])
def test_a_user_callback_state_resumes(tmp_path: Path, order: str) -> None:
    def callbacks(counter: EpochCounter, *extra: Any) -> list[Any]:
        both = [BackupAndRestore(tmp_path), counter]
        return [*(both if order == "backup first" else both[::-1]), *extra]

    counter = EpochCounter()
    with pytest.raises(RuntimeError, match="EpochInterruption"):
        fit(make_model(), callbacks(counter, Interrupt(epoch=2)))
    assert counter.epochs_seen == [0, 1, 2]
    resumed = EpochCounter()
    assert fit(make_model(), callbacks(resumed)).epoch == [3, 4]
    assert resumed.epochs_seen == [0, 1, 2, 3, 4]  # as if never interrupted


def test_a_state_that_cannot_be_backed_up_stops_the_fit_naming_the_callback(
    tmp_path: Path,
) -> None:
    class Unsavable(EpochCounter):
        def backup_state(self) -> dict[str, Any]:
            return {"handle": object()}

    with pytest.raises(TypeError, match=r"state of .*Unsavable#0\['handle'\]: object"):
        fit(make_model(), [BackupAndRestore(tmp_path), Unsavable()])


def test_shuffled_arrays_restart_the_interrupted_epoch_and_say_why_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    x, y = DATA
    model = make_model()
    callbacks = [BackupAndRestore(tmp_path, save_freq=3), Interrupt(batches=7)]
    with pytest.raises(RuntimeError, match="StepsInterruption"):
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, shuffle=True, callbacks=callbacks)
    resumed = make_model()
    with caplog.at_level(logging.INFO, logger="safeckpt"):
        history = resumed.fit(x, y, batch_size=4, epochs=3, verbose=0, shuffle=True,
                              callbacks=[BackupAndRestore(tmp_path, save_freq=3)])  # fmt: skip
    assert history.epoch == [1, 2]
    assert int(resumed.optimizer.iterations) == 6 + 8  # epoch 1 again from its first batch
    said = [r.getMessage() for r in caplog.records if "runs again" in r.getMessage()]
    assert said == [
        "BackupAndRestore: epoch 1 was interrupted after batch 2; it runs again from its "
        "first batch because the arrays are shuffled (fit(..., shuffle=True))."
    ]


def test_callbacks_after_a_resumed_mid_epoch_see_the_true_batch_numbers(tmp_path: Path) -> None:
    class Batches(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[int, int]] = []
            self.epoch = -1

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.seen.append((self.epoch, batch))

    with pytest.raises(RuntimeError, match="StepsInterruption"):
        fit(make_model(), [BackupAndRestore(tmp_path, save_freq=3), Interrupt(batches=7)])
    batches = Batches()
    fit(make_model(), [batches, BackupAndRestore(tmp_path, save_freq=3)], epochs=3)
    # Epoch 1 continues at batch 2 (batches 0 and 1 were backed up after 6 batches).
    assert batches.seen == [(1, 2), (1, 3), (2, 0), (2, 1), (2, 2), (2, 3)]


def test_a_backup_of_the_last_batch_of_an_epoch_runs_only_that_epochs_end(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="StepsInterruption"):
        # 4 batches an epoch: backed up after batch 4 of epoch 0, before its on_epoch_end.
        fit(make_model(), [BackupAndRestore(tmp_path, save_freq=4), Interrupt(batches=4)])
    resumed = make_model()
    history = fit(resumed, [BackupAndRestore(tmp_path, save_freq=4)], epochs=2)
    assert history.epoch == [0, 1]  # epoch 0's end (its logs, validation, callbacks) runs
    assert int(resumed.optimizer.iterations) == 4 + 4  # but none of its batches again
    assert history.history["loss"][0] > 0


def test_a_backup_written_before_fit_states_existed_still_resumes(tmp_path: Path) -> None:
    import tensorflow as tf

    model = make_model()
    fit(model, [], epochs=2)
    epoch = tf.Variable(2, dtype=tf.int64)
    batch = tf.Variable(0, dtype=tf.int64)
    old = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch, batch=batch)
    for folder in ("existing", "consumed"):
        manager = safeckpt.SafeCheckpointManager(old, tmp_path / folder, max_to_keep=2,
                                                 checkpoint_name="backup")  # fmt: skip
        manager.save()
    resumed = make_model()
    history = fit(resumed, [BackupAndRestore(tmp_path / "existing")], epochs=4)
    assert history.epoch == [2, 3]
    assert int(resumed.optimizer.iterations) == 8 + 8
    # A strict match wants a value for every object, the fit state included.
    with pytest.raises(safeckpt.CheckpointMismatchError, match="fit_state"):
        fit(make_model(), [BackupAndRestore(tmp_path / "consumed", match="consumed")])


def test_a_strict_match_resumes_a_backup_with_its_fit_state(tmp_path: Path) -> None:
    interrupted(tmp_path, after_epoch=1, match="consumed")
    resumed = make_model()
    history = fit(resumed, [BackupAndRestore(tmp_path, match="consumed")], epochs=3)
    assert history.epoch == [2] and int(resumed.optimizer.iterations) == 8 + 4
