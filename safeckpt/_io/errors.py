"""The errors of file operations, caught and raised without importing TensorFlow.

Local files are read with `os` (`safeckpt._io.fs`, `safeckpt._io.safeio`); URIs with
`tf.io.gfile`. A local file that is not there raises `NotFoundError` (a
`FileNotFoundError`), one that may not be read `PermissionDeniedError` (a
`PermissionError`): named and worded as TensorFlow's classes of the same names, so that
messages read as before, but plain `OSError` subclasses, so that raising them imports nothing.

Code on the command line's paths catches through the functions here: they name
TensorFlow's classes only once TensorFlow is imported (before that, none of its errors can
have been raised). `as_tensorflow` turns a local error into TensorFlow's class where a public
function documents one (`safeckpt.list_checkpoints`).
"""

from __future__ import annotations

import errno
from typing import Any

from safeckpt._io.tf import errors, tf


class NotFoundError(FileNotFoundError):
    """A local file or directory is not there (worded as TensorFlow's ``NotFoundError``).

    Attributes:
        filename: The path.
        message: The whole text (``"<path>: No such file or directory"``), also ``str()``.
    """

    def __init__(self, filename: str, message: str) -> None:
        super().__init__(errno.ENOENT, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.filename, self.message)


class PermissionDeniedError(PermissionError):
    """A local file or directory may not be read (worded as TensorFlow's class of that name)."""

    def __init__(self, filename: str, message: str, code: int = errno.EACCES) -> None:
        super().__init__(code, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.filename, self.message, self.errno)


def io_errors(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    """What a file operation raises: `OSError`, and `tf.errors.OpError` once TF is imported.

    Args:
        *more: Other classes to catch with them (``io_errors(UnicodeError)``).
    """
    return (OSError, *errors("OpError"), *more)


def not_found(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    """Not there: `FileNotFoundError`, and `tf.errors.NotFoundError` once TF is imported."""
    return (FileNotFoundError, *errors("NotFoundError"), *more)


def out_of_range() -> tuple[type[BaseException], ...]:
    """A remote read that ended early (`tf.errors.OutOfRangeError`); ``()`` before TF."""
    return errors("OutOfRangeError")


def as_tensorflow(exc: BaseException) -> BaseException:
    """TensorFlow's error class for a local `NotFoundError`/`PermissionDeniedError`.

    Other exceptions are returned as they are. Imports TensorFlow (for public functions
    whose documented errors are TensorFlow's).
    """
    cls: Any
    if isinstance(exc, NotFoundError):
        cls = tf.errors.NotFoundError
    elif isinstance(exc, PermissionDeniedError):
        cls = tf.errors.PermissionDeniedError
    else:
        return exc
    error: BaseException = cls(None, None, str(exc))
    error.__cause__ = exc
    return error
