"""The one rule for "the newest checkpoint" (docs/fallback.md), one test per reproduction.

Each scenario is written with plain TensorFlow (`write`: a `tf.train.CheckpointManager` save
with ``checkpoint_number=step``, the variable holding the step), then hand-edited the way
users edit state files. Expected answers come from the scenario, not from safeckpt's code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import (
    CheckpointCorruptedError,
    NoUsableCheckpointError,
    Outcome,
    SafeCheckpointManager,
    SaveError,
)
from testing.checkpoints import Trainee


def write(d: Path, step: int, name: str = "ckpt") -> str:
    t = Trainee()
    t.set(step)
    plain = tf.train.CheckpointManager(t.checkpoint, str(d), max_to_keep=None, checkpoint_name=name)
    path: str = plain.save(checkpoint_number=step)
    return path


def write_unrecorded(d: Path, step: int, name: str = "ckpt") -> str:
    t = Trainee()
    t.set(step)
    path: str = t.checkpoint.write(str(d / f"{name}-{step}"))
    return path


def state(d: Path, *lines: str) -> None:
    (d / "checkpoint").write_text("\n".join(lines) + "\n")


def hashes(d: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(d.iterdir())
        if p.is_file() and p.name != "checkpoint"
    }


def manager(t: Trainee, d: Path, **kwargs: object) -> SafeCheckpointManager:
    kwargs.setdefault("max_to_keep", 5)
    return SafeCheckpointManager(t.checkpoint, str(d), **kwargs)  # type: ignore[arg-type]


def resume(d: Path, **kwargs: object) -> tuple[SafeCheckpointManager, Trainee]:
    t = Trainee()
    t.set(-1)
    m = manager(t, d, **kwargs)
    return m, t


@pytest.fixture
def run(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    return d


# 1. The state file's latest is model_checkpoint_path, not the last listed entry.


def test_reordered_state_file_latest_is_model_checkpoint_path(run: Path) -> None:
    write(run, 1)
    write(run, 2)
    state(
        run,
        'model_checkpoint_path: "ckpt-2"',
        'all_model_checkpoint_paths: "ckpt-2"',
        'all_model_checkpoint_paths: "ckpt-1"',
    )
    before = hashes(run)
    m, t = resume(run)
    assert m.latest_checkpoint == str(run / "ckpt-2")
    report = m.restore()
    assert (report.save_path, report.outcome, t.value) == (
        str(run / "ckpt-2"),
        Outcome.RESTORED,
        2.0,
    )
    saved = m.save()
    assert saved == str(run / "ckpt-3")
    after = hashes(run)
    assert {k: after[k] for k in before} == before  # the intact ckpt-2 was not written over


def test_latest_outside_the_directory_is_ignored_and_step_order_applies(run: Path) -> None:
    outside = run.parent / "outside"
    outside.mkdir()
    write(outside, 7)
    write(run, 1)
    write_unrecorded(run, 2)
    state(run, 'model_checkpoint_path: "../outside/ckpt-7"', 'all_model_checkpoint_paths: "ckpt-1"')
    m, t = resume(run)
    assert m.latest_checkpoint == str(run / "ckpt-2")
    assert m.restore().save_path == str(run / "ckpt-2")
    assert t.value == 2.0
    m.save()
    assert (outside / "ckpt-7.index").exists()  # never followed, never deleted


# 2. Fallback follows the step, not the state file's order.


def test_fallback_walks_by_step_not_by_state_file_position(run: Path) -> None:
    for k in (1, 2, 3):
        write(run, k)
    state(
        run,
        'model_checkpoint_path: "ckpt-3"',
        *(f'all_model_checkpoint_paths: "ckpt-{k}"' for k in (2, 1, 3)),
    )
    shard = run / "ckpt-3.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:-4])
    m, t = resume(run)
    report = m.restore()
    assert report.outcome is Outcome.FELL_BACK
    assert report.save_path == str(run / "ckpt-2")
    assert t.value == 2.0
    assert [d.checkpoint for d in report.skipped] == [str(run / "ckpt-3")]


# 3. Every spelling of a path is one identity.


@pytest.mark.parametrize(
    "spelling",
    ["./ckpt-1", "{d}//ckpt-1", "{d}/./ckpt-1", "../run/ckpt-1", "{d}/ckpt-1", "ckpt-1"],
)
def test_every_spelling_of_a_state_path_names_one_checkpoint(run: Path, spelling: str) -> None:
    write(run, 0)
    write(run, 1)
    recorded = spelling.format(d=run)
    state(
        run,
        f'model_checkpoint_path: "{recorded}"',
        f'all_model_checkpoint_paths: "{run}/./ckpt-0"',
        f'all_model_checkpoint_paths: "{recorded}"',
        f"all_model_checkpoint_timestamps: {time.time() - 2}",
        f"all_model_checkpoint_timestamps: {time.time() - 1}",
    )
    before = hashes(run)
    m, t = resume(run)
    assert m.latest_checkpoint == str(run / "ckpt-1")
    assert sorted(m.checkpoints) == [str(run / "ckpt-0"), str(run / "ckpt-1")]
    assert m.restore().save_path == str(run / "ckpt-1")
    assert t.value == 1.0
    assert m.save() == str(run / "ckpt-2")
    after = hashes(run)
    assert {k: after[k] for k in before} == before


def test_another_machines_absolute_paths_are_reanchored_by_base_name(run: Path) -> None:
    write(run, 1)
    write(run, 2)
    state(
        run,
        'model_checkpoint_path: "/home/other/run/ckpt-1"',
        'all_model_checkpoint_paths: "/home/other/run/ckpt-1"',
    )
    m, _t = resume(run)
    # The state file's latest (re-anchored) comes first: it may be a rewind.
    assert m.latest_checkpoint == str(run / "ckpt-1")
    assert m.restore().save_path == str(run / "ckpt-1")
    assert any("re-anchored" in n for n in m.last_restore.notes)  # type: ignore[union-attr]


# 4. Two managers (a "latest" and a "best") sharing one directory and its state file.


def test_two_names_sharing_a_directory_lose_nothing(run: Path) -> None:
    write_unrecorded(run, 1)
    write(run, 5)
    write(run, 1, name="best")
    before = hashes(run)
    m, t = resume(run, max_to_keep=2)
    assert m.latest_checkpoint == str(run / "ckpt-5")
    assert m.restore().save_path == str(run / "ckpt-5")
    assert t.value == 5.0
    new = m.save()
    assert new not in (str(run / "ckpt-5"), str(run / "ckpt-1"))
    after = hashes(run)
    assert {k: after[k] for k in before} == before  # ckpt-5, ckpt-1 and best-1 all kept
    fresh, t2 = resume(run)
    assert fresh.latest_checkpoint == new
    fresh.restore()
    assert t2.value == 5.0


def test_the_other_names_checkpoints_never_enter_the_rotation(run: Path) -> None:
    for k in (1, 2):
        write(run, k, name="best")
    write(run, 3)
    m, _t = resume(run, max_to_keep=1)
    m.restore()
    for _ in range(3):
        m.save()
    assert (run / "best-1.index").exists() and (run / "best-2.index").exists()
    assert not any("best" in p for p in m.checkpoints)


# 5. latest_checkpoint names only complete checkpoints.


@pytest.mark.parametrize("lost", [".index", ".data-00000-of-00001"])
def test_latest_checkpoint_skips_a_checkpoint_with_a_file_gone(run: Path, lost: str) -> None:
    for k in (1, 2, 3):
        write(run, k)
    (run / f"ckpt-3{lost}").unlink()
    m, t = resume(run)
    assert m.latest_checkpoint == str(run / "ckpt-2")
    report = m.restore()
    assert report.save_path == str(run / "ckpt-2") and t.value == 2.0
    assert report.outcome is Outcome.FELL_BACK  # what TF would restore was skipped
    assert [d.checkpoint for d in report.skipped] == [str(run / "ckpt-3")]


# 6. Nothing of a garbled state file counts.


def test_a_state_file_without_model_checkpoint_path_in_an_empty_directory_is_empty(
    run: Path,
) -> None:
    state(run, 'all_model_checkpoint_paths: "ckpt-1"')
    m, _t = resume(run)
    assert m.latest_checkpoint is None
    report = m.restore()
    assert report.outcome is Outcome.INITIALIZED
    assert report.reason is None


def test_a_repeated_model_checkpoint_path_is_read_as_tensorflow_reads_it(
    run: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(run, 1)
    write(run, 2)
    state(
        run,
        'model_checkpoint_path: "ckpt-2"',
        'all_model_checkpoint_paths: "ckpt-1"',
        'all_model_checkpoint_paths: "ckpt-2"',
        'model_checkpoint_path: "ckpt-1"',
    )
    assert tf.train.get_checkpoint_state(str(run)).model_checkpoint_path.endswith("ckpt-1")
    m, _t = resume(run)
    assert m.latest_checkpoint == str(run / "ckpt-1")  # the last one wins, as in TF
    report = m.restore()
    assert report.save_path == str(run / "ckpt-1")
    assert any("appears 2 times" in n for n in report.notes)


# 7. Another checkpoint_name: only when the manager's own name has no checkpoint.


def test_state_files_latest_of_another_name_applies_only_without_our_name(run: Path) -> None:
    write(run, 3, name="model")
    m, t = resume(run)
    assert m.latest_checkpoint == str(run / "model-3")
    report = m.restore()
    assert report.save_path == str(run / "model-3") and t.value == 3.0
    assert any("checkpoint_name='model'" in n for n in report.notes)
    write(run, 1)  # now the manager's own name has a checkpoint: it wins over model-3
    m, t = resume(run)
    write(run, 4, name="model")  # the state file now names model-4
    m, t = resume(run)
    assert m.restore().save_path == str(run / "ckpt-1")


# 8. Housekeeping never removes files of a checkpoint the state file listed.


def test_cleanup_temp_keeps_the_data_of_a_listed_checkpoint_that_lost_its_index(
    run: Path,
) -> None:
    for k in (1, 2, 3):
        write(run, k)
    (run / "ckpt-2.index").unlink()
    old = time.time() - 3600
    os.utime(run / "ckpt-2.data-00000-of-00001", (old, old))
    m, _t = resume(run, cleanup_temp=True)
    m.restore()
    m.save()
    m.save()
    assert (run / "ckpt-2.data-00000-of-00001").exists()


# The numbering rule and retention.


def test_an_explicit_colliding_checkpoint_number_is_honoured_with_a_warning(
    run: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(run, 1)
    m, t = resume(run)
    m.restore()
    t.set(9)
    with caplog.at_level(logging.WARNING, "safeckpt"):
        assert m.save(checkpoint_number=1) == str(run / "ckpt-1")
    assert "writes over the existing" in caplog.text


def test_a_fresh_run_next_to_old_checkpoints_numbers_above_them(run: Path) -> None:
    for k in (1, 2):
        write(run, k)
    before = hashes(run)
    t = Trainee()
    m = manager(t, run)
    assert m.save() == str(run / "ckpt-3")  # plain TF would write ckpt-1 over the old one
    after = hashes(run)
    assert {k: after[k] for k in before} == before


def test_retention_never_deletes_the_restored_checkpoint_for_newer_unrecorded_ones(
    run: Path,
) -> None:
    write_unrecorded(run, 1)
    write(run, 5)
    m, _t = resume(run, max_to_keep=2)
    m.restore()
    m.save()
    assert (run / "ckpt-5.index").exists()


def test_an_explicit_rewind_keeps_the_newer_checkpoints_out_of_the_rotation(run: Path) -> None:
    for k in (1, 2, 3):
        write(run, k)
    m, _t = resume(run, max_to_keep=2)
    m.restore(str(run / "ckpt-1"))
    for _ in range(3):
        m.save()
    # Saves ckpt-4, 5, 6 rotate; ckpt-2 and ckpt-3 (newer than the rewind) are kept.
    assert (run / "ckpt-2.index").exists() and (run / "ckpt-3.index").exists()
    assert m.checkpoints == [str(run / "ckpt-5"), str(run / "ckpt-6")]


def test_an_interrupted_save_newer_than_the_state_file_comes_first(run: Path) -> None:
    write(run, 1)
    write(run, 2)
    time.sleep(0.01)
    write_unrecorded(run, 3)  # killed between the index and the state write
    m, _t = resume(run)
    assert m.latest_checkpoint == str(run / "ckpt-3")
    assert m.restore().save_path == str(run / "ckpt-3")


def test_a_copied_back_checkpoint_with_a_lower_step_never_jumps_the_queue(run: Path) -> None:
    for k in (1, 2, 3):
        write(run, k)
    for p in run.glob("ckpt-1.*"):
        os.utime(p)  # copied back: fresh mtime, newer than the state file
    m, _t = resume(run)
    assert m.latest_checkpoint == str(run / "ckpt-3")


# Also broken before: errors, state file as a directory.


def test_no_usable_checkpoint_is_also_a_not_found_error(run: Path) -> None:
    for k in (1, 2):
        write(run, k)
    for k in (1, 2):
        shard = run / f"ckpt-{k}.data-00000-of-00001"
        shard.write_bytes(shard.read_bytes()[:-4])
    m, _t = resume(run)
    # The seed article's handler.
    with pytest.raises(tf.errors.NotFoundError) as raised:
        m.restore(m.latest_checkpoint)
    assert isinstance(raised.value, NoUsableCheckpointError)
    assert isinstance(raised.value, CheckpointCorruptedError)
    assert isinstance(raised.value, tf.errors.DataLossError)
    assert raised.value.diagnosis is not None
    assert len(raised.value.attempts) == 2


def test_a_state_file_that_is_a_directory_allows_restoring_and_refuses_saving(
    run: Path,
) -> None:
    write(run, 1)
    (run / "checkpoint").unlink()
    (run / "checkpoint").mkdir()
    m, t = resume(run)
    assert m.restore().save_path == str(run / "ckpt-1") and t.value == 1.0
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(SaveError, match="is a directory") as raised:
        m.save()
    assert raised.value.diagnosis is not None
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written
    (run / "checkpoint").rmdir()
    assert m.save() == str(run / "ckpt-2")


def test_diagnosing_a_mistyped_directory_is_directory_missing_and_skips_quarantine(
    tmp_path: Path,
) -> None:
    import safeckpt

    d = tmp_path / "job" / "checkpoints"
    d.mkdir(parents=True)
    write(d, 1)
    (tmp_path / "job" / "quarantine").mkdir()
    write(tmp_path / "job" / "quarantine", 2)
    found = safeckpt.diagnose(str(tmp_path / "job" / "checkpoint"))
    assert found.cause is safeckpt.Cause.DIRECTORY_MISSING
    text = " ".join(found.suggestions)
    assert f"did you mean {d}" in text
    assert "quarantine" not in text
    assert "first run of this job, this is expected" not in str(found)


def test_an_interrupted_save_is_judged_against_its_own_names_steps(run: Path) -> None:
    write(run, 7, name="best")
    write(run, 5)  # the "ckpt" manager inherits best-7 in the state file
    time.sleep(0.01)
    write_unrecorded(run, 6)  # killed before its state write; best-7's step is irrelevant
    m, t = resume(run)
    assert m.latest_checkpoint == str(run / "ckpt-6")
    assert m.restore().save_path == str(run / "ckpt-6") and t.value == 6.0
