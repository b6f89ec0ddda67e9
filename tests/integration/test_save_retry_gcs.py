"""Saves on gs:// that meet storage faults: retried, cleaned up, or refused (`save_retry`).

TensorFlow's real gs:// client against the GCS server of `testing.gcs` (fixtures in conftest).
Every test lists the bucket out of band before and after: a failed save leaves exactly what
was there (the state file and every earlier checkpoint untouched), a retried save adds only
its own checkpoint. TF's own per-request retries are short here (2); each test has a fresh
prefix.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import tensorflow as tf

from safeckpt import Cause, SafeCheckpointManager, SaveError, StorageRetry
from testing.checkpoints import Trainee
from testing.gcs import server as _gcs

Snapshot = dict[str, tuple[int, str, str]]
FAST = StorageRetry(attempts=4, initial_delay=0.05, multiplier=1.0)


def _snapshot(gcs: _gcs.GcsEmulator, directory: str) -> Snapshot:
    """name -> (size, md5, generation) of every object but the ``dir/`` markers."""
    base = gcs.object_name(directory) + "/"
    return {
        o.name.removeprefix(base): (o.size, o.md5, o.generation)
        for o in gcs.list_objects(base)
        if not o.name.endswith("/")
    }


def _started(gcs_dir: str, retry: Any = FAST, saves: int = 2) -> tuple[Trainee, Any]:
    """A manager that has saved ckpt-1..`saves` (value k in ckpt-k); the lease is written."""
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, gcs_dir, max_to_keep=3, save_retry=retry)
    for k in range(1, saves + 1):
        trainee.set(k)
        manager.save()
    return trainee, manager


def _restored_value(gcs_dir: str, prefix: str) -> float:
    """The value of `prefix` read back with plain TensorFlow (not safeckpt)."""
    return float(tf.train.load_checkpoint(prefix).get_tensor("w/.ATTRIBUTES/VARIABLE_VALUE")[0])


def _ckpt3_names() -> set[str]:
    return {"ckpt-3.index", "ckpt-3.data-00000-of-00001"}


def _assert_added_only_ckpt3(before: Snapshot, after: Snapshot) -> None:
    for name, facts in before.items():
        if name != "checkpoint":
            assert after.get(name) == facts, f"{name} changed"
    # Its metadata file too, unless the storm also failed that write (logged; the checkpoint
    # is as usable without it, docs/metadata.md).
    added = set(after) - set(before)
    assert added - {"ckpt-3.safeckpt.json"} == _ckpt3_names(), sorted(after)


def _assert_failed_cleanly(
    error: SaveError, manager: Any, trainee: Trainee, before: Snapshot, after: Snapshot, state: Any
) -> None:
    assert error.diagnosis is not None
    assert error.diagnosis.cause is Cause.STORAGE_UNAVAILABLE
    assert isinstance(error, tf.errors.OpError)
    assert after == before  # the state file and every checkpoint untouched, nothing added
    assert int(trainee.checkpoint.save_counter.numpy()) == 2  # as it was
    assert (manager.latest_checkpoint, manager.checkpoints) == state


def test_auto_retries_on_gs_only(gcs: _gcs.GcsEmulator, gcs_dir: str, tmp_path: Any) -> None:
    trainee = Trainee()
    remote = SafeCheckpointManager(trainee.checkpoint, gcs_dir, max_to_keep=2)
    local = SafeCheckpointManager(trainee.checkpoint, tmp_path, max_to_keep=2)
    off = SafeCheckpointManager(trainee.checkpoint, gcs_dir, max_to_keep=2, save_retry=None)
    assert remote.save_retry == StorageRetry()
    assert local.save_retry is None
    assert off.save_retry is None


#: Seed 11 (the longest storm, about 30 s) runs in make stress.
@pytest.mark.parametrize("seed", [pytest.param(11, marks=pytest.mark.stress), 12, 13, 14])
def test_a_503_storm_is_retried_or_leaves_the_bucket_as_it_was(
    gcs: _gcs.GcsEmulator, gcs_dir: str, seed: int
) -> None:
    trainee, manager = _started(gcs_dir, StorageRetry(attempts=6, initial_delay=0.05))
    before = _snapshot(gcs, gcs_dir)
    state = (manager.latest_checkpoint, manager.checkpoints)
    trainee.set(3)
    with gcs.fail(503, fraction=0.3, seed=seed) as storm:
        try:
            saved = manager.save()
        except SaveError as exc:
            saved, error = None, exc
    assert storm.fired > 0
    after = _snapshot(gcs, gcs_dir)
    if saved is None:
        _assert_failed_cleanly(error, manager, trainee, before, after, state)
    else:
        assert saved == f"{gcs_dir}/ckpt-3"
        _assert_added_only_ckpt3(before, after)
        assert _restored_value(gcs_dir, saved) == 3.0
        assert manager.checkpoints[-1] == saved


def test_a_failing_upload_is_retried_and_its_files_removed(
    gcs: _gcs.GcsEmulator, gcs_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    trainee, manager = _started(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    trainee.set(3)
    # The index upload fails more often than TF's own retries (2): the first attempt fails
    # after its data shard reached its final name.
    fault = gcs.fail(503, categories=("upload",), objects=r"ckpt-3\.index$", times=3)
    with fault, gcs.counting() as counts, caplog.at_level(logging.INFO, "safeckpt"):
        saved = manager.save()
    assert fault.fired == 3
    assert saved == f"{gcs_dir}/ckpt-3"
    assert "trying again" in caplog.text and "ckpt-3.data-00000-of-00001" in caplog.text
    assert counts()["delete"] >= 1  # the first attempt's data shard was removed
    _assert_added_only_ckpt3(before, _snapshot(gcs, gcs_dir))
    assert _restored_value(gcs_dir, saved) == 3.0
    assert int(trainee.checkpoint.save_counter.numpy()) == 3


def test_a_dropped_upload_is_retried(gcs: _gcs.GcsEmulator, gcs_dir: str) -> None:
    trainee, manager = _started(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    trainee.set(3)
    drop = gcs.drop_body(categories=("upload",), objects=r"ckpt-3", keep=0.0, times=3)
    with drop:
        saved = manager.save()
    assert drop.fired == 3
    assert saved == f"{gcs_dir}/ckpt-3"
    _assert_added_only_ckpt3(before, _snapshot(gcs, gcs_dir))
    assert _restored_value(gcs_dir, saved) == 3.0


def test_the_server_down_for_a_few_seconds_is_waited_out(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    trainee, manager = _started(gcs_dir, StorageRetry(attempts=8, initial_delay=0.5, multiplier=1))
    before = _snapshot(gcs, gcs_dir)
    trainee.set(3)
    down = gcs.refuse_connections()
    back = threading.Timer(2.0, down.clear)  # the proxy is another process: no GIL shared
    back.start()
    try:
        saved = manager.save()
    finally:
        back.join()
    assert saved == f"{gcs_dir}/ckpt-3"
    _assert_added_only_ckpt3(before, _snapshot(gcs, gcs_dir))
    assert _restored_value(gcs_dir, saved) == 3.0


def test_after_the_last_try_save_error_and_nothing_changed(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    trainee, manager = _started(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    state = (manager.latest_checkpoint, manager.checkpoints)
    trainee.set(3)
    # Every upload of ckpt-3's files fails: each of the 4 tries writes nothing that stays.
    with gcs.fail(503, categories=("upload",), objects=r"ckpt-3"), pytest.raises(SaveError) as info:
        manager.save()
    _assert_failed_cleanly(info.value, manager, trainee, before, _snapshot(gcs, gcs_dir), state)
    assert "after 4 tries" in str(info.value)
    # The training loop caught it and goes on: the next save gets the same number.
    assert manager.save() == f"{gcs_dir}/ckpt-3"
    _assert_added_only_ckpt3(before, _snapshot(gcs, gcs_dir))


def test_a_failing_state_file_write_records_the_complete_checkpoint_again(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    trainee, manager = _started(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    trainee.set(3)
    fault = gcs.fail(503, categories=("upload",), objects=r"/checkpoint\.tmp", times=3)
    with fault:
        saved = manager.save()
    assert saved == f"{gcs_dir}/ckpt-3"
    after = _snapshot(gcs, gcs_dir)
    _assert_added_only_ckpt3(before, after)
    assert b'model_checkpoint_path: "ckpt-3"' in gcs.read(f"{gcs_dir}/checkpoint")
    assert manager.checkpoints == [f"{gcs_dir}/ckpt-{k}" for k in (1, 2, 3)]


def test_a_state_file_that_cannot_be_written_removes_the_new_checkpoint(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    trainee, manager = _started(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    state = (manager.latest_checkpoint, manager.checkpoints)
    trainee.set(3)
    with (
        gcs.fail(503, categories=("upload",), objects=r"/checkpoint\.tmp"),
        pytest.raises(SaveError) as info,
    ):
        manager.save()
    _assert_failed_cleanly(info.value, manager, trainee, before, _snapshot(gcs, gcs_dir), state)


def test_a_permanent_error_is_not_retried(
    gcs: _gcs.GcsEmulator, gcs_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    plain_trainee = Trainee()
    plain = tf.train.CheckpointManager(plain_trainee.checkpoint, gcs_dir + "-tf", max_to_keep=3)
    for _ in (1, 2):
        plain.save()
    with (
        gcs.forbid(objects=r"ckpt-3") as refused_tf,
        pytest.raises(tf.errors.PermissionDeniedError),
    ):
        plain.save()
    trainee, manager = _started(gcs_dir)
    trainee.set(3)
    forbidden = gcs.forbid(objects=r"ckpt-3")
    with (
        forbidden,
        caplog.at_level(logging.WARNING),
        pytest.raises(tf.errors.PermissionDeniedError) as info,
    ):
        manager.save()
    assert not isinstance(info.value, SaveError)  # TensorFlow's own error, unchanged
    assert forbidden.fired == refused_tf.fired  # one try, as TensorFlow's own save
    assert "trying again" not in caplog.text


def test_a_retried_save_that_succeeds_costs_no_request_more(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    # save_retry="auto" (retries on gs://) against save_retry=None on the same bucket: the
    # retry's bookkeeping costs nothing while nothing fails. What a save costs against
    # TensorFlow's (the lease, the metadata file): test_gcs_faults.py, test_metadata_gcs.py.
    plain_dir, safe_dir = gcs_dir + "-noretry", gcs_dir + "-safe"
    trainee = Trainee()
    plain = SafeCheckpointManager(trainee.checkpoint, plain_dir, max_to_keep=2, save_retry=None)
    safe = SafeCheckpointManager(trainee.checkpoint, safe_dir, max_to_keep=2)
    assert safe.save_retry is not None and plain.save_retry is None
    for manager in (plain, safe):
        for k in (1, 2, 3):  # past the first saves: the rotation deletes from now on
            trainee.set(k)
            manager.save()
    for k in (4, 5):
        trainee.set(k)
        with gcs.counting() as tf_save:
            plain.save()
        with gcs.counting() as safe_save:
            safe.save()
        assert str(safe_save()) == str(tf_save())  # the same requests, category by category
