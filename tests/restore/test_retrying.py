"""`StorageRetry` (what a restore does when the storage cannot serve a checkpoint).

The end-to-end behaviour (503 storms, dropped downloads, a server that is down) is tested
against TensorFlow's real gs:// client in tests/integration/test_gcs_faults.py; these are the
policy's own rules and the inventory's cost rules that need no server.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tensorflow as tf

import safeckpt
from safeckpt import SafeCheckpointManager, StorageRetry, StorageUnavailableError
from safeckpt._catalog.inventory import scan
from testing.checkpoints import Trainee, write_checkpoints


def test_delays_grow_and_stop_after_the_last_attempt() -> None:
    retry = StorageRetry(attempts=4, initial_delay=0.5, multiplier=3.0, max_delay=2.0)
    assert [retry.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 2.0, None]
    assert StorageRetry(attempts=1).delay(1) is None
    assert StorageRetry().fall_back is False


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"attempts": 0}, ValueError, "attempts=0"),
        ({"attempts": 2.5}, TypeError, "attempts=2.5"),
        ({"attempts": True}, TypeError, "attempts=True"),
        ({"initial_delay": -1}, ValueError, "initial_delay=-1"),
        ({"max_delay": "1"}, ValueError, "max_delay='1'"),
        ({"fall_back": "yes"}, TypeError, "fall_back='yes'"),
    ],
)
def test_bad_values_name_the_argument(
    kwargs: dict[str, object], error: type, fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        StorageRetry(**kwargs)  # type: ignore[arg-type]


def test_the_manager_rejects_a_storage_retry_of_the_wrong_type(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"storage_retry=3: expected a safeckpt.StorageRetry"):
        SafeCheckpointManager(Trainee().checkpoint, tmp_path, 3, storage_retry=3)  # type: ignore[arg-type]


def test_storage_unavailable_error_is_caught_as_tensorflow_unavailable() -> None:
    assert issubclass(StorageUnavailableError, tf.errors.UnavailableError)
    assert issubclass(StorageUnavailableError, safeckpt.RestoreError)
    assert StorageUnavailableError("x").error_code == tf.errors.UNAVAILABLE


def test_scan_reads_names_only_and_stats_on_request(tmp_path: Path) -> None:
    write_checkpoints(tmp_path, 3)
    plain = scan(str(tmp_path))
    assert [c.step for c in plain.checkpoints] == [1, 2, 3]
    assert all(c.size_bytes is None and c.mtime is None for c in plain.checkpoints)  # unmeasured
    newest = plain.checkpoints[-1]
    expected = max(os.stat(tmp_path / f).st_mtime_ns for f in newest.files) / 1e9
    assert plain.mtime_of(newest) == pytest.approx(expected)
    full = plain.with_stats()
    assert [c.size_bytes for c in full.checkpoints] == [
        sum((tmp_path / f).stat().st_size for f in c.files) for c in full.checkpoints
    ]
    assert all(c.mtime is not None for c in full.checkpoints)


def test_the_manager_reconciles_on_first_use_not_at_construction(tmp_path: Path) -> None:
    write_checkpoints(tmp_path, 2)
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, max_to_keep=5)
    # A save by another process between construction and first use is seen by the rule.
    writer = Trainee()
    writer.set(3.0)
    tf.train.CheckpointManager(writer.checkpoint, str(tmp_path), max_to_keep=5).save(
        checkpoint_number=3
    )
    assert manager.latest_checkpoint == str(tmp_path / "ckpt-3")
    # The rotation stays what TensorFlow read at construction: ckpt-3 is kept out of it
    # (never deleted by this manager's saves), as a checkpoint another writer made.
    assert str(tmp_path / "ckpt-3") not in manager.checkpoints
    report = manager.restore()
    assert report.save_path == str(tmp_path / "ckpt-3")
    assert trainee.value == 3.0
