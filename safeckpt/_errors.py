"""Exceptions raised by safeckpt.

Every error subclasses the exception it stands in for, so code written against plain
TensorFlow keeps catching it. The tree::

    SafeCheckpointError                   base of everything safeckpt raises
    ├── CheckpointDirectoryError          (+ ValueError) unusable `directory` at construction
    ├── SaveError                         (+ tf.errors.OpError) a save was refused or failed
    │   ├── ReadOnlyError                 (+ tf.errors.PermissionDeniedError) save() on read_only
    │   └── ConcurrentWriterError         (+ tf.errors.FailedPreconditionError) another live
    │                                     writer holds the directory's writer lease
    └── RestoreError                      (+ tf.errors.OpError) no checkpoint could be restored
        ├── CheckpointNotFoundError       (+ tf.errors.NotFoundError) nothing to restore there
        ├── CheckpointCorruptedError      (+ tf.errors.DataLossError) damaged or incomplete files
        │   └── NoUsableCheckpointError   (+ CheckpointNotFoundError) every candidate was damaged
        ├── CheckpointPermissionError     (+ tf.errors.PermissionDeniedError) files unreadable
        ├── StorageUnavailableError       (+ tf.errors.UnavailableError) the storage failed to
        │                                 answer (retried; no fallback: nothing is proven damaged)
        ├── CheckpointMismatchError       (+ tf.errors.InvalidArgumentError, ValueError) the
        │                                 checkpoint is intact but does not fit the program
        └── WorkerUnavailableError        (+ tf.errors.UnavailableError) another worker of a
                                          multi-worker job crashed or did not report in time

Every error carries ``.diagnosis`` (a `Diagnosis`, or None) and its ``str()`` is the full
readable message. `RestoreError` also carries ``.attempts``: the `Diagnosis` of every
checkpoint that was tried and rejected, newest first. All errors survive `pickle` and
`copy.deepcopy` with their attributes.

Bad arguments (wrong type, unknown option value) are plain `TypeError` / `ValueError`.

Importing this module imports TensorFlow (its classes subclass ``tf.errors``): the two
classes that do not, `SafeCheckpointError` and `CheckpointDirectoryError`, live in
`safeckpt._errorbase` (imported from there by the command line's code paths) and are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

from safeckpt._causes import CHECKPOINT_DAMAGE, MISMATCH, NOT_FOUND, Cause
from safeckpt._diagnosis import Diagnosis
from safeckpt._errorbase import CheckpointDirectoryError, SafeCheckpointError
from safeckpt._io.tf import tf
from safeckpt._public import public

_OpError = tf.errors.OpError
_UNKNOWN: int = tf.errors.UNKNOWN
_NOT_FOUND: int = tf.errors.NOT_FOUND
_DATA_LOSS: int = tf.errors.DATA_LOSS
_PERMISSION_DENIED: int = tf.errors.PERMISSION_DENIED
_INVALID_ARGUMENT: int = tf.errors.INVALID_ARGUMENT
_UNAVAILABLE: int = tf.errors.UNAVAILABLE
_FAILED_PRECONDITION: int = tf.errors.FAILED_PRECONDITION


class _OpErrorMixin(SafeCheckpointError):
    """Shared initialization of the errors that are also `tf.errors.OpError`s."""

    _code: int = _UNKNOWN

    def _init_op_error(self, message: str, diagnosis: Diagnosis | None) -> None:
        SafeCheckpointError.__init__(self, message, diagnosis)
        # tf.errors.OpError.__init__(node_def, op, message, error_code): no node, no op.
        _OpError.__init__(self, None, None, message, self._code)
        # OpError.__init__ resets Exception.args; keep the message there for tracebacks.
        self.args = (message,)


@public
class SaveError(_OpErrorMixin, tf.errors.OpError):  # type: ignore[misc]
    """A save was refused (or failed) before anything was written."""

    def __init__(self, message: str, diagnosis: Diagnosis | None = None) -> None:
        self._init_op_error(message, diagnosis)


@public
class ReadOnlyError(SaveError, tf.errors.PermissionDeniedError):  # type: ignore[misc]
    """`save()` was called on a manager constructed with ``read_only=True``."""

    _code = _PERMISSION_DENIED


@public
class ConcurrentWriterError(SaveError, tf.errors.FailedPreconditionError):  # type: ignore[misc]
    """`save()` found another live writer of the same checkpoint name in the directory.

    Another job (or process) holds the directory's writer lease and saved while this manager
    ran, or runs on this host. Nothing was written. The diagnosis (cause
    ``concurrent_writer``) names the other writer: its host, process id and last save. Also a
    `tf.errors.FailedPreconditionError`: the save can succeed only once the other writer stops.
    """

    _code = _FAILED_PRECONDITION


@public
class RestoreError(_OpErrorMixin, tf.errors.OpError):  # type: ignore[misc]
    """No checkpoint could be restored as requested.

    Attributes:
        diagnosis: Why the (last) requested checkpoint could not be used.
        attempts: The `Diagnosis` of every checkpoint tried and rejected, newest first.
    """

    def __init__(
        self,
        message: str,
        diagnosis: Diagnosis | None = None,
        attempts: Sequence[Diagnosis] = (),
    ) -> None:
        self._init_op_error(message, diagnosis)
        self.attempts: tuple[Diagnosis, ...] = tuple(attempts)


@public
class CheckpointNotFoundError(RestoreError, tf.errors.NotFoundError):  # type: ignore[misc]
    """There is no checkpoint where one was expected (also a `tf.errors.NotFoundError`)."""

    _code = _NOT_FOUND


@public
class CheckpointCorruptedError(RestoreError, tf.errors.DataLossError):  # type: ignore[misc]
    """Checkpoint files are damaged or incomplete (also a `tf.errors.DataLossError`)."""

    _code = _DATA_LOSS


@public
class NoUsableCheckpointError(CheckpointCorruptedError, CheckpointNotFoundError):
    """Every checkpoint in the directory was tried and is damaged.

    A `CheckpointCorruptedError` (and so a `tf.errors.DataLossError`) because damage is the
    cause, and also a `CheckpointNotFoundError` (a `tf.errors.NotFoundError`), so that the
    usual ``except tf.errors.NotFoundError:`` around a restore catches "nothing usable".
    """

    _code = _DATA_LOSS


@public
class CheckpointPermissionError(RestoreError, tf.errors.PermissionDeniedError):  # type: ignore[misc]
    """Checkpoint files exist but cannot be read (also a `tf.errors.PermissionDeniedError`)."""

    _code = _PERMISSION_DENIED


@public
class StorageUnavailableError(RestoreError, tf.errors.UnavailableError):  # type: ignore[misc]
    """The storage could not be read, so no checkpoint was judged (a `tf.errors.UnavailableError`).

    Raised after the restore retried (see `StorageRetry`): a dropped connection, ``5xx``
    answers, a timeout or an unreachable host say nothing about the checkpoint's bytes, so
    it is neither skipped nor replaced by a fresh start. Retry when the storage answers.
    """

    _code = _UNAVAILABLE


@public
class CheckpointMismatchError(
    RestoreError,
    tf.errors.InvalidArgumentError,  # type: ignore[misc]
    ValueError,
):
    """The checkpoint is intact but its variables do not fit the program's (shape, dtype).

    Also a `tf.errors.InvalidArgumentError` and a `ValueError`, the two classes TensorFlow
    raises for these. An earlier checkpoint of the same run would not fit either, so no
    fallback policy is applied.
    """

    _code = _INVALID_ARGUMENT


@public
class WorkerUnavailableError(RestoreError, tf.errors.UnavailableError):  # type: ignore[misc]
    """Another worker of a multi-worker job did not take part in a restore.

    It crashed (TensorFlow's coordination service stopped receiving its heartbeat), or it did
    not report within ``peer_timeout``. Every live worker raises it, with the same diagnosis
    (cause ``worker_unavailable``), instead of waiting forever. Also a
    `tf.errors.UnavailableError`, what TensorFlow raises for a lost task.
    """

    _code = _UNAVAILABLE


def restore_error(
    diagnosis: Diagnosis,
    attempts: Sequence[Diagnosis] = (),
    message: str | None = None,
    *,
    exhausted: bool = False,
) -> RestoreError:
    """The `RestoreError` subclass that matches `diagnosis.cause`, with its text as message.

    `exhausted` says that every candidate was tried: damage then raises
    `NoUsableCheckpointError`, which is also a `tf.errors.NotFoundError`.
    """
    cls: type[RestoreError]
    if diagnosis.cause is Cause.PERMISSION_DENIED:
        cls = CheckpointPermissionError
    elif diagnosis.cause is Cause.STORAGE_UNAVAILABLE:
        cls = StorageUnavailableError
    elif diagnosis.cause in MISMATCH:
        cls = CheckpointMismatchError
    elif diagnosis.cause in NOT_FOUND:
        cls = CheckpointNotFoundError
    elif diagnosis.cause in CHECKPOINT_DAMAGE:
        cls = NoUsableCheckpointError if exhausted else CheckpointCorruptedError
    elif diagnosis.cause is Cause.WORKER_UNAVAILABLE:
        cls = WorkerUnavailableError
    else:
        cls = RestoreError
    text = message if message is not None else str(diagnosis)
    return cls(text, diagnosis, attempts)


__all__ = [
    "CheckpointCorruptedError",
    "CheckpointDirectoryError",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "CheckpointPermissionError",
    "ConcurrentWriterError",
    "NoUsableCheckpointError",
    "ReadOnlyError",
    "RestoreError",
    "SafeCheckpointError",
    "SaveError",
    "StorageUnavailableError",
    "WorkerUnavailableError",
    "restore_error",
]
