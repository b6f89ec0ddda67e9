"""Many processes, one directory: the multi-process harness (`stress.concurrency`), small.

``make stress`` runs every scenario at full size (``python -m stress.concurrency``); here each
runs for a few seconds. Every worker is a separate OS process; the oracle decides from facts
recorded at write time (each save's values encode its step; sha256 of every file) and never
calls safeckpt. Plain TensorFlow runs the same scenario in the same test, for comparison.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import Cause, CheckpointNotFoundError, Outcome, SafeCheckpointManager
from safeckpt._catalog.inventory import scan
from safeckpt._cli.main import main
from safeckpt._format.statefile import read_state
from stress import crash
from stress.concurrency import _scenarios
from testing.checkpoints import RotatedWhileRead, rotating_trainer

pytestmark = pytest.mark.slow

needs_strace = pytest.mark.skipif(
    not crash.strace_available(), reason="strace is not installed or may not trace"
)


def test_workers_starting_together_on_fresh_nested_paths(tmp_path: Path) -> None:
    # 8 processes released together by a barrier, each round on a path nobody created yet.
    figures = _scenarios.construction(str(tmp_path), rounds=60)
    assert figures.ok, figures.table()
    assert figures.counts["safeckpt"]["constructions and saves"] == 8 * 60
    assert figures.counts["tf"]["constructions and saves"] == 8 * 60


@needs_strace
def test_a_directory_created_meanwhile_is_never_a_file(tmp_path: Path) -> None:
    # Every system call on the path is slowed down (strace), so two questions about it see
    # two moments; another process keeps creating and removing it. Before the fix, asking
    # "is it a directory?" then "does it exist?" called it a file dozens of times a second.
    figures = _scenarios.slow_directory(str(tmp_path), seconds=1.5)
    assert figures.ok, figures.table()
    counts = figures.counts["safeckpt"]
    assert counts["directory flips"] > 20
    assert counts["construction: directory_missing"] > 0  # the oracle saw both states


def test_an_evaluator_never_goes_back_while_a_trainer_saves(tmp_path: Path) -> None:
    # A trainer saves as fast as it can with max_to_keep=2; one evaluator restores in a
    # loop, another polls a new manager's latest_checkpoint; plain TF alongside.
    figures = _scenarios.evaluator(str(tmp_path), seconds=4.0)
    assert figures.ok, figures.table()
    safe = figures.counts["safeckpt"]
    assert safe["trainer: saves"] > 20
    assert safe["restorer: decisions"] > 20 and safe["poller: decisions"] > 20
    assert figures.counts["tf"]["restorer: decisions"] > 20


def test_doctor_on_a_busy_healthy_directory_exits_0(tmp_path: Path) -> None:
    figures = _scenarios.busy_doctor(str(tmp_path), seconds=4.0)
    assert figures.ok, figures.table()
    assert figures.counts["safeckpt"]["doctor runs"] > 10
    assert figures.counts["safeckpt"]["trainer: saves"] > 10


def test_a_second_writer_is_refused_and_the_first_loses_nothing(tmp_path: Path) -> None:
    figures = _scenarios.two_writers(str(tmp_path), saves=3, tries=3)
    assert figures.ok, figures.table()
    safe, plain = figures.counts["safeckpt"], figures.counts["tf"]
    assert safe["running: second writer refused"] == 3
    assert safe["running: second writer's saves"] == 0
    assert safe["preempted: second writer's saves"] == 3  # a preempted job's lease: taken over
    assert plain["running: second writer's saves"] == 3  # plain TF lets both write


def test_the_harness_counts_a_file_deleted_under_it_as_lost(tmp_path: Path) -> None:
    # With plain TF the other writer's rotation deletes files between listing and hashing
    # (a CI run caught the harness raising FileNotFoundError there): a loss, not a crash.
    from stress.concurrency import _oracle

    (tmp_path / "ckpt-1.index").write_bytes(b"written")
    (tmp_path / "ckpt-2.index").write_bytes(b"written")
    digest = _oracle.file_hash(str(tmp_path / "ckpt-1.index"))
    assert _oracle.file_hash_or_gone(str(tmp_path / "missing")) == _oracle.GONE
    hashes = {1: {"ckpt-1.index": digest}, 2: {"ckpt-2.index": _oracle.GONE}}
    (tmp_path / "ckpt-1.index").unlink()
    lost = _oracle.first_writer_losses(str(tmp_path), hashes, ["ckpt-1", "ckpt-2"])
    assert lost == ["ckpt-1.index is gone", "ckpt-2.index is gone"]


# --- A consistent snapshot per decision (finding 4) ---------------------------------------


def _write_run(directory: Path, steps: int) -> tf.train.Checkpoint:
    """ckpt-1..steps with plain TF (value k in ckpt-k), then ckpt-<steps+1> written but not
    recorded: a save interrupted before its state write, newer than the state file."""
    v = tf.Variable(0.0)
    checkpoint = tf.train.Checkpoint(v=v)
    manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=None)
    for k in range(1, steps + 1):
        v.assign(float(k))
        manager.save()
    v.assign(float(steps + 1))
    checkpoint.write(str(directory / f"ckpt-{steps + 1}"))
    return checkpoint


def test_a_manager_never_goes_back_when_the_state_file_changes_under_it(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    _write_run(directory, 4)
    v = tf.Variable(-1.0)
    evaluator = SafeCheckpointManager(
        tf.train.Checkpoint(v=v), directory, max_to_keep=2, read_only=True
    )
    first = evaluator.restore()
    assert first.step == 5 and float(v.numpy()) == 5.0  # the interrupted save is the newest
    assert evaluator.latest_checkpoint == str(directory / "ckpt-5")
    # Another process's state write lands: the state file is now newer than ckpt-5, which
    # it does not list (what a reader that took the text and the time at two moments saw).
    state = directory / "checkpoint"
    later = os.stat(directory / "ckpt-5.index").st_mtime + 5
    os.utime(state, (later, later))
    second = evaluator.restore()
    assert second.step == 5 and float(v.numpy()) == 5.0, second
    assert any("stays the newest" in note for note in second.notes)
    assert evaluator.latest_checkpoint == str(directory / "ckpt-5")
    # A new manager has no history: the rule alone decides (ckpt-4, as documented).
    fresh = SafeCheckpointManager(tf.train.Checkpoint(v=v), directory, 2, read_only=True)
    assert fresh.latest_checkpoint == str(directory / "ckpt-4")
    # Gone, it no longer holds the manager back.
    for name in os.listdir(directory):
        if name.startswith("ckpt-5."):
            os.remove(directory / name)
    assert evaluator.restore().step == 4


def test_an_explicit_rewind_lowers_the_floor(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    _write_run(directory, 4)
    v = tf.Variable(-1.0)
    manager = SafeCheckpointManager(tf.train.Checkpoint(v=v), directory, 2, read_only=True)
    assert manager.restore(str(directory / "ckpt-2")).step == 2
    state = directory / "checkpoint"
    later = os.stat(directory / "ckpt-5.index").st_mtime + 5
    os.utime(state, (later, later))
    assert manager.restore().step == 4  # the rule's newest, ckpt-5 is not held any more


def test_the_state_file_time_belongs_to_the_text_read(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    _write_run(directory, 2)
    state = read_state(str(directory))
    assert state.mtime == os.stat(directory / "checkpoint").st_mtime_ns / 1e9
    assert state.raw == (directory / "checkpoint").read_bytes()
    inventory = scan(str(directory))
    assert inventory.state_mtime() == state.mtime
    assert not inventory.state_changed()
    # TensorFlow replaces the file by a rename: the inventory notices, its time stays.
    tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), str(directory), 5).save()
    assert inventory.state_changed()
    assert inventory.state_mtime() == state.mtime


# --- A candidate removed mid-restore (finding 5) ------------------------------------------


def test_a_checkpoint_rotated_away_while_restored_is_not_damage(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    trainer = rotating_trainer(directory, 2)  # ckpt-1, ckpt-2
    v = tf.Variable(-1.0)
    evaluator = RotatedWhileRead(trainer, saves=2, times=1, v=v)  # ckpt-3, ckpt-4 rotate 1, 2
    manager = SafeCheckpointManager(evaluator, directory, max_to_keep=2, read_only=True)
    report = manager.restore()
    # The newest that exists now, not an older one from the old listing, and no "fell back".
    assert report.step == 4 and float(v.numpy()) == 4.0, report
    assert report.outcome is Outcome.RESTORED and report.skipped == ()
    assert any("ckpt-2 was removed by another process" in n for n in report.notes), report
    assert manager.latest_checkpoint == str(directory / "ckpt-4")
    # Plain TF in the same situation: the restore of what it listed fails.
    trainer2 = rotating_trainer(tmp_path / "tf", 2)
    plain = RotatedWhileRead(trainer2, saves=2, times=1, v=tf.Variable(-1.0))
    with pytest.raises(tf.errors.NotFoundError):
        plain.restore(tf.train.latest_checkpoint(str(tmp_path / "tf"))).assert_consumed()


def test_a_restore_that_keeps_losing_its_candidates_says_why(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    trainer = rotating_trainer(directory, 2)
    evaluator = RotatedWhileRead(trainer, saves=2, times=100, v=tf.Variable(-1.0))
    manager = SafeCheckpointManager(evaluator, directory, max_to_keep=2, read_only=True)
    with pytest.raises(CheckpointNotFoundError) as info:
        manager.restore()
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.REMOVED_CONCURRENTLY
    assert "another process deleted it" in str(info.value)
    assert info.value.attempts == ()  # nothing was damaged


# --- A save in flight is not damage (finding 6) -------------------------------------------


def _doctor(directory: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["doctor", str(directory)], stdout=out)
    return code, out.getvalue()


def _save_in_flight(directory: Path, step: int, stage: str) -> None:
    """The files another process's save of `step` has written so far (TensorFlow's order:
    data into ``<prefix>_temp/``, the data moved out, the index, ``_temp`` removed, the state
    file written through ``checkpoint.tmp<random>``)."""
    v = tf.Variable(float(step))
    source = directory / "inflight" / f"ckpt-{step}"
    tf.train.Checkpoint(v=v).write(str(source))
    temp = directory / f"ckpt-{step}_temp"
    if stage == "data":  # the data is being written inside _temp/
        temp.mkdir()
        shutil.copy(
            f"{source}.data-00000-of-00001",
            temp / "part-00000-of-00001.data-00000-of-00001.tempstate1",
        )
    elif stage == "index":  # the data moved out, the index not written yet
        temp.mkdir()
        shutil.copy(f"{source}.data-00000-of-00001", directory / f"ckpt-{step}.data-00000-of-00001")
    elif stage == "state":  # complete; the state file is being written
        for suffix in (".index", ".data-00000-of-00001"):
            shutil.copy(f"{source}{suffix}", directory / f"ckpt-{step}{suffix}")
        (directory / "checkpoint.tmp8d3f0a").write_text((directory / "checkpoint").read_text())
    shutil.rmtree(directory / "inflight")


@pytest.mark.parametrize("stage", ["data", "index", "state"])
def test_doctor_on_a_save_in_progress_exits_0(ckpt_dir: Path, stage: str) -> None:
    _save_in_flight(ckpt_dir, 4, stage)
    code, text = _doctor(ckpt_dir)
    assert code == 0, text
    assert "ckpt-4 is being written (a save in progress" in text
    assert "leftover of an interrupted save" not in text
    # The same files an hour later are the remains of an interrupted save.
    hour_ago = time.time() - 3600
    for path in ckpt_dir.iterdir():
        if path.name.startswith(("ckpt-4", "checkpoint.tmp")):
            os.utime(path, (hour_ago, hour_ago))
    code, text = _doctor(ckpt_dir)
    if stage == "state":  # a complete checkpoint the state file missed: restore finds it
        assert code == 1 and "state_file_stale" in text, text
    else:
        assert code == 1 and "incomplete_save" in text, text
