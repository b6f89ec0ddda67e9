"""The main flows on ``ram://``, so that nothing assumes a local filesystem.

Save, inventory, verify, diagnose, fallback restore, quarantine, cleanup and the CLI run on
TensorFlow's in-memory filesystem. Damage is done through `tf.io.gfile` only.

Two properties of TF's RAM filesystem matter (both verified on TF 2.21):

* Opening an existing file for writing *appends* to it instead of truncating, so rewriting
  a file means removing it first (see `rewrite`).
* ``exists``/``isdir`` match any name prefix (``ram://x/ru`` "is" a directory when
  ``ram://x/run/...`` exists), and ``stat`` reports an mtime of 0.

Tests that compare with a local directory run both (`location` fixture). Several began as
strict xfails for the ``ram://`` bugs these quirks caused; they are regression tests now.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import tensorflow as tf

import safeckpt
from safeckpt import (
    Cause,
    CheckpointDirectoryError,
    CheckpointNotFoundError,
    Outcome,
    SafeCheckpointManager,
)
from safeckpt._cli.main import main
from testing.checkpoints import Trainee

DATA = ".data-00000-of-00001"


def unique_ram() -> str:
    return f"ram://safeckpt-test-{uuid.uuid4().hex}/run"


@pytest.fixture
def ram_dir(chdir_tmp: Path) -> Iterator[str]:
    """A unique ram:// directory (not created); the cwd is an empty tmp directory."""
    directory = unique_ram()
    yield directory
    root = directory.rsplit("/", 1)[0]
    if tf.io.gfile.exists(root):
        tf.io.gfile.rmtree(root)


