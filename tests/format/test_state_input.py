"""The ``checkpoint`` state file is input: paths in it never lead outside the directory.

Rule (docs/diagnostics.md, ``state_file_foreign_paths``): a recorded path that points outside
the managed directory (absolute elsewhere, ``../..``, another URI, a Windows path) is not
followed. It is reported by `diagnose` as ``state_file_foreign_paths`` and re-anchored to
``<directory>/<base name>`` only when a checkpoint of that base name exists in the directory.
Above all, the ``max_to_keep`` sweep never deletes files outside the directory.

State files are written the way TensorFlow writes them (a `CheckpointState` text proto with
timestamps), so TensorFlow's own manager would put every recorded path into its sweep.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.python.training import checkpoint_state_pb2

import safeckpt
from safeckpt import Cause, Outcome, SafeCheckpointManager
from testing.checkpoints import Trainee, write_checkpoints


def write_state(directory: Path, paths: Sequence[str], latest: str | None = None) -> bytes:
    """Write `directory`/checkpoint recording `paths` (oldest first) as TensorFlow does.

    Timestamps are recent and newer than ``last_preserved_timestamp``, so that
    `tf.train.CheckpointManager` puts every recorded path into its ``max_to_keep`` sweep.
    """
    now = time.time()
    state = checkpoint_state_pb2.CheckpointState(
        model_checkpoint_path=latest if latest is not None else paths[-1],
        all_model_checkpoint_paths=list(paths),
        all_model_checkpoint_timestamps=[now - 60 + i for i in range(len(paths))],
        last_preserved_timestamp=now - 3600,
    )
    raw = text_format.MessageToString(state).encode()
    (directory / "checkpoint").write_bytes(raw)
    return raw


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(local, other): local holds ckpt-1..3 (1,2,3); other holds ckpt-1..6 (10..60)."""
    local = tmp_path / "run" / "ckpts"
    other = tmp_path / "other" / "ckpts"
    write_checkpoints(local, 3)
    trainee = Trainee()
    manager = tf.train.CheckpointManager(trainee.checkpoint, str(other), max_to_keep=None)
    for k in range(1, 7):
        trainee.set(10 * k)
        manager.save()
    return local, other


# Forms in which a state file records a checkpoint of `other`.
FOREIGN_FORMS: dict[str, Callable[[Path, Path, str], str]] = {
    "absolute": lambda local, other, base: str(other / base),
    "dotdot": lambda local, other, base: f"../../other/ckpts/{base}",
    "file-uri": lambda local, other, base: f"file://{other / base}",
    "subdir-escape": lambda local, other, base: f"sub/../../../other/ckpts/{base}",
}


@pytest.mark.parametrize("form", sorted(FOREIGN_FORMS))
def test_paths_into_another_directory_are_not_followed(
    dirs: tuple[Path, Path], form: str, caplog: pytest.LogCaptureFixture
) -> None:
    local, other = dirs
    recorded = [FOREIGN_FORMS[form](local, other, f"ckpt-{k}") for k in (4, 5, 6)]
    raw = write_state(local, recorded)
    if form != "file-uri":  # sanity: TensorFlow itself follows these paths
        followed = tf.train.latest_checkpoint(str(local))
        assert followed is not None
        assert os.path.normpath(followed) == str(other / "ckpt-6")

    diagnosis = safeckpt.diagnose(local)
    assert diagnosis.cause is Cause.STATE_FILE_FOREIGN_PATHS
    for path in recorded:
        assert any(repr(path) in line and "not followed" in line for line in diagnosis.evidence)
    assert all(c.prefix.startswith(str(local)) for c in diagnosis.candidates)

    trainee = Trainee()
    with caplog.at_level(logging.WARNING, logger="safeckpt"):
        manager = SafeCheckpointManager(trainee.checkpoint, local, max_to_keep=5)
        latest = manager.latest_checkpoint  # the state is reconciled (and reported) on first use
    assert latest == str(local / "ckpt-3")
    assert all(p.startswith(str(local) + os.sep) for p in manager.checkpoints)
    assert any(recorded[-1] in r.getMessage() for r in caplog.records), "not reported"

    report = manager.restore()
    assert report.save_path == str(local / "ckpt-3")
    assert trainee.value == 3.0  # never 40/50/60 from the other directory
    assert (local / "checkpoint").read_bytes() == raw  # input, not rewritten by a restore


