"""A full disk during a save: `SaveError` (``disk_full``) with both numbers, nothing left over.

Real ENOSPC from a small tmpfs mounted for the test (as root; skipped with the reason where
mounting is not allowed), real TensorFlow saves. What is on disk is compared, file by file
(name, size, BLAKE2 hash), before and after.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import Cause, SafeCheckpointManager, SaveError
from testing.mounts import tmpfs

ELEMENTS = 75_000  # 300 KB of float32: one checkpoint
MOUNT_BYTES = 1 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted at ``tmp_path/small``, unmounted afterwards."""
    with tmpfs(tmp_path / "small", MOUNT_BYTES) as where:
        yield where


def _model() -> tuple[tf.Variable, tf.train.Checkpoint]:
    v = tf.Variable(tf.zeros([ELEMENTS]), name="v")
    return v, tf.train.Checkpoint(v=v)


def _files(directory: Path) -> dict[str, tuple[int, str]]:
    """Every entry but the writer lease (refreshed before each save writes anything)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if path.name == ".safeckpt-writer-ckpt":
            continue
        if path.is_file():
            digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
            out[str(path.relative_to(directory))] = (path.stat().st_size, digest)
        elif path.is_dir():
            out[str(path.relative_to(directory)) + "/"] = (0, "")
    return out


def _fill(directory: Path, leave: int) -> Path:
    """A filler file that leaves about `leave` bytes free."""
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    filler = directory / "filler"
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_raises_disk_full_and_leaves_the_rotation_as_it_was(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = small_disk / "ckpts"
    v, checkpoint = _model()
    manager = SafeCheckpointManager(checkpoint, directory, max_to_keep=1)
    v.assign(tf.fill([ELEMENTS], 1.0))
    assert manager.save() == f"{directory}/ckpt-1"
    newest = sum(p.stat().st_size for p in directory.glob("ckpt-1.*"))
    filler = _fill(small_disk, leave=100_000)
    before = _files(directory)
    v.assign(tf.fill([ELEMENTS], 2.0))
    with pytest.raises(SaveError) as info:
        manager.save()
    diagnosis = info.value.diagnosis
    assert diagnosis is not None and diagnosis.cause is Cause.DISK_FULL
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    assert f"bytes needed: {newest} " in diagnosis.evidence[0]
    assert f"bytes free: {free}" in diagnosis.evidence[0]  # after the cleanup
    assert _files(directory) == before  # ckpt-1, the state file and the lease, unchanged
    assert int(checkpoint.save_counter.numpy()) == 1
    assert manager.latest_checkpoint == f"{directory}/ckpt-1"
    assert manager.checkpoints == [f"{directory}/ckpt-1"]
    # A TensorFlow save into the same directory would have left its partial files.
    filler.unlink()
    assert manager.save() == f"{directory}/ckpt-2"  # the same number, once there is room
    restored, target = _model()
    target.restore(f"{directory}/ckpt-2").assert_consumed()
    assert float(restored[0]) == 2.0


def test_plain_tensorflow_leaves_partial_files_on_a_full_disk(small_disk: Path) -> None:
    # The comparison: what TF's own manager leaves in the same situation.
    directory = small_disk / "plain"
    _v, checkpoint = _model()
    manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=1)
    manager.save()
    _fill(small_disk, leave=100_000)
    before = _files(directory)
    with pytest.raises(tf.errors.OpError):
        manager.save()
    after = _files(directory)
    assert after != before
    assert any(name.startswith("ckpt-2") for name in after)
    assert int(checkpoint.save_counter.numpy()) == 2


def test_construction_warns_when_the_next_save_cannot_fit(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = small_disk / "ckpts"
    _v, checkpoint = _model()
    SafeCheckpointManager(checkpoint, directory, max_to_keep=1).save()
    newest = sum(p.stat().st_size for p in directory.glob("ckpt-1.*"))
    with caplog.at_level(logging.WARNING, "safeckpt"):
        SafeCheckpointManager(_model()[1], directory, max_to_keep=1)
    assert "bytes free" not in caplog.text  # there is room: no warning
    _fill(small_disk, leave=100_000)
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    with caplog.at_level(logging.WARNING, "safeckpt"):
        SafeCheckpointManager(_model()[1], directory, max_to_keep=1)
    assert f"has {free} bytes free, less than the {newest} bytes" in caplog.text


def test_the_construction_check_never_lists_the_directory(
    small_disk: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Construction stays O(1) next to many checkpoints (docs/benchmarks.md): the newest is
    # the one the state file names, measured from its own files, never found by a listing.
    directory = small_disk / "ckpts"
    _v, checkpoint = _model()
    SafeCheckpointManager(checkpoint, directory, max_to_keep=None).save()
    for k in range(2, 40):  # small, older-looking leftovers a listing would have to read
        (directory / f"ckpt-{k}_temp").mkdir()
    newest = sum(p.stat().st_size for p in directory.glob("ckpt-1.*"))
    _fill(small_disk, leave=100_000)
    listed: list[str] = []

    def refuse(path: object = ".") -> list[str]:
        listed.append(str(path))
        raise AssertionError(f"construction listed {path}")

    monkeypatch.setattr(os, "listdir", refuse)
    monkeypatch.setattr(os, "scandir", refuse)
    with caplog.at_level(logging.WARNING, "safeckpt"):
        SafeCheckpointManager(_model()[1], directory, max_to_keep=1)
    monkeypatch.undo()
    assert listed == []
    assert f"less than the {newest} bytes" in caplog.text
