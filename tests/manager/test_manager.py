"""SafeCheckpointManager construction, options and save (safeckpt/_manager/manager.py)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import ReadOnlyError, SafeCheckpointManager
from testing.checkpoints import Trainee, tf_manager_parameters


def test_is_a_checkpoint_manager(tmp_path: Path, trainee: Trainee) -> None:
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, max_to_keep=3)
    assert isinstance(manager, tf.train.CheckpointManager)


def test_signature_starts_with_tf_parameters_in_order() -> None:
    ours = list(inspect.signature(SafeCheckpointManager.__init__).parameters.values())[1:]
    theirs = tf_manager_parameters()[1:]
    assert [(p.name, p.default) for p in ours[: len(theirs)]] == [
        (p.name, p.default) for p in theirs
    ]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in ours[: len(theirs)])
    extra = ours[len(theirs) :]
    assert extra, "safeckpt options exist"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extra)


def test_positional_arguments_like_tf(tmp_path: Path, trainee: Trainee) -> None:
    manager = SafeCheckpointManager(trainee.checkpoint, str(tmp_path), 2, None, "model")
    assert manager.save() == str(tmp_path / "model-1")
    assert manager.checkpoint_name == "model"


def test_relative_directory_is_absolute_and_cwd_independent(
    chdir_tmp: Path, trainee: Trainee
) -> None:
    manager = SafeCheckpointManager(trainee.checkpoint, "rel/ck", max_to_keep=2)
    assert manager.directory == str(chdir_tmp / "rel" / "ck")
    trainee.set(1)
    saved = manager.save()
    assert saved == str(chdir_tmp / "rel" / "ck" / "ckpt-1")
    os.chdir("/")
    again = SafeCheckpointManager(Trainee().checkpoint, chdir_tmp / "rel" / "ck", 2)
    assert again.latest_checkpoint == saved
    assert again.checkpoints == [saved]


def test_tilde_directory_goes_to_home_not_a_literal_folder(
    chdir_tmp: Path, trainee: Trainee, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = chdir_tmp / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    manager = SafeCheckpointManager(trainee.checkpoint, "~/exp1/ckpts", max_to_keep=2)
    assert manager.save() == str(home / "exp1" / "ckpts" / "ckpt-1")
    assert not (chdir_tmp / "~").exists()


def test_read_only_refuses_to_save(tmp_path: Path, trainee: Trainee) -> None:
    SafeCheckpointManager(trainee.checkpoint, tmp_path, 2).save()
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, 2, read_only=True)
    assert manager.read_only
    assert manager.latest_checkpoint == str(tmp_path / "ckpt-1")
    with pytest.raises(ReadOnlyError, match="read_only=True") as info:
        manager.save()
    assert isinstance(info.value, tf.errors.PermissionDeniedError)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".safeckpt-writer-ckpt",  # the first manager's writer lease
        "checkpoint",
        "ckpt-1.data-00000-of-00001",
        "ckpt-1.index",
        "ckpt-1.safeckpt.json",  # its metadata file
    ]


@pytest.mark.parametrize(
    ("content", "label"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "binary"),
        (b'all_model_checkpoint_paths: "x"', "no-latest"),
    ],
)
def test_unreadable_state_file_does_not_break_construction(
    tmp_path: Path, trainee: Trainee, content: bytes, label: str
) -> None:
    # TensorFlow's own manager raises ValueError / UnicodeDecodeError here.
    (tmp_path / "checkpoint").write_bytes(content)
    with pytest.raises((ValueError, UnicodeDecodeError)):
        tf.train.CheckpointManager(trainee.checkpoint, str(tmp_path), 2)
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, 2)
    assert manager.checkpoints == [], label
    assert manager.save() == str(tmp_path / "ckpt-1")


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"max_to_keep": 0}, ValueError, r"max_to_keep=0: expected a positive integer"),
        ({"max_to_keep": -1}, ValueError, r"max_to_keep=-1"),
        ({"max_to_keep": "3"}, ValueError, r"max_to_keep='3'"),
        ({"max_to_keep": True}, ValueError, r"max_to_keep=True"),
        ({"keep_checkpoint_every_n_hours": -1}, ValueError, r"keep_checkpoint_every_n_hours=-1"),
        ({"max_to_keep": 2.5}, ValueError, r"max_to_keep=2.5"),
        ({"checkpoint_name": "a/b"}, ValueError, r"checkpoint_name='a/b'"),
        ({"create_directory": "yes"}, TypeError, r"create_directory='yes'"),
        ({"read_only": 1}, TypeError, r"read_only=1"),
        ({"init_fn": 3}, TypeError, r"init_fn=3"),
    ],
)
def test_bad_arguments_name_themselves(
    tmp_path: Path, trainee: Trainee, kwargs: dict[str, object], error: type, pattern: str
) -> None:
    arguments: dict[str, object] = {"max_to_keep": 2, **kwargs}
    with pytest.raises(error, match=pattern):
        SafeCheckpointManager(trainee.checkpoint, tmp_path, **arguments)  # type: ignore[arg-type]


def test_checkpoint_argument_is_checked(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"checkpoint=None: expected a tf.train.Checkpoint"):
        SafeCheckpointManager(None, tmp_path, 2)


def test_interval_without_step_counter_is_tfs_error(tmp_path: Path, trainee: Trainee) -> None:
    with pytest.raises(ValueError, match="step_counter"):
        SafeCheckpointManager(trainee.checkpoint, tmp_path, 2, checkpoint_interval=5)


def test_attributes_other_tf_code_uses(tmp_path: Path, trainee: Trainee) -> None:
    # PreemptionCheckpointHandler branches on isinstance(CheckpointManager) and then uses
    # manager._checkpoint, .directory, .save() and .restore_or_initialize().
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, 2)
    assert manager._checkpoint is trainee.checkpoint
    assert manager.directory == str(tmp_path)
    assert manager.restore_or_initialize() is None
    trainee.set(4)
    path = manager.save()
    trainee.set(0)
    assert SafeCheckpointManager(trainee.checkpoint, tmp_path, 2).restore_or_initialize() == path
    assert trainee.value == 4.0
