"""The one table that translates foreign errors (Python's and TensorFlow's) into a `Cause`.

TensorFlow's exception classes are irregular: the same condition arrives as its own class,
as a bare `tf.errors.OpError`/``UnknownError`` with the operating system's message, or as a
Python `OSError`. `cause_of` looks at the class first and at the message only where
TensorFlow is known to lose the class. Nothing else in safeckpt classifies by message.
"""

from __future__ import annotations

import os

from safeckpt._causes import Cause
from safeckpt._io.safeio import NotRealDirectoryError, NotRegularFileError
from safeckpt._io.tf import errors

#: Exception classes, most specific first: a class by name is TensorFlow's ``tf.errors.<name>``
#: (looked at only once TensorFlow is imported: before that none of its errors can exist).
_BY_CLASS: tuple[tuple[type[BaseException] | str, Cause], ...] = (
    (NotRegularFileError, Cause.NOT_A_REGULAR_FILE),
    (NotRealDirectoryError, Cause.NOT_A_DIRECTORY),
    ("PermissionDeniedError", Cause.PERMISSION_DENIED),
    (PermissionError, Cause.PERMISSION_DENIED),
    ("UnavailableError", Cause.STORAGE_UNAVAILABLE),
    ("DeadlineExceededError", Cause.STORAGE_UNAVAILABLE),
    ("AbortedError", Cause.STORAGE_UNAVAILABLE),
    (ConnectionError, Cause.STORAGE_UNAVAILABLE),
    (TimeoutError, Cause.STORAGE_UNAVAILABLE),
    ("UnimplementedError", Cause.UNSUPPORTED_SCHEME),
    (IsADirectoryError, Cause.NOT_A_DIRECTORY),
    (NotADirectoryError, Cause.NOT_A_DIRECTORY),
)


def _classes() -> tuple[tuple[type[BaseException], Cause], ...]:
    """`_BY_CLASS` with TensorFlow's classes, or without them while it is not imported."""
    found: list[tuple[type[BaseException], Cause]] = []
    for cls, cause in _BY_CLASS:
        if isinstance(cls, str):
            found += [(tf_cls, cause) for tf_cls in errors(cls)]
        else:
            found.append((cls, cause))
    return tuple(found)


#: Message fragments of conditions TensorFlow reports without their class.
_BY_MESSAGE: tuple[tuple[str, Cause], ...] = (
    ("ermission denied", Cause.PERMISSION_DENIED),
    # ENOSPC and EDQUOT, as Python's OSError and TensorFlow's local filesystem word them.
    ("No space left on device", Cause.DISK_FULL),
    ("Disk quota exceeded", Cause.DISK_FULL),
    # TensorFlow's GCS client; its checkpoint reader re-raises these with code UNKNOWN (or as
    # a ValueError "Unsuccessful TensorSliceReader constructor") and only the text remains.
    ("HTTP response code 401", Cause.PERMISSION_DENIED),
    ("HTTP response code 403", Cause.PERMISSION_DENIED),
    ("retry attempts failed", Cause.STORAGE_UNAVAILABLE),
    ("HTTP response code 429", Cause.STORAGE_UNAVAILABLE),
    ("HTTP response code 5", Cause.STORAGE_UNAVAILABLE),
    ("File contents are inconsistent", Cause.STORAGE_UNAVAILABLE),
    # A save's merge step (MergeV2Checkpoints) that did not find the part it had just
    # written: seen on gs:// under 503 storms (an InvalidArgumentError, only the text tells).
    ("allow_missing_files was set to false", Cause.STORAGE_UNAVAILABLE),
    ("Is a directory", Cause.NOT_A_DIRECTORY),
    ("Not a directory", Cause.NOT_A_DIRECTORY),
    ("Could not resolve host", Cause.STORAGE_UNAVAILABLE),
    ("libcurl", Cause.STORAGE_UNAVAILABLE),
)


def cause_of(exc: BaseException, default: Cause = Cause.STORAGE_UNAVAILABLE) -> Cause:
    """The cause an I/O error of Python or TensorFlow stands for.

    Args:
        exc: The exception (its ``__cause__`` is looked at too, for wrapped errors).
        default: The cause when nothing in the table matches: reading failed for a reason
            that says nothing about the files, by default "the storage failed".
    """
    for error in (exc, exc.__cause__):
        if error is None:
            continue
        for cls, cause in _classes():
            if isinstance(error, cls):
                return cause
        text = str(error)
        for fragment, cause in _BY_MESSAGE:
            if fragment in text:
                return cause
    return default


#: What TensorFlow's GCS client says when an object changed while its stat cache (5 s by
#: default, ``GCS_STAT_CACHE_MAX_AGE``) held the old size and generation.
_STALE_CACHE = "File contents are inconsistent"


def stale_cache_wait(error: str | None) -> float:
    """Seconds to wait before a read can see past a stale stat cache; 0 when not that error."""
    if error is None or _STALE_CACHE not in error:
        return 0.0
    try:
        age = float(os.environ.get("GCS_STAT_CACHE_MAX_AGE", "5"))
    except ValueError:
        age = 5.0
    return max(age, 0.0) + 0.5