@pytest.mark.parametrize("form", sorted(FOREIGN_FORMS))
def test_foreign_paths_are_reanchored_when_the_base_name_exists_here(
    dirs: tuple[Path, Path], form: str
) -> None:
    local, other = dirs  # other/ckpt-1..3 hold 10, 20, 30; local/ckpt-1..3 hold 1, 2, 3
    recorded = [FOREIGN_FORMS[form](local, other, f"ckpt-{k}") for k in (1, 2, 3)]
    write_state(local, recorded)

    diagnosis = safeckpt.diagnose(local)
    assert diagnosis.cause is Cause.STATE_FILE_FOREIGN_PATHS
    for k, path in zip((1, 2, 3), recorded, strict=True):
        assert f"{path!r}: re-anchored to {local / f'ckpt-{k}'}." in "\n".join(diagnosis.evidence)

    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, local, max_to_keep=5)
    assert manager.checkpoints == [str(local / f"ckpt-{k}") for k in (1, 2, 3)]
    report = manager.restore()
    assert report.outcome is Outcome.RESTORED
    assert report.save_path == str(local / "ckpt-3")
    assert trainee.value == 3.0  # the local checkpoint, not other/ckpt-3 (30.0)
    assert any("re-anchored" in note and recorded[-1] in note for note in report.notes)


def test_reanchoring_is_per_path(dirs: tuple[Path, Path]) -> None:
    """Only the base names that exist here are re-anchored; the rest are not followed."""
    local, other = dirs
    (local / "ckpt-3.index").unlink()
    (local / "ckpt-3.data-00000-of-00001").unlink()
    write_state(local, [str(other / "ckpt-2"), str(other / "ckpt-3")])

    evidence = "\n".join(safeckpt.diagnose(local).evidence)
    assert f"{str(other / 'ckpt-2')!r}: re-anchored to {local / 'ckpt-2'}." in evidence
    assert f"{str(other / 'ckpt-3')!r}: no checkpoint of that name exists here" in evidence

    trainee = Trainee()
    report = SafeCheckpointManager(trainee.checkpoint, local, max_to_keep=5).restore()
    assert report.save_path == str(local / "ckpt-2")
    assert trainee.value == 2.0  # not other/ckpt-3 (30.0)


@pytest.mark.parametrize(
    ("recorded", "reanchored"),
    [
        ("C:\\train\\run\\ckpt-3", True),
        ("D:/train/ckpt-3", True),
        ("\\\\server\\share\\ckpts\\ckpt-3", True),
        ("C:\\train\\run\\ckpt-9", False),
        ("gs://bucket/run/ckpt-3", True),
        ("ram://elsewhere/ckpt-9", False),
    ],
)
def test_windows_paths_and_other_uris(ckpt_dir: Path, recorded: str, reanchored: bool) -> None:
    # The foreign path replaces ckpt-3 when it names it, else it comes after it.
    write_state(ckpt_dir, ["ckpt-1", "ckpt-2", *([] if reanchored else ["ckpt-3"]), recorded])

    diagnosis = safeckpt.diagnose(ckpt_dir)
    assert diagnosis.cause is Cause.STATE_FILE_FOREIGN_PATHS
    expected = f"re-anchored to {ckpt_dir / 'ckpt-3'}" if reanchored else "not followed"
    assert any(repr(recorded) in e and expected in e for e in diagnosis.evidence)

    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, ckpt_dir, max_to_keep=5)
    report = manager.restore()
    assert report.save_path == str(ckpt_dir / "ckpt-3")
    assert trainee.value == 3.0


