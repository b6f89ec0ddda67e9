"""The two exceptions of safeckpt that are not TensorFlow's: importable without TensorFlow.

`SafeCheckpointError` is the base of everything safeckpt raises; `CheckpointDirectoryError`
is an unusable path (also a `ValueError`). The rest of the tree subclasses ``tf.errors`` and
is in `safeckpt._errors`, which draws the whole tree.
"""

from __future__ import annotations

import inspect
from typing import Any

from safeckpt._diagnosis import Diagnosis
from safeckpt._public import public


@public
class SafeCheckpointError(Exception):
    """Base class of every error raised by safeckpt."""

    def __init__(self, message: str, diagnosis: Diagnosis | None = None) -> None:
        Exception.__init__(self, message)
        self._message = message
        self.diagnosis = diagnosis

    @property
    def message(self) -> str:
        """The full readable message (the same as ``str(error)``)."""
        return self._message

    def __str__(self) -> str:
        return self._message

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the constructor's arguments, each stored under the same name. This is
        # also what tf.errors.OpError.__reduce__ assumes, so both agree.
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self"
        ]
        return type(self), tuple(getattr(self, name) for name in names), self.__dict__.copy()

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        self.__dict__.update(state or {})


@public
class CheckpointDirectoryError(SafeCheckpointError, ValueError):
    """The `directory` given to `SafeCheckpointManager` cannot be used.

    Attributes:
        directory: The normalized directory (or the raw value when it could not be normalized).
        diagnosis: What is wrong and what to do, when a diagnosis applies.
    """

    def __init__(
        self, message: str, diagnosis: Diagnosis | None = None, directory: str | None = None
    ) -> None:
        SafeCheckpointError.__init__(self, message, diagnosis)
        self.directory = directory