@pytest.fixture(params=["local", "ram"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same scenario on a local directory and on ram://."""
    if request.param == "local":
        yield str(tmp_path / "run")
        return
    directory = unique_ram()
    yield directory
    tf.io.gfile.rmtree(directory.rsplit("/", 1)[0])


def save_values(directory: str, values: tuple[float, ...] = (1, 2, 3), **kwargs: object) -> None:
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, directory, max_to_keep=None, **kwargs)
    for value in values:
        trainee.set(value)
        manager.save()


def read(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as handle:
        return bytes(handle.read())


def rewrite(path: str, data: bytes) -> None:
    """Replace a file's content (remove first: TF's RAM filesystem appends on reopen)."""
    tf.io.gfile.remove(path)
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(data)


def truncate(prefix: str) -> None:
    data = read(prefix + DATA)
    rewrite(prefix + DATA, data[: len(data) // 2])


def flip_first_tensor_byte(prefix: str) -> None:
    data = bytearray(read(prefix + DATA))
    # Same length: only a CRC check notices. The first tensor, not the object graph (written
    # last), which even the quick check reads.
    data[0] ^= 0xFF
    rewrite(prefix + DATA, bytes(data))


def names(directory: str) -> list[str]:
    return sorted(n.rstrip("/") for n in tf.io.gfile.listdir(directory))


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# Save, inventory, verify, diagnose --------------------------------------------------------


def test_save_inventory_verify_diagnose(ram_dir: str, chdir_tmp: Path) -> None:
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, ram_dir + "/", max_to_keep=None)
    assert manager.directory == ram_dir + "/"  # the string given, as TensorFlow's manager
    assert manager.created_directory
    saved = []
    for k in (1, 2, 3):
        trainee.set(k)
        saved.append(manager.save())
    prefixes = [f"{ram_dir}/ckpt-{k}" for k in (1, 2, 3)]
    assert saved == prefixes
    assert manager.latest_checkpoint == prefixes[-1]

    infos = safeckpt.list_checkpoints(ram_dir)
    assert [i.prefix for i in infos] == prefixes
    assert [i.step for i in infos] == [1, 2, 3]
    assert all(i.complete and i.in_state_file and not i.problems for i in infos)
    assert all(i.size_bytes > 0 for i in infos)

    for prefix in prefixes:
        assert safeckpt.verify(prefix).ok
        deep = safeckpt.verify(prefix, deep=True)
        assert deep.ok and "deep check" in deep.summary

    for diagnosis in (safeckpt.diagnose(ram_dir), manager.diagnose(deep=True)):
        assert diagnosis.cause is Cause.HEALTHY
        assert diagnosis.checkpoint == prefixes[-1]
        assert [c.prefix for c in diagnosis.candidates] == prefixes[::-1]
    assert os.listdir(chdir_tmp) == [], "a ram:// path touched the local working directory"


def test_restore_and_max_to_keep(ram_dir: str, chdir_tmp: Path) -> None:
    save_values(ram_dir, (1, 2, 3))
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, ram_dir, max_to_keep=2)
    report = manager.restore()
    assert (report.outcome, report.save_path, trainee.value) == (
        Outcome.RESTORED,
        f"{ram_dir}/ckpt-3",
        3.0,
    )
    trainee.set(4)
    assert manager.save() == f"{ram_dir}/ckpt-4"
    assert names(ram_dir) == [
        ".safeckpt-writer-ckpt",  # the writer lease, replaced through a new file and a rename
        "checkpoint",
        f"ckpt-3{DATA}",
        "ckpt-3.index",
        "ckpt-3.safeckpt.json",  # the metadata files beside each checkpoint
        f"ckpt-4{DATA}",
        "ckpt-4.index",
        "ckpt-4.safeckpt.json",
    ]
    again = Trainee()
    assert SafeCheckpointManager(again.checkpoint, ram_dir, 2).restore_or_initialize() == (
        f"{ram_dir}/ckpt-4"
    )
    assert again.value == 4.0
    assert os.listdir(chdir_tmp) == []


@pytest.mark.parametrize("on_empty", ["initialize", "raise"])
def test_empty_ram_directory(ram_dir: str, on_empty: str) -> None:
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, ram_dir, 2, on_empty=on_empty)
    if on_empty == "raise":
        with pytest.raises(CheckpointNotFoundError, match=ram_dir):
            manager.restore()
    else:
        assert manager.restore().outcome is Outcome.INITIALIZED


# Damage and fallback ---------------------------------------------------------------------


def test_truncated_newest_falls_back(ram_dir: str, chdir_tmp: Path) -> None:
    save_values(ram_dir)
    truncate(f"{ram_dir}/ckpt-3")
    assert safeckpt.verify(f"{ram_dir}/ckpt-3").cause is Cause.TRUNCATED_DATA
    diagnosis = safeckpt.diagnose(ram_dir)
    assert diagnosis.cause is Cause.TRUNCATED_DATA
    assert diagnosis.candidates[0].prefix == f"{ram_dir}/ckpt-2"

    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, ram_dir, max_to_keep=5)
    report = manager.restore()
    assert report.outcome is Outcome.FELL_BACK
    assert report.requested == f"{ram_dir}/ckpt-3"
    assert report.save_path == f"{ram_dir}/ckpt-2"
    assert [d.cause for d in report.skipped] == [Cause.TRUNCATED_DATA]
    assert trainee.value == 2.0
    assert manager.latest_checkpoint == f"{ram_dir}/ckpt-2"
    assert os.listdir(chdir_tmp) == []


def test_missing_index_and_truncation_fall_back_twice(ram_dir: str) -> None:
    save_values(ram_dir)
    tf.io.gfile.remove(f"{ram_dir}/ckpt-3.index")
    truncate(f"{ram_dir}/ckpt-2")
    trainee = Trainee()
    report = SafeCheckpointManager(trainee.checkpoint, ram_dir, 5).restore()
    assert report.save_path == f"{ram_dir}/ckpt-1"
    assert [d.cause for d in report.skipped] == [Cause.MISSING_INDEX, Cause.TRUNCATED_DATA]
    assert trainee.value == 1.0


def test_deep_verification_catches_a_flipped_byte(ram_dir: str) -> None:
    save_values(ram_dir)
    flip_first_tensor_byte(f"{ram_dir}/ckpt-3")
    assert safeckpt.verify(f"{ram_dir}/ckpt-3").ok  # sizes are intact
    assert safeckpt.verify(f"{ram_dir}/ckpt-3", deep=True).cause is Cause.CORRUPT_DATA
    trainee = Trainee()
    report = SafeCheckpointManager(trainee.checkpoint, ram_dir, 5, verify="deep").restore()
    assert report.outcome is Outcome.FELL_BACK
    assert [d.cause for d in report.skipped] == [Cause.CORRUPT_DATA]
    assert trainee.value == 2.0


