"""Directory validation at construction (safeckpt/_catalog/directory.py)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import Cause, CheckpointDirectoryError, SafeCheckpointManager
from safeckpt._catalog.directory import validate_directory
from testing.checkpoints import Trainee, write_checkpoints
from testing.privileges import run_unprivileged


def test_missing_directory_is_created_and_logged(
    tmp_path: Path, trainee: Trainee, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "a" / "b" / "ckpts"
    with caplog.at_level(logging.INFO, logger="safeckpt"):
        manager = SafeCheckpointManager(trainee.checkpoint, target, max_to_keep=2)
    assert target.is_dir()
    assert manager.created_directory is True
    assert any(
        str(target) in r.getMessage() and "Created" in r.getMessage() for r in caplog.records
    )


def test_existing_directory_is_not_reported_as_created(tmp_path: Path, trainee: Trainee) -> None:
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, max_to_keep=2)
    assert manager.created_directory is False
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".safeckpt-probe")]


def test_missing_directory_without_create_names_sibling(ckpt_dir: Path, trainee: Trainee) -> None:
    typo = ckpt_dir.parent / "checkpoint"  # the user meant .../checkpoints
    with pytest.raises(CheckpointDirectoryError) as info:
        SafeCheckpointManager(trainee.checkpoint, typo, max_to_keep=2, create_directory=False)
    error = info.value
    assert error.diagnosis is not None
    assert error.diagnosis.cause is Cause.DIRECTORY_MISSING
    text = str(error)
    assert f"did you mean {ckpt_dir} (3 checkpoints, newest ckpt-3 written" in text
    assert f"nearest existing ancestor is {ckpt_dir.parent}" in text
    assert not typo.exists()


def test_missing_directory_read_only_is_not_created(tmp_path: Path, trainee: Trainee) -> None:
    target = tmp_path / "nope" / "deeper"
    with pytest.raises(CheckpointDirectoryError, match="read_only=True") as info:
        SafeCheckpointManager(trainee.checkpoint, target, max_to_keep=2, read_only=True)
    assert not (tmp_path / "nope").exists()
    assert info.value.diagnosis is not None
    assert f"nearest existing ancestor is {tmp_path}" in str(info.value)


def test_near_miss_two_levels_down(tmp_path: Path, trainee: Trainee) -> None:
    real = tmp_path / "exp" / "run1" / "ckpts"
    write_checkpoints(real, 2)
    with pytest.raises(CheckpointDirectoryError) as info:
        SafeCheckpointManager(
            trainee.checkpoint, tmp_path / "exp" / "run2" / "ckpts", 2, create_directory=False
        )
    assert f"did you mean {real}" in str(info.value)


def test_directory_that_is_a_file(tmp_path: Path, trainee: Trainee) -> None:
    target = tmp_path / "model.ckpt"
    target.write_text("x")
    with pytest.raises(CheckpointDirectoryError) as info:
        SafeCheckpointManager(trainee.checkpoint, target, max_to_keep=2)
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.NOT_A_DIRECTORY
    assert f"directory={str(tmp_path)!r}" in str(info.value)


@pytest.mark.parametrize("suffix", [".index", ".data-00000-of-00001"])
def test_directory_that_is_a_checkpoint_file(ckpt_dir: Path, trainee: Trainee, suffix: str) -> None:
    target = ckpt_dir / f"ckpt-2{suffix}"
    with pytest.raises(CheckpointDirectoryError) as info:
        SafeCheckpointManager(trainee.checkpoint, target, max_to_keep=2)
    text = str(info.value)
    assert f"checkpoint file of the prefix {ckpt_dir / 'ckpt-2'}" in text
    assert f"directory={str(ckpt_dir)!r}" in text


def test_directory_that_is_the_state_file(ckpt_dir: Path, trainee: Trainee) -> None:
    with pytest.raises(CheckpointDirectoryError, match="state file") as info:
        SafeCheckpointManager(trainee.checkpoint, ckpt_dir / "checkpoint", max_to_keep=2)
    assert f"directory={str(ckpt_dir)!r}" in str(info.value)


def test_ram_directory_is_created_and_usable(trainee: Trainee) -> None:
    manager = SafeCheckpointManager(trainee.checkpoint, "ram://safeckpt-dir-test/a", 2)
    assert tf.io.gfile.isdir("ram://safeckpt-dir-test/a")
    trainee.set(5)
    path = manager.save()
    assert path == "ram://safeckpt-dir-test/a/ckpt-1"
    assert manager.latest_checkpoint == path


def test_ram_missing_without_create() -> None:
    with pytest.raises(CheckpointDirectoryError, match="does not exist"):
        validate_directory("ram://safeckpt-missing/x", create=False, read_only=False)


def test_unreachable_gcs_is_an_error_not_an_empty_directory(trainee: Trainee) -> None:
    # No network here: TensorFlow's own manager would log "Checkpoint ignored" and start fresh.
    with pytest.raises(CheckpointDirectoryError) as info:
        SafeCheckpointManager(trainee.checkpoint, "gs://safeckpt-no-such-bucket/run", 2)
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.STORAGE_UNAVAILABLE


def test_diagnosis_is_json_serializable(tmp_path: Path, trainee: Trainee) -> None:
    with pytest.raises(CheckpointDirectoryError) as info:
        SafeCheckpointManager(trainee.checkpoint, tmp_path / "x", 2, create_directory=False)
    assert info.value.diagnosis is not None
    data = json.loads(info.value.diagnosis.to_json())
    assert data["cause"] == "directory_missing"
    assert data["directory"] == str(tmp_path / "x")


def test_unwritable_directory_is_rejected_unless_read_only(unprivileged: Path) -> None:
    out = run_unprivileged(
        f"""
