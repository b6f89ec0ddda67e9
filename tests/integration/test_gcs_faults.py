"""safeckpt on gs://, through TensorFlow's own GCS client, against a GCS server on loopback.

The server (fake-gcs-server) and the counting, faulting proxy are `testing.gcs`; the fixtures
`gcs` and `gcs_dir` are in conftest. Every fault test lists the bucket before and after
(out of band, bypassing TF and the proxy) and asserts that no intact object was moved,
overwritten or deleted: the same names with the same generation and MD5, plus only what a
save added. TF's retries are short here (testing.gcs.server.RETRY_ENV), its stat cache the default
5 s; each test has a fresh prefix.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import pytest
import tensorflow as tf

import safeckpt
from safeckpt import (
    Cause,
    CheckpointDirectoryError,
    SafeCheckpointManager,
    StorageRetry,
    StorageUnavailableError,
)
from safeckpt._catalog.inventory import scan
from testing.checkpoints import Trainee
from testing.gcs import server as _gcs

NO_WAIT = StorageRetry(attempts=2, initial_delay=0.01)
Snapshot = dict[str, tuple[int, str, str]]


def _write_run(directory: str, steps: int = 3) -> None:
    """Plain TF saves ckpt-1..`steps` (ckpt-k holds the value k); all are kept."""
    trainee = Trainee()
    manager = tf.train.CheckpointManager(trainee.checkpoint, directory, max_to_keep=None)
    for k in range(1, steps + 1):
        trainee.set(k)
        manager.save()


def _snapshot(gcs: _gcs.GcsEmulator, directory: str) -> Snapshot:
    """Every object under `directory` but the empty ``dir/`` markers TF's makedirs writes
    (a save under a 503 storm may write the marker again: a new generation, no data)."""
    objects = gcs.list_objects(directory + "/")
    return {o.name: (o.size, o.md5, o.generation) for o in objects if not o.name.endswith("/")}


def _assert_kept(before: Snapshot, after: Snapshot, *, state_may_change: bool = False) -> None:
    """Every object of `before` is still there, unchanged (the state file may be rewritten)."""
    for name, facts in before.items():
        if state_may_change and name.endswith("/checkpoint"):
            continue
        assert name in after, f"{name} was deleted or moved"
        assert after[name] == facts, f"{name} was overwritten"


def _manager(directory: str, trainee: Trainee | None = None, **kwargs: object) -> Any:
    trainee = trainee or Trainee()
    kwargs.setdefault("storage_retry", NO_WAIT)
    return SafeCheckpointManager(trainee.checkpoint, directory, max_to_keep=5, **kwargs)


def _wait_for_stat_cache() -> None:
    time.sleep(5.2)  # TF's GCS stat cache keeps entries 5 s


# Construction ---------------------------------------------------------------------------


def test_construction_on_gs_costs_at_most_four_requests_more_than_tf_and_restores(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    _write_run(gcs_dir)
    trainee = Trainee()
    _wait_for_stat_cache()
    with gcs.counting() as plain:
        tf.train.CheckpointManager(trainee.checkpoint, gcs_dir, max_to_keep=5)
    _wait_for_stat_cache()
    with gcs.counting() as safe:
        manager = SafeCheckpointManager(trainee.checkpoint, gcs_dir, max_to_keep=5)
    assert safe().total <= plain().total + 4, (str(plain()), str(safe()))
    assert safe()["list"] <= 1
    assert manager.latest_checkpoint == f"{gcs_dir}/ckpt-3"


def _upload_run(gcs: _gcs.GcsEmulator, directory: str, steps: int, listed: int) -> None:
    """ckpt-1..`steps` uploaded out of band (copies of one real checkpoint), and a state file
    listing the newest `listed` of them, as TensorFlow writes it."""
    source = directory + "-source"
    _write_run(source, 1)
    index = gcs.read(f"{source}/ckpt-1.index")
    data = gcs.read(f"{source}/ckpt-1.data-00000-of-00001")
    for k in range(1, steps + 1):
        gcs.upload(f"{directory}/ckpt-{k}.index", index)
        gcs.upload(f"{directory}/ckpt-{k}.data-00000-of-00001", data)
    kept = range(steps - listed + 1, steps + 1)
    state = f'model_checkpoint_path: "ckpt-{steps}"\n' + "".join(
        f'all_model_checkpoint_paths: "ckpt-{k}"\n' for k in kept
    )
    gcs.upload(f"{directory}/checkpoint", state.encode())


@pytest.mark.parametrize("steps", [3, 150])
def test_construction_and_first_use_cost_do_not_grow_with_the_directory(
    gcs: _gcs.GcsEmulator, gcs_dir: str, steps: int
) -> None:
    _upload_run(gcs, gcs_dir, steps, listed=3)
    trainee = Trainee()
    _wait_for_stat_cache()
    with gcs.counting() as plain:
        tf.train.CheckpointManager(trainee.checkpoint, gcs_dir, max_to_keep=5)
    _wait_for_stat_cache()
    with gcs.counting() as construction:
        manager = SafeCheckpointManager(trainee.checkpoint, gcs_dir, max_to_keep=5)
    assert construction().total <= plain().total + 4, (str(plain()), str(construction()))
    with gcs.counting() as first_use:
        assert manager.latest_checkpoint == f"{gcs_dir}/ckpt-{steps}"
    # One listing (a page per 1,000 objects) and the state file: no request per checkpoint.
    assert first_use()["metadata"] + first_use()["media"] <= 3, str(first_use())
    assert first_use()["list"] <= 2, str(first_use())


def test_only_unlisted_newer_checkpoints_are_stated(gcs: _gcs.GcsEmulator, gcs_dir: str) -> None:
    _upload_run(gcs, gcs_dir, 150, listed=3)
    gcs.upload(f"{gcs_dir}/ckpt-151.index", gcs.read(f"{gcs_dir}/ckpt-150.index"))
    gcs.upload(f"{gcs_dir}/ckpt-151.data-00000-of-00001",
               gcs.read(f"{gcs_dir}/ckpt-150.data-00000-of-00001"))  # fmt: skip
    manager = _manager(gcs_dir)
    with gcs.counting() as first_use:
        # An interrupted save (newer than the state file, not listed) ranks first.
        assert manager.latest_checkpoint == f"{gcs_dir}/ckpt-151"
    # Its two files and the state file are stat'ed; the 150 others are not.
    assert first_use()["metadata"] <= 4, str(first_use())


def test_a_missing_bucket_is_a_directory_error(gcs: _gcs.GcsEmulator) -> None:
    with pytest.raises(CheckpointDirectoryError) as info:
        SafeCheckpointManager(Trainee().checkpoint, "gs://no-such-bucket/run", max_to_keep=2)
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.DIRECTORY_MISSING
    assert "bucket" in info.value.diagnosis.summary


def test_server_down_at_construction_is_storage_unavailable(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    _write_run(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    with gcs.refuse_connections(), pytest.raises(CheckpointDirectoryError) as info:
        SafeCheckpointManager(Trainee().checkpoint, gcs_dir, max_to_keep=2)
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.STORAGE_UNAVAILABLE
    _assert_kept(before, _snapshot(gcs, gcs_dir))


# Saving, listing, verifying ------------------------------------------------------------------


def test_save_and_retention(gcs: _gcs.GcsEmulator, gcs_dir: str) -> None:
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, gcs_dir, max_to_keep=2)
    for k in range(1, 5):
        trainee.set(k)
        manager.save()
    base = gcs_dir.removeprefix("gs://bucket/")
    names = {n.removeprefix(base + "/") for n in _snapshot(gcs, gcs_dir)}
    assert names == {
        ".safeckpt-writer-ckpt",  # the writer lease (docs/fallback.md, "Two writers")
        "checkpoint",
        "ckpt-3.index",
        "ckpt-3.data-00000-of-00001",
        "ckpt-4.index",
        "ckpt-4.data-00000-of-00001",
        "ckpt-3.safeckpt.json",  # the metadata files (docs/metadata.md), swept with theirs
        "ckpt-4.safeckpt.json",
    }
    assert manager.checkpoints == [f"{gcs_dir}/ckpt-3", f"{gcs_dir}/ckpt-4"]
    restored = Trainee()
    assert _manager(gcs_dir, restored).restore().save_path == f"{gcs_dir}/ckpt-4"
    assert restored.value == 4.0


def test_list_verify_diagnose_and_ls(gcs: _gcs.GcsEmulator, gcs_dir: str, capsys: Any) -> None:
    _write_run(gcs_dir)
    infos = safeckpt.list_checkpoints(gcs_dir)
    assert [i.step for i in infos] == [1, 2, 3]
    for info in infos:
        assert info.size_bytes == sum(
            gcs.stat(f"{gcs_dir}/{name}").size
            for name in info.files  # type: ignore[union-attr]
        )
    assert all(safeckpt.verify(i.prefix, deep=True).ok for i in infos)
    assert safeckpt.diagnose(gcs_dir).cause is Cause.HEALTHY
    from safeckpt._cli.main import main

    assert main(["ls", gcs_dir]) == 0
    out = capsys.readouterr().out
    assert out.count(" ok") >= 3 and "ckpt-3" in out


# Real damage: proven by bytes, so the fallback applies ---------------------------------------


@pytest.mark.parametrize("damage", ["shorter", "flipped"])
def test_real_damage_falls_back(gcs: _gcs.GcsEmulator, gcs_dir: str, damage: str) -> None:
    _write_run(gcs_dir)
    data = f"{gcs_dir}/ckpt-3.data-00000-of-00001"
    size = len(gcs.read(data))
    if damage == "shorter":
        gcs.truncate(data, size - 4)
    else:
        gcs.flip_byte(data, size - 2)
    before = _snapshot(gcs, gcs_dir)
    trainee = Trainee()
    report = _manager(gcs_dir, trainee, verify="quick").restore()
    assert report.save_path == f"{gcs_dir}/ckpt-2"
    assert trainee.value == 2.0
    expected = Cause.TRUNCATED_DATA if damage == "shorter" else Cause.CORRUPT_DATA
    assert report.skipped[0].cause is expected
    _assert_kept(before, _snapshot(gcs, gcs_dir))


def test_missing_state_file_restores_from_the_listing(gcs: _gcs.GcsEmulator, gcs_dir: str) -> None:
    _write_run(gcs_dir)
    gcs.delete(f"{gcs_dir}/checkpoint")
    trainee = Trainee()
    report = _manager(gcs_dir, trainee).restore()
    assert report.save_path == f"{gcs_dir}/ckpt-3"
    assert trainee.value == 3.0


# Transient failures: never damage ------------------------------------------------------------


def test_server_down_during_restore_raises_and_changes_nothing(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    _write_run(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    trainee = Trainee()
    manager = _manager(gcs_dir, trainee, fallback=("previous_valid", "fresh_init"))
    with gcs.refuse_connections(), pytest.raises(StorageUnavailableError) as info:
        manager.restore()
    assert isinstance(info.value, tf.errors.UnavailableError)
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.STORAGE_UNAVAILABLE
    assert trainee.value == 0.0  # nothing restored, no fresh start reported as success
    _assert_kept(before, _snapshot(gcs, gcs_dir))
    report = manager.restore()  # the storage is back
    assert report.save_path == f"{gcs_dir}/ckpt-3"
    assert trainee.value == 3.0


def test_dropped_downloads_of_the_newest_shard_raise_without_fallback(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    _write_run(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    trainee = Trainee()
    manager = _manager(gcs_dir, trainee)
    with gcs.drop_body(objects=r"ckpt-3\.data"), pytest.raises(StorageUnavailableError) as info:
        manager.restore()
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.checkpoint == f"{gcs_dir}/ckpt-3"
    assert "fall_back=True" in str(info.value)
    assert trainee.value == 0.0
    _assert_kept(before, _snapshot(gcs, gcs_dir))
    trainee.set(7)
    saved = manager.save()  # numbered above the intact ckpt-3, never over it
    assert saved == f"{gcs_dir}/ckpt-4"
    _assert_kept(before, _snapshot(gcs, gcs_dir), state_may_change=True)


def test_fall_back_past_unreadable_storage_only_when_asked(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    _write_run(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    trainee = Trainee()
    retry = StorageRetry(attempts=2, initial_delay=0.01, fall_back=True)
    manager = _manager(gcs_dir, trainee, storage_retry=retry)
    with gcs.drop_body(objects=r"ckpt-3\.data"):
        report = manager.restore()
    assert report.save_path == f"{gcs_dir}/ckpt-2"
    assert report.skipped[0].cause is Cause.STORAGE_UNAVAILABLE
    assert f"{gcs_dir}/ckpt-3" not in manager.checkpoints  # kept out of the rotation
    trainee.set(9)
    assert manager.save() == f"{gcs_dir}/ckpt-4"
    _assert_kept(before, _snapshot(gcs, gcs_dir), state_may_change=True)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_503_storm_during_restore_never_falls_back(
    gcs: _gcs.GcsEmulator, gcs_dir: str, seed: int
) -> None:
    _write_run(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    trainee = Trainee()
    manager = _manager(gcs_dir, trainee, storage_retry=StorageRetry(attempts=3, initial_delay=0))
    with gcs.fail(503, fraction=0.3, seed=seed):
        try:
            report = manager.restore()
        except StorageUnavailableError:
            report = None
    if report is not None:  # enough requests got through
        assert report.save_path == f"{gcs_dir}/ckpt-3"
        assert trainee.value == 3.0
    else:
        assert trainee.value == 0.0
    _assert_kept(before, _snapshot(gcs, gcs_dir))


def test_503_on_every_read_of_the_newest_raises(gcs: _gcs.GcsEmulator, gcs_dir: str) -> None:
    _write_run(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    manager = _manager(gcs_dir)
    with gcs.fail(503, objects=r"ckpt-3\."), pytest.raises(StorageUnavailableError):
        manager.restore()
    _assert_kept(before, _snapshot(gcs, gcs_dir))


#: Seeds 5 and 6 (about 20 s each) run in make stress.
@pytest.mark.parametrize(
    "seed",
    [pytest.param(5, marks=pytest.mark.stress), pytest.param(6, marks=pytest.mark.stress), 7],
)
def test_503_storm_during_saves_loses_nothing(
    gcs: _gcs.GcsEmulator, gcs_dir: str, seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    _write_run(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    trainee = Trainee()
    # One try per save (retried saves: tests/integration/test_save_retry_gcs.py), all kept: when all
    # three saves succeed, a max_to_keep of 5 would rightly sweep ckpt-1.
    manager = SafeCheckpointManager(
        trainee.checkpoint, gcs_dir, max_to_keep=None, storage_retry=NO_WAIT, save_retry=None
    )
    manager.restore()
    with gcs.fail(503, fraction=0.3, seed=seed), caplog.at_level(logging.ERROR):
        for k in range(4, 7):
            trainee.set(k)
            with contextlib.suppress(tf.errors.OpError, OSError):
                manager.save()  # a failed save is the storage's; what matters is what it left
    _assert_kept(before, _snapshot(gcs, gcs_dir), state_may_change=True)
    restored = Trainee()
    report = _manager(gcs_dir, restored).restore()
    assert report.step is not None and report.step >= 3
    # Whatever is newest holds its own values. A failed save leaves save_counter as it was,
    # so the next save takes its number: ckpt-N holds the value of the N-th save that worked.
    assert restored.value == float(restored.step.numpy()) >= float(report.step)


def test_a_failing_delete_half_of_a_rename_loses_nothing(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    _write_run(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    trainee = Trainee()
    manager = _manager(gcs_dir, trainee)
    manager.restore()
    trainee.set(4)
    with gcs.fail_delete(objects=r"(_temp|\.tmp)"), contextlib.suppress(tf.errors.OpError):
        manager.save()  # TF's save raises AbortedError when its rename cannot delete
    _assert_kept(before, _snapshot(gcs, gcs_dir), state_may_change=True)
    restored = Trainee()
    report = _manager(gcs_dir, restored).restore()
    assert report.step in (3, 4)
    assert restored.value == float(report.step)


def test_truncation_behind_a_stale_stat_cache_is_proven_by_reading(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    _write_run(gcs_dir)
    data = f"{gcs_dir}/ckpt-3.data-00000-of-00001"
    tf.io.gfile.stat(data)  # TF now caches its full size for 5 s
    gcs.truncate(data, len(gcs.read(data)) - 4)  # another writer cut it
    assert tf.io.gfile.stat(data).length == gcs.stat(data).size + 4  # type: ignore[union-attr]
    trainee = Trainee()
    # Each try reads past TF's "File contents are inconsistent" once its stat cache expired.
    retry = StorageRetry(attempts=3, initial_delay=0.01)
    report = _manager(gcs_dir, trainee, storage_retry=retry).restore()
    assert report.save_path == f"{gcs_dir}/ckpt-2"
    assert report.skipped[0].cause is Cause.TRUNCATED_DATA
    assert trainee.value == 2.0


def test_a_stale_short_size_is_rechecked_before_calling_the_file_truncated(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    _write_run(gcs_dir)
    data = f"{gcs_dir}/ckpt-3.data-00000-of-00001"
    full = gcs.read(data)
    gcs.upload(data, full[:-4])
    tf.io.gfile.stat(data)  # TF caches the short size
    gcs.upload(data, full)  # the writer finished: the object is whole again
    trainee = Trainee()
    report = _manager(gcs_dir, trainee).restore()
    assert report.save_path == f"{gcs_dir}/ckpt-3"
    assert trainee.value == 3.0


# Multi-worker paths ----------------------------------------------------------------------------


def test_a_non_chief_saves_into_its_workertemp_on_gs_and_removes_it(
    gcs: _gcs.GcsEmulator, gcs_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_run(gcs_dir)
    before = _snapshot(gcs, gcs_dir)
    cluster = '"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}'
    monkeypatch.setenv("TF_CONFIG", "{" + cluster + ', "task": {"type": "worker", "index": 1}}')
    trainee = Trainee()
    manager = _manager(gcs_dir, trainee)
    assert manager.restore().save_path == f"{gcs_dir}/ckpt-3"
    trainee.set(4)
    assert manager.save() == f"{gcs_dir}/ckpt-4"
    after = _snapshot(gcs, gcs_dir)
    assert after == before  # the chief writes the shared directory; this worker wrote nothing
    base = gcs_dir.removeprefix("gs://bucket/")
    assert not any("workertemp_" in name.removeprefix(base) for name in after)


def test_a_listing_failure_inside_tensorflows_reader_is_not_a_model_mismatch(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    # TF's checkpoint reader lists the prefix's files; under an outage it raises a ValueError
    # ("Unsuccessful TensorSliceReader constructor"), the class TF uses for shape mismatches.
    _write_run(gcs_dir)
    trainee = Trainee()
    manager = _manager(gcs_dir, trainee)
    with gcs.fail(503, categories=("list",)), pytest.raises(StorageUnavailableError) as info:
        manager.restore(f"{gcs_dir}/ckpt-2")  # explicit: safeckpt itself lists nothing first
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.STORAGE_UNAVAILABLE
    assert trainee.value == 0.0


def test_the_writer_lease_costs_a_save_one_read(gcs: _gcs.GcsEmulator, gcs_dir: str) -> None:
    # docs/fallback.md, "Two writers": on gs:// the lease is read before every save and
    # written only when it changes hands or is older than REMOTE_REFRESH_SECONDS. The same
    # manager without the lease stands in for TensorFlow's save plus the metadata file's
    # requests (those are tests/integration/test_metadata_gcs.py's).
    plain_dir, safe_dir = gcs_dir + "-nolease", gcs_dir + "-safe"
    trainee = Trainee()
    plain = SafeCheckpointManager(trainee.checkpoint, plain_dir, max_to_keep=2, writer_lease=False)
    safe = SafeCheckpointManager(trainee.checkpoint, safe_dir, max_to_keep=2)
    for manager in (plain, safe):
        for k in (1, 2, 3):  # past the first saves: the rotation deletes from now on
            trainee.set(k)
            manager.save()
    trainee.set(4)
    with gcs.counting() as tf_save:
        plain.save()
    with gcs.counting() as safe_save:
        safe.save()
    assert safe_save().total <= tf_save().total + 2, (str(tf_save()), str(safe_save()))
    assert safe_save()["upload"] == tf_save()["upload"], (str(tf_save()), str(safe_save()))
    assert gcs.read(f"{safe_dir}/.safeckpt-writer-ckpt").startswith(b"{")


def test_the_state_files_time_on_gs_belongs_to_its_text(
    gcs: _gcs.GcsEmulator, gcs_dir: str
) -> None:
    _write_run(gcs_dir)
    _wait_for_stat_cache()
    kept = scan(gcs_dir)
    assert kept.state.mtime is None  # not asked yet: no request
    assert kept.state_mtime() is not None  # stat'ed and read again: the same text
    rewritten = scan(gcs_dir)
    # Another process records a save between the read and the question.
    text = gcs.read(f"{gcs_dir}/checkpoint").replace(b'"ckpt-3"', b'"ckpt-2"')
    gcs.upload(f"{gcs_dir}/checkpoint", text)
    _wait_for_stat_cache()
    assert rewritten.state_mtime() is None  # its time no longer belongs to the text read