@pytest.mark.parametrize("recorded", ["../ckpts/ckpt-3", "./ckpt-3", "{dir}/ckpt-3"])
def test_paths_that_resolve_inside_the_directory_are_not_foreign(
    tmp_path: Path, recorded: str
) -> None:
    local = tmp_path / "ckpts"
    write_checkpoints(local, 3)
    write_state(local, ["ckpt-1", "ckpt-2", recorded.format(dir=local)])
    diagnosis = safeckpt.diagnose(local)
    assert diagnosis.cause is Cause.HEALTHY
    assert not any("outside" in e for e in diagnosis.evidence)


@pytest.mark.parametrize("form", sorted(FOREIGN_FORMS))
@pytest.mark.parametrize("local_has_checkpoints", [True, False], ids=["local-ckpts", "empty"])
@pytest.mark.parametrize("restore_first", [True, False], ids=["restore", "no-restore"])
def test_max_to_keep_never_deletes_outside_the_directory(
    dirs: tuple[Path, Path], form: str, local_has_checkpoints: bool, restore_first: bool
) -> None:
    local, other = dirs
    if not local_has_checkpoints:
        shutil.rmtree(local)
        local.mkdir()
    # ckpt-1..3 exist here too (re-anchored when present); ckpt-4..6 exist only in `other`.
    recorded = [FOREIGN_FORMS[form](local, other, f"ckpt-{k}") for k in range(1, 7)]
    write_state(local, recorded)
    outside = files_of(other)

    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, local, max_to_keep=1)
    if restore_first:
        manager.restore()
    saved = []
    for k in range(5):
        trainee.set(100 + k)
        saved.append(manager.save())

    assert files_of(other) == outside, "the sweep deleted or changed files outside"
    assert all(safeckpt.verify(str(other / f"ckpt-{k}")).ok for k in range(1, 7))
    # The sweep did work inside the directory.
    indexes = sorted(p.name for p in local.glob("*.index"))
    assert indexes == [os.path.basename(saved[-1]) + ".index"]
    assert manager.checkpoints == [saved[-1]]


def test_control_plain_tensorflow_sweeps_outside_files(dirs: tuple[Path, Path]) -> None:
    """What the previous test protects against: TF's own manager deletes them."""
    local, other = dirs
    write_state(local, [str(other / f"ckpt-{k}") for k in range(4, 7)])
    trainee = Trainee()
    manager = tf.train.CheckpointManager(trainee.checkpoint, str(local), max_to_keep=1)
    manager.save()
    assert not (other / "ckpt-4.index").exists()


def test_foreign_latest_only(dirs: tuple[Path, Path]) -> None:
    """A state file whose only entry is a foreign model_checkpoint_path (TF1 Saver style)."""
    local, other = dirs
    state = checkpoint_state_pb2.CheckpointState(model_checkpoint_path=str(other / "ckpt-6"))
    (local / "checkpoint").write_text(text_format.MessageToString(state))

    diagnosis = safeckpt.diagnose(local)
    assert diagnosis.cause is Cause.STATE_FILE_FOREIGN_PATHS
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, local, max_to_keep=1)
    assert manager.restore().save_path == str(local / "ckpt-3")
    assert trainee.value == 3.0
    trainee.set(7)
    manager.save()
    assert (other / "ckpt-6.index").exists()


def test_explicit_restore_of_another_directory_is_exact(dirs: tuple[Path, Path]) -> None:
    """The rule is about the state file; an explicit save_path elsewhere is honoured."""
    local, other = dirs
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, local, max_to_keep=5)
    report = manager.restore(str(other / "ckpt-5"))
    assert report.save_path == str(other / "ckpt-5")
    assert trainee.value == 50.0
