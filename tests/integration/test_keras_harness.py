"""The Keras resume harness (`stress.keras`): a seeded slice, and its oracle's rule.

``make stress`` runs 40 trials (SIGKILL and SIGTERM sent by the harness at a random batch, an
exception from a callback); here one SIGKILL trial must come out without a violation, and the
backup schedule the oracle uses is checked against Keras's own callback.
"""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from stress import keras as harness
from stress.keras._oracle import allowed_starts

pytestmark = pytest.mark.slow


def test_a_sigkill_trial_resumes_exactly(tmp_path: Path) -> None:
    # SIGTERM and exceptions have tests of their own (test_keras_preemption.py, test_keras.py).
    summary = harness.run(1, seed=3, workdir=tmp_path, interruptions=("sigkill",))
    assert summary.errors == []
    assert summary.violations == []
    (trial,) = summary.trials
    assert trial.interruption == "sigkill" and not trial.missed
    assert trial.started_after is not None and trial.started_after <= trial.trained


def keras_own_points(save_freq: str | int, steps: int, batches: int, tmp_path: Path) -> list[int]:
    """When Keras's own `BackupAndRestore` backs up, driven step by step as `fit` drives it."""
    callback = keras.callbacks.BackupAndRestore(str(tmp_path), save_freq=save_freq)
    points: list[int] = []
    trained = 0
    callback._save_model = lambda: points.append(trained)  # record instead of writing
    while trained < batches:
        for begin in range(0, 6, steps):
            trained += steps
            callback.on_train_batch_end(begin + steps - 1)
        callback.on_epoch_end(0)
    return [p for p in points if p <= batches]


@pytest.mark.parametrize("save_freq", ["epoch", 1, 2, 3, 4, 5])
@pytest.mark.parametrize("steps", [1, 2])
def test_the_backup_schedule_is_keras_own_counting(
    save_freq: str | int, steps: int, tmp_path: Path
) -> None:
    config = harness.Config("arrays", save_freq, steps, backup_rank=0)
    assert harness.backup_points(config, 30) == keras_own_points(save_freq, steps, 30, tmp_path)
    if (save_freq, steps) == (4, 2):  # the first step of each epoch counts 1 (Keras's quirk)
        assert harness.backup_points(config, 30) == [6, 12, 18, 24, 30]


def test_which_backup_a_resume_may_start_from() -> None:
    config = harness.Config("arrays", 4, 1, backup_rank=0)
    assert allowed_starts(config, "sigterm", 9) == {9}  # the batch in progress is backed up
    assert allowed_starts(config, "raise", 9) == {8}
    assert allowed_starts(config, "sigkill", 9) == {8}  # batch 9 ran: backup 8 was written
    assert allowed_starts(config, "sigkill", 8) == {8, 4}  # killed while 8 may be written
    assert allowed_starts(config, "sigkill", 3) == {0}
