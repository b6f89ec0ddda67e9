"""One real situation per Cause (safeckpt/_diagnose/path.py), built by damaging real checkpoints."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import (
    Cause,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    ConcurrentWriterError,
    Diagnosis,
    SafeCheckpointManager,
    SaveError,
)
from safeckpt._diagnose.path import diagnose
from testing.bundle import resave
from testing.checkpoints import (
    RotatedWhileRead,
    Trainee,
    other_writer,
    rotating_trainer,
    write_checkpoints,
)
from testing.privileges import run_unprivileged


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)


def data_file(directory: Path, step: int) -> Path:
    return directory / f"ckpt-{step}.data-00000-of-00001"


def check(
    diagnosis: Diagnosis,
    cause: Cause,
    evidence_names: str | None = None,
    suggestion_has: str | None = None,
) -> None:
    assert diagnosis.cause is cause, str(diagnosis)
    if evidence_names is not None:
        assert any(evidence_names in e for e in diagnosis.evidence), str(diagnosis)
    if suggestion_has is not None:
        assert any(suggestion_has in s for s in diagnosis.suggestions), str(diagnosis)


# Each builder damages ckpt_dir (ckpt-1..3 healthy) and returns the path to diagnose, the
# expected cause, a string the evidence must contain, and one the suggestions must contain.
Case = tuple[str, Cause, "str | None", "str | None"]


def case_healthy(d: Path, tmp: Path) -> Case:
    return str(d), Cause.HEALTHY, None, None


def case_no_checkpoints(d: Path, tmp: Path) -> Case:
    empty = tmp / "empty"
    empty.mkdir()
    return str(empty), Cause.NO_CHECKPOINTS, str(empty), "first run"


def case_directory_missing(d: Path, tmp: Path) -> Case:
    return str(d.parent / "nope" / "ckpts"), Cause.DIRECTORY_MISSING, "nope", str(d.parent)


def case_not_a_directory(d: Path, tmp: Path) -> Case:
    # TensorFlow's own manager only fails at the first save; diagnose the manager's view.
    f = tmp / "file"
    f.write_text("x")
    from safeckpt._catalog.directory import validate_directory

    try:
        validate_directory(str(f), create=True, read_only=False)
    except ValueError as exc:
        diagnosis = exc.diagnosis  # type: ignore[attr-defined]
        assert diagnosis.cause is Cause.NOT_A_DIRECTORY
        assert any(str(f) in e for e in diagnosis.evidence)
        assert any(repr(str(tmp)) in s for s in diagnosis.suggestions)
    return str(d), Cause.HEALTHY, None, None


def case_name_mismatch(d: Path, tmp: Path) -> Case:
    other = tmp / "named"
    write_checkpoints(other, 2, name="model")
    return str(other / "ckpt-2"), Cause.NAME_MISMATCH, "model-2", "checkpoint_name='model'"


def case_state_file_missing(d: Path, tmp: Path) -> Case:
    (d / "checkpoint").unlink()
    return str(d), Cause.STATE_FILE_MISSING, str(d / "checkpoint"), f"safeckpt repair {d}"


def case_state_file_corrupt(d: Path, tmp: Path) -> Case:
    (d / "checkpoint").write_text("model_checkpoint_path: None\n")
    return str(d), Cause.STATE_FILE_CORRUPT, str(d / "checkpoint"), str(d / "ckpt-3")


def case_state_file_stale(d: Path, tmp: Path) -> Case:
    for f in d.glob("ckpt-3.*"):
        f.unlink()
    return str(d), Cause.STATE_FILE_STALE, str(d / "ckpt-3.index"), str(d / "ckpt-2")


def case_state_file_foreign_paths(d: Path, tmp: Path) -> Case:
    (d / "checkpoint").write_text(
        'model_checkpoint_path: "/old/machine/run/ckpt-3"\n'
        'all_model_checkpoint_paths: "/old/machine/run/ckpt-3"\n'
    )
    return str(d), Cause.STATE_FILE_FOREIGN_PATHS, "/old/machine/run/ckpt-3", f"repair {d}"


def case_step_not_found(d: Path, tmp: Path) -> Case:
    return str(d / "ckpt-7"), Cause.STEP_NOT_FOUND, "1, 2, 3", str(d / "ckpt-3")


def case_missing_index(d: Path, tmp: Path) -> Case:
    (d / "ckpt-3.index").unlink()
    return str(d / "ckpt-3"), Cause.MISSING_INDEX, str(d / "ckpt-3.index"), str(d / "ckpt-2")


def case_missing_data_shard(d: Path, tmp: Path) -> Case:
    data_file(d, 3).unlink()
    return str(d), Cause.MISSING_DATA_SHARD, str(data_file(d, 3)), str(d / "ckpt-2")


def case_truncated_data(d: Path, tmp: Path) -> Case:
    truncate(data_file(d, 3), 10)
    return str(d / "ckpt-3"), Cause.TRUNCATED_DATA, str(data_file(d, 3)), str(d / "ckpt-2")


def case_corrupt_index(d: Path, tmp: Path) -> Case:
    flip_byte(d / "ckpt-3.index", 20)
    return str(d), Cause.CORRUPT_INDEX, str(d / "ckpt-3.index"), str(d / "ckpt-2")


def case_corrupt_data(d: Path, tmp: Path) -> Diagnosis:
    flip_byte(data_file(d, 3), 3)
    quick = diagnose(d)
    assert quick.cause is Cause.HEALTHY  # a bit flip needs the deep check
    return diagnose(d, deep=True)


def case_object_graph_corrupt(d: Path, tmp: Path) -> Case:
    # Written again by TensorFlow's SaveV2: every checksum valid, the graph bytes not a graph.
    resave(str(d / "ckpt-3"), {"_CHECKPOINTABLE_OBJECT_GRAPH": b"\xff\xff\xff\xff"})
    return str(d), Cause.OBJECT_GRAPH_CORRUPT, "not a TrackableObjectGraph", str(d / "ckpt-2")


def case_not_a_regular_file(d: Path, tmp: Path) -> Case:
    data_file(d, 3).unlink()
    os.mkfifo(data_file(d, 3))  # never opened: a read would block for ever
    return str(d), Cause.NOT_A_REGULAR_FILE, "a FIFO", str(d / "ckpt-2")


def case_incomplete_save(d: Path, tmp: Path) -> Case:
    # What a kill between the data rename and the index write leaves (notes §3.4, K5).
    # An hour ago: a recent one is a save in progress (test_doctor_on_a_save_in_progress).
    (d / "ckpt-4_temp").mkdir()
    shutil.copy(data_file(d, 3), data_file(d, 4))
    hour_ago = time.time() - 3600
    for path in (d / "ckpt-4_temp", data_file(d, 4)):
        os.utime(path, (hour_ago, hour_ago))
    return str(d), Cause.INCOMPLETE_SAVE, str(d / "ckpt-4_temp"), str(d / "ckpt-3")


def case_file_not_prefix(d: Path, tmp: Path) -> Case:
    return str(d / "ckpt-2.index"), Cause.FILE_NOT_PREFIX, str(d / "ckpt-2"), str(d / "ckpt-2")


def case_directory_not_prefix(d: Path, tmp: Path) -> Case:
    # An archive extracted into a folder named like the prefix (real-world S19):
    # checkpoints/model.ckpt/model.ckpt.index, and the user passes .../model.ckpt.
    nested = tmp / "checkpoints" / "model.ckpt"
    Trainee().checkpoint.write(str(nested / "model.ckpt"))
    prefix = str(nested / "model.ckpt")
    return str(nested), Cause.DIRECTORY_NOT_PREFIX, prefix + ".index", prefix


def case_saved_model(d: Path, tmp: Path) -> Case:
    module = tf.Module()
    module.v = tf.Variable(3.0)
    tf.saved_model.save(module, str(tmp / "sm"))
    return str(tmp / "sm"), Cause.SAVED_MODEL, "saved_model.pb", "variables/variables"


def case_foreign_format(d: Path, tmp: Path) -> Case:
    h5 = tmp / "weights.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    return str(h5), Cause.FOREIGN_FORMAT, str(h5), "load_weights"


def case_glob_metacharacters(d: Path, tmp: Path) -> Case:
    return str(tmp / "run[lr=0.1]"), Cause.GLOB_METACHARACTERS, None, None


def case_unsupported_scheme(d: Path, tmp: Path) -> Case:
    return "s3://bucket/run", Cause.UNSUPPORTED_SCHEME, None, None


def case_storage_unavailable(d: Path, tmp: Path) -> Case:
    return "gs://safeckpt-offline-bucket/run", Cause.STORAGE_UNAVAILABLE, "gs://", None


def case_model_mismatch(d: Path, tmp: Path) -> Diagnosis:
    # Intact files, wrong program: a 5-vector where the checkpoint holds a 4-vector.
    wide = tf.train.Checkpoint(w=tf.Variable(tf.zeros([5])), step=tf.Variable(0, dtype=tf.int64))
    manager = SafeCheckpointManager(wide, str(d), max_to_keep=3)
    with pytest.raises(CheckpointMismatchError) as info:
        manager.restore()
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, tf.errors.InvalidArgumentError)
    assert info.value.attempts == ()  # no fallback: earlier checkpoints would not fit either
    assert info.value.diagnosis is not None
    return info.value.diagnosis


def _mismatch_of(
    checkpoint: tf.train.Checkpoint, d: Path, save_path: str | None = None
) -> Diagnosis:
    manager = SafeCheckpointManager(checkpoint, str(d), max_to_keep=3)
    with pytest.raises(CheckpointMismatchError) as info:
        manager.restore(save_path)
    assert info.value.diagnosis is not None
    return info.value.diagnosis


def case_object_graph_mismatch(d: Path, tmp: Path) -> Diagnosis:
    # The checkpoint holds w and step; the program calls w "weights".
    renamed = tf.train.Checkpoint(weights=tf.Variable(tf.zeros([4])), step=tf.Variable(0, tf.int64))
    return _mismatch_of(renamed, d)


def case_name_based_checkpoint(d: Path, tmp: Path) -> Diagnosis:
    old = tmp / "tf1"
    saved = tf.Variable([1.0], name="weights")
    prefix = tf.compat.v1.train.Saver(var_list=[saved]).save(None, str(old / "model.ckpt"))
    return _mismatch_of(tf.train.Checkpoint(v=tf.Variable([0.0], name="other")), old, prefix)


def case_removed_concurrently(d: Path, tmp: Path) -> Diagnosis:
    # Every candidate is rotated away by a trainer while the evaluator reads it.
    trainer = rotating_trainer(tmp / "busy", 2)
    evaluator = RotatedWhileRead(trainer, saves=2, times=100, v=tf.Variable(-1.0))
    manager = SafeCheckpointManager(evaluator, tmp / "busy", max_to_keep=2, read_only=True)
    with pytest.raises(CheckpointNotFoundError) as info:
        manager.restore()
    assert info.value.diagnosis is not None
    return info.value.diagnosis


def case_concurrent_writer(d: Path, tmp: Path) -> Diagnosis:
    # Another process saves into the directory and is still running.
    with other_writer(tmp / "shared") as saved:
        manager = SafeCheckpointManager(Trainee().checkpoint, tmp / "shared", max_to_keep=3)
        with pytest.raises(ConcurrentWriterError) as info:
            manager.save()
    assert saved.endswith("ckpt-1")
    assert info.value.diagnosis is not None
    return info.value.diagnosis


def case_nonfinite_values(d: Path, tmp: Path) -> Diagnosis:
    # check_finite=True, and a weight went NaN (tests/manager/test_finite.py has the rest).
    t = Trainee()
    t.w.assign([1.0, float("nan"), 2.0, float("inf")])
    manager = SafeCheckpointManager(t.checkpoint, tmp / "nan", max_to_keep=2, check_finite=True)
    with pytest.raises(SaveError) as info:
        manager.save()
    assert info.value.diagnosis is not None
    return info.value.diagnosis


def case_unknown(d: Path, tmp: Path) -> Case:
    # A path with a NUL cannot exist anywhere: nothing more specific can be said.
    return str(d) + "\x00x", Cause.UNKNOWN, None, None


CASES: dict[Cause, Callable[[Path, Path], Case | Diagnosis]] = {
    Cause.HEALTHY: case_healthy,
    Cause.NO_CHECKPOINTS: case_no_checkpoints,
    Cause.DIRECTORY_MISSING: case_directory_missing,
    Cause.NOT_A_DIRECTORY: case_not_a_directory,
    Cause.NAME_MISMATCH: case_name_mismatch,
    Cause.STATE_FILE_MISSING: case_state_file_missing,
    Cause.STATE_FILE_CORRUPT: case_state_file_corrupt,
    Cause.STATE_FILE_STALE: case_state_file_stale,
    Cause.STATE_FILE_FOREIGN_PATHS: case_state_file_foreign_paths,
    Cause.STEP_NOT_FOUND: case_step_not_found,
    Cause.MISSING_INDEX: case_missing_index,
    Cause.MISSING_DATA_SHARD: case_missing_data_shard,
    Cause.TRUNCATED_DATA: case_truncated_data,
    Cause.CORRUPT_INDEX: case_corrupt_index,
    Cause.CORRUPT_DATA: case_corrupt_data,
    Cause.OBJECT_GRAPH_CORRUPT: case_object_graph_corrupt,
    Cause.NOT_A_REGULAR_FILE: case_not_a_regular_file,
    Cause.INCOMPLETE_SAVE: case_incomplete_save,
    Cause.FILE_NOT_PREFIX: case_file_not_prefix,
    Cause.DIRECTORY_NOT_PREFIX: case_directory_not_prefix,
    Cause.SAVED_MODEL: case_saved_model,
    Cause.FOREIGN_FORMAT: case_foreign_format,
    Cause.GLOB_METACHARACTERS: case_glob_metacharacters,
    Cause.UNSUPPORTED_SCHEME: case_unsupported_scheme,
    Cause.STORAGE_UNAVAILABLE: case_storage_unavailable,
    Cause.MODEL_MISMATCH: case_model_mismatch,
    Cause.OBJECT_GRAPH_MISMATCH: case_object_graph_mismatch,
    Cause.NAME_BASED_CHECKPOINT: case_name_based_checkpoint,
    Cause.REMOVED_CONCURRENTLY: case_removed_concurrently,
    Cause.CONCURRENT_WRITER: case_concurrent_writer,
    Cause.NONFINITE_VALUES: case_nonfinite_values,
    Cause.UNKNOWN: case_unknown,
}


@pytest.mark.parametrize("cause", list(CASES), ids=lambda c: c.value)
def test_cause(cause: Cause, ckpt_dir: Path, tmp_path: Path) -> None:
    built = CASES[cause](ckpt_dir, tmp_path)
    if isinstance(built, Diagnosis):
        expected = {
            Cause.CORRUPT_DATA: (Cause.CORRUPT_DATA, "ckpt-3.data-00000-of-00001", "ckpt-2"),
            Cause.MODEL_MISMATCH: (
                Cause.MODEL_MISMATCH,
                "w: checkpoint (4,) float32, program (5,) float32",
                "safeckpt inspect",
            ),
            Cause.OBJECT_GRAPH_MISMATCH: (
                Cause.OBJECT_GRAPH_MISMATCH,
                "program: step, weights, save_counter",
                "checkpoint's `w` looks like the program's `weights`",
            ),
            Cause.NAME_BASED_CHECKPOINT: (
                Cause.NAME_BASED_CHECKPOINT,
                "0 of the program's 1 variables match",
                "convert it once",
            ),
            Cause.REMOVED_CONCURRENTLY: (
                Cause.REMOVED_CONCURRENTLY,
                "Listed complete, then gone",
                "larger max_to_keep",
            ),
            Cause.NONFINITE_VALUES: (
                Cause.NONFINITE_VALUES,
                "w:0: 1 NaN and 1 infinite of 4 values",
                "Nothing was written or swept",
            ),
            Cause.CONCURRENT_WRITER: (
                Cause.CONCURRENT_WRITER,
                "its process is running on this host",
                "Stop one of the two jobs",
            ),
        }[cause]
        check(built, *expected)
        return
    path, expected_cause, evidence, suggestion = built
    check(diagnose(path), expected_cause, evidence, suggestion)


def test_permission_denied(unprivileged: Path) -> None:
    out = run_unprivileged(
        f"""
