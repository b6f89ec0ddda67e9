"""`SafeCheckpointManager`: a drop-in `tf.train.CheckpointManager`."""

from __future__ import annotations

import collections
import logging
import numbers
from collections.abc import Callable
from typing import Any

from safeckpt import _paths
from safeckpt._diagnose import diagnose
from safeckpt._diagnosis import Diagnosis
from safeckpt._directory import validate_directory
from safeckpt._errors import ReadOnlyError
from safeckpt._tf import tf, tf_checkpoint_management

logger = logging.getLogger("safeckpt")


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r}: expected True or False, got {type(value).__name__}.")
    return value


def _check_max_to_keep(value: object) -> int | None:
    # TensorFlow accepts any positive number; integral floats (2.0) stay accepted.
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or float(value) <= 0
        or not float(value).is_integer()
    ):
        raise ValueError(
            f"max_to_keep={value!r}: expected a positive integer, or None to keep every checkpoint."
        )
    return int(float(value))


def _check_hours(value: object) -> float | None:
    # TensorFlow treats 0 like None (no preservation); keep accepting it.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or float(value) < 0:
        raise ValueError(
            f"keep_checkpoint_every_n_hours={value!r}: expected a positive number of hours, "
            "or None (0 also disables it, as in TensorFlow)."
        )
    return float(value) if value else None


class SafeCheckpointManager(tf.train.CheckpointManager):  # type: ignore[misc]
    """A `tf.train.CheckpointManager` that validates its directory and never loses a run.

    It takes TensorFlow's arguments, in TensorFlow's order, and behaves like TensorFlow's
    manager on healthy directories. safeckpt's own options are keyword-only.

    Args:
        checkpoint: The `tf.train.Checkpoint` to save and restore.
        directory: Where checkpoints live: a local path (``~``, ``$VAR`` and relative paths
            are resolved once, here) or a URI such as ``gs://bucket/run``.
        max_to_keep: How many recent checkpoints to keep, or None to keep all.
        keep_checkpoint_every_n_hours: Additionally preserve one checkpoint per this many hours.
        checkpoint_name: Base name of the checkpoint prefixes (``<name>-<N>``).
        step_counter: A `tf.Variable` with the training step (with `checkpoint_interval`).
        checkpoint_interval: Minimum number of steps between two saves.
        init_fn: Called by `restore_or_initialize` when there is nothing to restore.
        last_checkpoint_step: The step of the last checkpoint saved (with the interval).
        create_directory: Create a missing `directory` (with parents) at construction.
        read_only: Never write: no directory creation, no write probe; `save` raises
            `ReadOnlyError`. For evaluation and inference jobs.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument has an invalid value.
        CheckpointDirectoryError: `directory` cannot be used (a `ValueError` too).
    """

    def __init__(
        self,
        checkpoint: Any,
        directory: Any,
        max_to_keep: int | None,
        keep_checkpoint_every_n_hours: float | None = None,
        checkpoint_name: str = "ckpt",
        step_counter: Any = None,
        checkpoint_interval: int | None = None,
        init_fn: Callable[[], Any] | None = None,
        last_checkpoint_step: int | None = None,
        *,
        create_directory: bool = True,
        read_only: bool = False,
    ) -> None:
        if checkpoint is None or not callable(getattr(checkpoint, "restore", None)):
            raise TypeError(
                f"checkpoint={checkpoint!r}: expected a tf.train.Checkpoint (an object with "
                "restore() and save_counter), got "
                f"{type(checkpoint).__name__}."
            )
        if init_fn is not None and not callable(init_fn):
            raise TypeError(f"init_fn={init_fn!r}: expected a callable or None.")
        max_to_keep = _check_max_to_keep(max_to_keep)
        keep_checkpoint_every_n_hours = _check_hours(keep_checkpoint_every_n_hours)
        self._read_only = _check_bool("read_only", read_only)
        _check_bool("create_directory", create_directory)
        directory = _paths.normalize_directory(directory)
        checkpoint_name = _paths.normalize_checkpoint_name(checkpoint_name)
        self.created_directory = validate_directory(
            directory, create=create_directory, read_only=read_only
        )
        try:
            super().__init__(
                checkpoint,
                directory,
                max_to_keep,
                keep_checkpoint_every_n_hours=keep_checkpoint_every_n_hours,
                checkpoint_name=checkpoint_name,
                step_counter=step_counter,
                checkpoint_interval=checkpoint_interval,
                init_fn=init_fn,
                last_checkpoint_step=last_checkpoint_step,
            )
        except (ValueError, UnicodeDecodeError) as exc:
            # TensorFlow raises these while reading an empty, incomplete or non-UTF-8 state
            # file. Arguments were validated above, so finish TF's "no recorded state" branch.
            if not hasattr(self, "_checkpoint_interval"):
                raise
            logger.warning(
                "The checkpoint state file in %s could not be read (%s: %s); "
                "treating it as absent.",
                directory,
                type(exc).__name__,
                exc,
            )
            self._maybe_delete: collections.OrderedDict[str, float] = collections.OrderedDict()
            self._latest_checkpoint = None
            self._last_preserved_timestamp = tf_checkpoint_management.time.time() - 1.0

    @property
    def read_only(self) -> bool:
        """Whether this manager refuses to write."""
        return self._read_only

    @property
    def checkpoint_name(self) -> str:
        """The base name of this manager's checkpoint prefixes."""
        return str(_paths.basename(self._checkpoint_prefix))

    def diagnose(self, *, deep: bool = False) -> Diagnosis:
        """Diagnose this manager's directory for its `checkpoint_name` (see `safeckpt.diagnose`)."""
        return diagnose(self.directory, checkpoint_name=self.checkpoint_name, deep=deep)

    def save(
        self,
        checkpoint_number: Any = None,
        check_interval: bool = True,
        options: Any = None,
    ) -> str | None:
        """Save a checkpoint, exactly as `tf.train.CheckpointManager.save` does.

        Raises:
            ReadOnlyError: The manager was created with ``read_only=True``.
        """
        if self._read_only:
            raise ReadOnlyError(
                f"This SafeCheckpointManager for {self.directory} was created with "
                "read_only=True, so save() writes nothing. Create it with read_only=False "
                "to save checkpoints."
            )
        result: str | None = super().save(
            checkpoint_number=checkpoint_number, check_interval=check_interval, options=options
        )
        return result
