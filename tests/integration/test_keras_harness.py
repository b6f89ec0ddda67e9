"""The Keras resume harness (`stress.keras`): a seeded slice, and its oracle's rule.

``make stress`` runs 40 trials; here one of each interruption (SIGKILL and SIGTERM sent by
the harness at a random batch, an exception from a callback) must come out without a
violation, and the backup schedule the oracle uses is checked against Keras's counting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stress import keras as harness
from stress.keras._oracle import allowed_starts

pytestmark = pytest.mark.slow


def test_one_trial_of_each_interruption_resumes_exactly(tmp_path: Path) -> None:
    summary = harness.run(3, seed=3, workdir=tmp_path)
    assert summary.errors == []
    assert summary.violations == []
    assert [t.interruption for t in summary.trials] == ["sigkill", "sigterm", "raise"]
    resumed = [t for t in summary.trials if not t.missed]
    assert resumed and all(t.started_after is not None for t in resumed)


@pytest.mark.parametrize(
    ("save_freq", "steps", "expected"),
    [
        ("epoch", 1, [6, 12, 18]),
        (1, 1, list(range(1, 19))),
        (4, 1, [4, 8, 12, 16]),
        (3, 2, [4, 8, 12, 16]),  # counted 2 at a time: 2, 4 (>= 3) ...
        (4, 2, [4, 8, 12, 16]),
        (5, 2, [6, 12, 18]),
    ],
)
def test_the_backup_schedule_is_keras_counting(
    save_freq: str | int, steps: int, expected: list[int]
) -> None:
    config = harness.Config("arrays", save_freq, steps, backup_rank=0)
    assert harness.backup_points(config, 18) == expected


def test_which_backup_a_resume_may_start_from() -> None:
    config = harness.Config("arrays", 4, 1, backup_rank=0)
    assert allowed_starts(config, "sigterm", 9) == {9}  # the batch in progress is backed up
    assert allowed_starts(config, "raise", 9) == {8}
    assert allowed_starts(config, "sigkill", 9) == {8}  # batch 9 ran: backup 8 was written
    assert allowed_starts(config, "sigkill", 8) == {8, 4}  # killed while 8 may be written
    assert allowed_starts(config, "sigkill", 3) == {0}