d = pathlib.Path({str(unprivileged)!r}) / "perm"
ckpt = tf.train.Checkpoint(v=tf.Variable(1.0))
m = tf.train.CheckpointManager(ckpt, str(d), None)
m.save(); m.save()
(d / "ckpt-2.data-00000-of-00001").chmod(0)
from safeckpt._diagnose.path import diagnose
r = diagnose(d)
print(r.cause.value)
print(json.dumps(r.to_dict()))
"""
    )
    first, payload = out.strip().splitlines()
    assert first == "permission_denied"
    data = __import__("json").loads(payload)
    assert any("ckpt-2.data-00000-of-00001" in e for e in data["evidence"])
    assert any("ckpt-1" in s for s in data["suggestions"])


def test_every_cause_has_a_test_and_a_doc_section() -> None:
    # permission_denied needs an unprivileged process (above), worker_unavailable a cluster
    # of processes (test_multiworker.py), disk_full a small mounted tmpfs
    # (test_save_disk_full.py).
    elsewhere = (Cause.PERMISSION_DENIED, Cause.WORKER_UNAVAILABLE, Cause.DISK_FULL)
    missing_tests = [c.value for c in Cause if c not in CASES and c not in elsewhere]
    assert missing_tests == []
    doc = (Path(__file__).resolve().parents[2] / "docs" / "diagnostics.md").read_text()
    missing_docs = [c.value for c in Cause if f"## `{c.value}`" not in doc]
    assert missing_docs == []


def test_manager_diagnose_uses_its_directory_and_name(ckpt_dir: Path, trainee: Trainee) -> None:
    manager = SafeCheckpointManager(trainee.checkpoint, ckpt_dir, 5, checkpoint_name="model")
    diagnosis = manager.diagnose()
    assert diagnosis.cause is Cause.NAME_MISMATCH
    assert diagnosis.directory == str(ckpt_dir)


def test_never_raises_for_odd_inputs(tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "checkpoint").mkdir()  # a directory where the state file should be
    (odd / "x.index").write_bytes(os.urandom(64))
    (odd / "x.data-00000-of-00001").write_bytes(b"")
    assert isinstance(diagnose(odd), Diagnosis)
    assert isinstance(diagnose(odd / "x"), Diagnosis)
    assert isinstance(diagnose(odd / "checkpoint"), Diagnosis)


def test_text_names_cwd_for_missing_relative(chdir_tmp: Path) -> None:
    diagnosis = diagnose("training_checkpoints")
    assert diagnosis.cause is Cause.DIRECTORY_MISSING or diagnosis.cause is Cause.NO_CHECKPOINTS
    assert str(chdir_tmp) in str(diagnosis)