def test_quarantine_on_ram(ram_dir: str) -> None:
    save_values(ram_dir)
    truncate(f"{ram_dir}/ckpt-3")
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, ram_dir, 5, quarantine=True)
    report = manager.restore()
    assert report.save_path == f"{ram_dir}/ckpt-2"
    assert any("quarantine" in note for note in report.notes)
    assert not any(n.startswith("ckpt-3") for n in names(ram_dir))
    assert names(f"{ram_dir}/quarantine") == [
        f"ckpt-3{DATA}",
        "ckpt-3.index",
        "ckpt-3.safeckpt.json",  # the metadata file moves with its checkpoint
    ]
    # Training goes on: the next save is healthy and is what a new process restores.
    trainee.set(10)
    saved = manager.save()
    assert safeckpt.verify(saved, deep=True).ok
    again = Trainee()
    assert SafeCheckpointManager(again.checkpoint, ram_dir, 5).restore().save_path == saved
    assert again.value == 10.0


def test_save_after_fallback_is_restorable(ram_dir: str) -> None:
    # Regression: the next save reuses the damaged checkpoint's number (ckpt-3), and TF's RAM
    # filesystem appends to existing files; safeckpt moves the damaged files aside first.
    save_values(ram_dir)
    truncate(f"{ram_dir}/ckpt-3")
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, ram_dir, 5)
    assert manager.restore().outcome is Outcome.FELL_BACK
    trainee.set(10)
    saved = manager.save()
    assert safeckpt.verify(saved, deep=True).ok
    again = Trainee()
    report = SafeCheckpointManager(again.checkpoint, ram_dir, 5).restore()
    assert (report.outcome, report.save_path, again.value) == (Outcome.RESTORED, saved, 10.0)


def test_newer_checkpoint_missing_from_the_state_file(
    location: str, request: pytest.FixtureRequest
) -> None:
    """A crash between writing ckpt-3 and the state file: ckpt-3 is still restored."""
    # Regression: ram:// reports no mtimes; the step order decides what is newer then.
    trainee = Trainee()
    manager = tf.train.CheckpointManager(trainee.checkpoint, location, max_to_keep=None)
    for k in (1, 2):
        trainee.set(k)
        manager.save()
    state = read(f"{location}/checkpoint")
    trainee.set(3)
    manager.save()
    rewrite(f"{location}/checkpoint", state)  # as if the process died before the state write
    if not location.startswith("ram://"):
        old = os.stat(f"{location}/ckpt-3.index").st_mtime - 60
        os.utime(f"{location}/checkpoint", (old, old))
    again = Trainee()
    report = SafeCheckpointManager(again.checkpoint, location, 5).restore()
    assert report.save_path == f"{location}/ckpt-3"
    assert again.value == 3.0


# Housekeeping ----------------------------------------------------------------------------


def test_cleanup_temp(location: str, request: pytest.FixtureRequest) -> None:
    # Regression: ram:// reports no mtimes; leftovers are then ordered by step.
    save_values(location, (1, 2))
    # An earlier attempt at step 1 that died mid-save; TF never reuses it after ckpt-2.
    leftover_dir = f"{location}/ckpt-1_temp"
    tf.io.gfile.makedirs(leftover_dir)
    with tf.io.gfile.GFile(f"{leftover_dir}/part-00000-of-00001{DATA}", "wb") as handle:
        handle.write(b"partial")
    if not location.startswith("ram://"):
        os.utime(leftover_dir, (1_000_000, 1_000_000))
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, location, 5, cleanup_temp=True)
    assert manager.restore().save_path == f"{location}/ckpt-2"
    trainee.set(3)
    assert manager.save() == f"{location}/ckpt-3"
    assert "ckpt-1_temp" not in names(location)
    assert "ckpt-1.index" in names(location)


