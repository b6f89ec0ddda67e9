"""Crash consistency: SIGKILL a training process while it saves, then resume in a fresh one.

A handful of kills through the harness in `stress.crash` (``make stress`` runs 200 of them
with a 200 MiB model). Each kill is followed by a fresh process that resumes with
SafeCheckpointManager; an oracle that reads every tensor back with TensorFlow's reader
decides which checkpoints are complete.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from stress import crash

SIZE_MB = 24
HAVE_STRACE = crash.strace_available()
needs_strace = pytest.mark.skipif(
    not HAVE_STRACE, reason="strace is not installed or may not trace (ptrace forbidden)"
)

pytestmark = pytest.mark.slow


def _by_point(summary: crash.Summary) -> dict[str, crash.Trial]:
    return {t.point: t for t in summary.trials}


def test_kills_at_save_points_resume_from_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    # Deterministic points plus one random kill. The C++-level point (an empty .index)
    # needs strace; without it the 2nd state-file write stands in.
    middle = "index_write" if HAVE_STRACE else "state_rewrite"
    points = ["state_write", middle, "sweep_data", "random"]
    summary = crash.run(
        len(points),
        SIZE_MB,
        seed=7,
        workdir=tmp_path,
        points=points,
        cleanup=[True, False, False, False],
    )
    assert summary.errors == []
    assert summary.violations == []
    assert [t.point for t in summary.trials] == points
    trials = _by_point(summary)
    for point in points[:3]:
        assert trials[point].as_intended, (point, trials[point].landed)
    assert all(
        t.outcome in ("resumed-newest", "fell-back", "initialized-correctly")
        for t in summary.trials
    )

    # The first save of the run completed but no state file was written yet: the resumed
    # process found ckpt-1 anyway (plain TensorFlow starts from scratch here).
    first = trials["state_write"]
    assert first.target == 1
    assert first.complete_before == [1]
    assert first.newest_unlisted
    assert first.restored == 1
    assert first.saved == 2

    if middle == "index_write":
        # ckpt-N has a data shard and an empty index: incomplete, so ckpt-(N-1) is resumed
        # and the resumed run writes ckpt-N again.
        trial = trials["index_write"]
        assert trial.newest_complete == trial.target - 1
        assert trial.restored == trial.target - 1
        assert trial.saved == trial.target
    else:
        trial = trials["state_rewrite"]
        assert trial.restored == trial.killed_step

    # Killed while the sweep deleted an evicted checkpoint: the new one was already listed.
    sweep = trials["sweep_data"]
    assert sweep.restored == sweep.killed_step == sweep.newest_complete

    # cleanup_temp=True: the state file's temporary (written, never renamed) was removed.
    assert any(name.startswith("checkpoint.tmp") for name in first.leftovers_before)
    assert first.leftovers_after == []


@needs_strace
def test_cleanup_temp_leaves_nothing_of_an_interrupted_save(tmp_path: Path) -> None:
    # 1) killed before ckpt-1.index existed (data shard final, part index in ckpt-1_temp);
    #    nothing complete, the resumed process starts fresh and saves ckpt-2.
    # 2) killed with ckpt-N's data fully written to a .tempstate file; the resumed run
    #    saves ckpt-N again into the same ckpt-N_temp/.
    # 3) killed with ckpt-N's index created but empty; the resumed run saves ckpt-N again.
    summary = crash.run(
        3,
        SIZE_MB,
        seed=3,
        workdir=tmp_path,
        points=["index_create", "tmp_data_rename", "index_write"],
        cleanup=[True, True, True],
    )
    assert summary.errors == []
    first, second, third = summary.trials
    assert first.restore_outcome == "initialized"
    assert first.newest_complete is None
    assert any(name.endswith(".data-00000-of-00001") for name in first.leftovers_before)
    for trial in (second, third):
        assert trial.restored == trial.target - 1
        assert trial.saved == trial.target
    assert [t.leftovers_after for t in summary.trials] == [[], [], []]
    assert summary.violations == []


@needs_strace
def test_kill_while_the_first_save_writes_its_index_starts_fresh(tmp_path: Path) -> None:
    summary = crash.run(1, SIZE_MB, seed=5, workdir=tmp_path, points=["index_write"])
    assert summary.errors == []
    (trial,) = summary.trials
    assert trial.as_intended
    assert trial.newest_complete is None
    assert trial.outcome == "initialized-correctly", trial.violations
    assert trial.saved is not None


def test_resumes_from_a_complete_checkpoint_written_in_the_same_second_as_the_state_file(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "ckpts"
    directory.mkdir()

    def child(name: str) -> crash.Child:
        return crash.Child(
            {
                "directory": str(directory),
                "log": str(tmp_path / f"{name}.log"),
                "stderr": str(tmp_path / f"{name}.stderr"),
                "size_mb": 1,
                "vars": crash.N_VARS,
                "max_to_keep": crash.MAX_TO_KEEP,
                "cleanup_temp": False,
            }
        )

    trainer = child("trainer")
    trainer.wait_for("restored")
    trainer.send(cmd="save", count=2)
    trainer.wait_for("done")
    # SIGKILL between writing ckpt-3 and recording it in the state file.
    trainer.send(cmd="save", count=1, arm="state_write")
    with pytest.raises(crash.ChildEndedError):
        trainer.wait_for("done")
    trainer.close()
    names = sorted(os.listdir(directory))
    assert "ckpt-3.index" in names
    assert "ckpt-3" not in (directory / "checkpoint").read_text()

    # Fast saves: the state file (ckpt-2's save) and ckpt-3 fall into the same second.
    second = int(time.time()) - 60
    os.utime(directory / "checkpoint", ns=(second * 10**9 + 100_000_000,) * 2)
    for name in names:
        if name.startswith("ckpt-3."):
            os.utime(directory / name, ns=(second * 10**9 + 200_000_000,) * 2)

    resumer = child("resumer")
    try:
        event = resumer.wait_for("restored")
    finally:
        resumer.close()
    assert event["step"] == 3
    assert event["values"]["v0"] == [3.0, 3.0]
