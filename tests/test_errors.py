"""The exception tree (safeckpt/_errors.py): isinstance, pickling, messages."""

from __future__ import annotations

import copy
import pickle

import pytest
import tensorflow as tf

import safeckpt
from safeckpt import (
    Cause,
    CheckpointCorruptedError,
    CheckpointDirectoryError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CheckpointPermissionError,
    ConcurrentWriterError,
    Diagnosis,
    ReadOnlyError,
    RestoreError,
    SafeCheckpointError,
    SaveError,
    StorageUnavailableError,
)
from safeckpt._errors import restore_error

DIAGNOSIS = Diagnosis(
    cause=Cause.MISSING_INDEX,
    summary="ckpt-3 has no index file.",
    directory="/runs/a",
    checkpoint="/runs/a/ckpt-3",
    evidence=("/runs/a/ckpt-3.index is missing.",),
    suggestions=("Restore /runs/a/ckpt-2 instead.",),
)

RESTORE_ERRORS = [
    (RestoreError, tf.errors.OpError, tf.errors.UNKNOWN),
    (CheckpointNotFoundError, tf.errors.NotFoundError, tf.errors.NOT_FOUND),
    (CheckpointCorruptedError, tf.errors.DataLossError, tf.errors.DATA_LOSS),
    (CheckpointPermissionError, tf.errors.PermissionDeniedError, tf.errors.PERMISSION_DENIED),
    (CheckpointMismatchError, tf.errors.InvalidArgumentError, tf.errors.INVALID_ARGUMENT),
]


@pytest.mark.parametrize(("cls", "tf_cls", "code"), RESTORE_ERRORS)
def test_restore_errors_are_tf_errors(cls: type, tf_cls: type, code: int) -> None:
    error = cls("full message\nsecond line", DIAGNOSIS, [DIAGNOSIS])
    assert isinstance(error, tf_cls)
    assert isinstance(error, tf.errors.OpError)
    assert isinstance(error, RestoreError)
    assert isinstance(error, SafeCheckpointError)
    assert error.error_code == code
    assert str(error) == "full message\nsecond line"
    assert error.message == "full message\nsecond line"
    assert error.diagnosis is DIAGNOSIS
    assert error.attempts == (DIAGNOSIS,)


@pytest.mark.parametrize(("cls", "tf_cls", "code"), RESTORE_ERRORS)
@pytest.mark.parametrize(
    "clone", [lambda e: pickle.loads(pickle.dumps(e)), copy.deepcopy, copy.copy]
)
def test_restore_errors_survive_pickle_and_copy(
    cls: type, tf_cls: type, code: int, clone: object
) -> None:
    error = cls("msg", DIAGNOSIS, [DIAGNOSIS, DIAGNOSIS])
    again = clone(error)  # type: ignore[operator]
    assert type(again) is cls
    assert str(again) == "msg"
    assert again.diagnosis == DIAGNOSIS
    assert again.attempts == (DIAGNOSIS, DIAGNOSIS)
    assert again.error_code == code
    assert isinstance(again, tf_cls)


def test_existing_except_clauses_catch_not_found() -> None:
    with pytest.raises(tf.errors.NotFoundError):
        raise CheckpointNotFoundError("no checkpoint", DIAGNOSIS)


def test_directory_error_is_value_error_and_pickles() -> None:
    error = CheckpointDirectoryError("bad dir", DIAGNOSIS, "/runs/a")
    assert isinstance(error, ValueError)
    assert isinstance(error, SafeCheckpointError)
    for again in (pickle.loads(pickle.dumps(error)), copy.deepcopy(error)):
        assert type(again) is CheckpointDirectoryError
        assert str(again) == "bad dir"
        assert again.directory == "/runs/a"
        assert again.diagnosis == DIAGNOSIS


def test_save_errors() -> None:
    error = ReadOnlyError("read only", None)
    assert isinstance(error, SaveError)
    assert isinstance(error, tf.errors.PermissionDeniedError)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ReadOnlyError and str(again) == "read only"
    assert again.diagnosis is None
    conflict = ConcurrentWriterError("another writer", DIAGNOSIS)
    assert isinstance(conflict, SaveError) and isinstance(conflict, tf.errors.OpError)
    assert isinstance(conflict, tf.errors.FailedPreconditionError)
    assert conflict.error_code == tf.errors.FAILED_PRECONDITION
    for copied in (pickle.loads(pickle.dumps(conflict)), copy.deepcopy(conflict)):
        assert type(copied) is ConcurrentWriterError and copied.diagnosis == DIAGNOSIS


def test_chaining_is_kept() -> None:
    cause = ValueError("inner")
    try:
        try:
            raise cause
        except ValueError as exc:
            raise CheckpointCorruptedError("outer", DIAGNOSIS) from exc
    except CheckpointCorruptedError as err:
        assert err.__cause__ is cause


def test_tree_is_documented_in_the_module_docstring() -> None:
    doc = safeckpt._errors.__doc__ or ""
    for name in [n for n in safeckpt.__all__ if n.endswith("Error")]:
        assert name in doc, name


def test_public_api_is_sorted_and_complete() -> None:
    assert safeckpt.__all__ == sorted(safeckpt.__all__)
    for name in safeckpt.__all__:
        assert hasattr(safeckpt, name), name


@pytest.mark.parametrize(
    ("cause", "cls"),
    [
        (Cause.STEP_NOT_FOUND, CheckpointNotFoundError),
        (Cause.MISSING_INDEX, CheckpointNotFoundError),
        (Cause.NAME_MISMATCH, CheckpointNotFoundError),
        (Cause.TRUNCATED_DATA, CheckpointCorruptedError),
        (Cause.CORRUPT_DATA, CheckpointCorruptedError),
        (Cause.PERMISSION_DENIED, CheckpointPermissionError),
        (Cause.MODEL_MISMATCH, CheckpointMismatchError),
        (Cause.STORAGE_UNAVAILABLE, StorageUnavailableError),
        (Cause.UNKNOWN, RestoreError),
    ],
)
def test_restore_error_class_follows_the_cause(cause: Cause, cls: type) -> None:
    from dataclasses import replace

    error = restore_error(replace(DIAGNOSIS, cause=cause), [DIAGNOSIS])
    assert type(error) is cls
    assert error.attempts == (DIAGNOSIS,)
    assert str(error) == str(replace(DIAGNOSIS, cause=cause))