# Paths that are prefixes, not directories ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cause"),
    [("ckpt-3", Cause.HEALTHY), ("ckpt-2", Cause.MISSING_INDEX), ("ckpt", Cause.STEP_NOT_FOUND)],
)
def test_diagnose_a_prefix(
    location: str, request: pytest.FixtureRequest, name: str, cause: Cause
) -> None:
    save_values(location)
    tf.io.gfile.remove(f"{location}/ckpt-2.index")
    diagnosis = safeckpt.diagnose(f"{location}/{name}")
    assert diagnosis.cause is cause
    assert diagnosis.checkpoint == f"{location}/{name}"
    assert diagnosis.directory == location


def test_restore_the_save_prefix_without_step(
    location: str, request: pytest.FixtureRequest
) -> None:
    save_values(location)
    manager = SafeCheckpointManager(Trainee().checkpoint, location, 5)
    with pytest.raises(CheckpointNotFoundError) as info:
        manager.restore(f"{location}/ckpt")
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.STEP_NOT_FOUND
    assert info.value.diagnosis.checkpoint == f"{location}/ckpt"


def test_truncated_directory_name_is_missing(location: str, request: pytest.FixtureRequest) -> None:
    save_values(location)
    with pytest.raises(CheckpointDirectoryError) as info:
        SafeCheckpointManager(Trainee().checkpoint, location[:-1], 5, create_directory=False)
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.DIRECTORY_MISSING


# State file paths ------------------------------------------------------------------------


def test_sweep_never_deletes_another_ram_directory(ram_dir: str) -> None:
    other = unique_ram()
    save_values(other, (10, 20, 30))
    before = {n: read(f"{other}/{n}") for n in names(other)}
    save_values(ram_dir, (1,))
    state = read(f"{ram_dir}/checkpoint").decode()
    foreign = "".join(f'all_model_checkpoint_paths: "{other}/ckpt-{k}"\n' for k in (1, 2, 3))
    rewrite(f"{ram_dir}/checkpoint", (state + foreign).encode())
    assert safeckpt.diagnose(ram_dir).cause is Cause.STATE_FILE_FOREIGN_PATHS
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, ram_dir, max_to_keep=1)
    for k in range(4):
        trainee.set(100 + k)
        manager.save()
    assert {n: read(f"{other}/{n}") for n in names(other)} == before
    tf.io.gfile.rmtree(other.rsplit("/", 1)[0])


# Command line ----------------------------------------------------------------------------


def test_cli_on_ram(ram_dir: str, chdir_tmp: Path) -> None:
    save_values(ram_dir)
    code, out, _err = run_cli("ls", ram_dir)
    assert code == 0
    assert out.splitlines()[0] == f"{ram_dir}: 3 checkpoints"
    assert all(f"ckpt-{k}" in out for k in (1, 2, 3))
    assert "state file: latest ckpt-3" in out

    code, out, _err = run_cli("ls", "--json", ram_dir)
    listing = json.loads(out)
    assert code == 0 and listing["directory"] == ram_dir
    assert [c["status"] for c in listing["checkpoints"]] == ["ok", "ok", "ok"]

    assert run_cli("doctor", ram_dir)[0] == 0
    assert run_cli("verify", "--deep", ram_dir)[0] == 0

    truncate(f"{ram_dir}/ckpt-3")
    code, out, _err = run_cli("doctor", ram_dir)
    assert code == 1 and "[truncated_data]" in out
    code, out, _err = run_cli("verify", ram_dir)
    assert code == 1 and f"FAIL {ram_dir}/ckpt-3" in out
    code, out, _err = run_cli("repair", ram_dir)
    assert code == 0
    assert read(f"{ram_dir}/checkpoint").decode().startswith('model_checkpoint_path: "ckpt-2"')
    assert os.listdir(chdir_tmp) == []


def test_cli_ls_does_not_invent_a_date(ram_dir: str) -> None:
    save_values(ram_dir)
    code, out, _err = run_cli("ls", ram_dir)
    assert code == 0
    assert "1970" not in out