base = pathlib.Path({str(unprivileged)!r}) / "ro"
base.mkdir()
ckpt = tf.train.Checkpoint(v=tf.Variable(1.0))
tf.train.CheckpointManager(ckpt, str(base), 2).save()
base.chmod(0o555)
try:
    safeckpt.SafeCheckpointManager(ckpt, base, 2)
    print("constructed")
except safeckpt.CheckpointDirectoryError as e:
    print(json.dumps(e.diagnosis.to_dict()))
m = safeckpt.SafeCheckpointManager(ckpt, base, 2, read_only=True)
print("READONLY", m.latest_checkpoint)
"""
    )
    lines = out.strip().splitlines()
    data = json.loads(lines[0])
    assert data["cause"] == "permission_denied"
    assert "not writable" in data["summary"]
    assert lines[1] == f"READONLY {unprivileged / 'ro' / 'ckpt-1'}"


def test_unlistable_directory_is_rejected(unprivileged: Path) -> None:
    out = run_unprivileged(
        f"""
base = pathlib.Path({str(unprivileged)!r}) / "locked"
base.mkdir()
base.chmod(0o300)
try:
    safeckpt.SafeCheckpointManager(tf.train.Checkpoint(), base, 2, read_only=True)
    print("constructed")
except safeckpt.CheckpointDirectoryError as e:
    print(e.diagnosis.cause.value)
"""
    )
    assert out.strip() == "permission_denied"


def test_uncreatable_directory(unprivileged: Path) -> None:
    out = run_unprivileged(
        f"""
base = pathlib.Path({str(unprivileged)!r}) / "parent"
base.mkdir()
base.chmod(0o555)
try:
    safeckpt.SafeCheckpointManager(tf.train.Checkpoint(), base / "child", 2)
    print("constructed")
except safeckpt.CheckpointDirectoryError as e:
    print(e.diagnosis.cause.value, os.path.exists(base / "child"))
"""
    )
    assert out.strip() == "permission_denied False"


def test_root_is_not_fooled_by_mode_bits(tmp_path: Path, trainee: Trainee) -> None:
    if os.geteuid() != 0:
        pytest.skip("only meaningful as root: root can write into a 0555 directory")
    target = tmp_path / "r"
    target.mkdir()
    target.chmod(0o555)
    try:
        manager = SafeCheckpointManager(trainee.checkpoint, target, 2)
        assert manager.save() == str(target / "ckpt-1")
    finally:
        target.chmod(0o755)
