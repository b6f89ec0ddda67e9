"""Validation of `SafeCheckpointManager`'s arguments: errors name the argument and the fix."""

from __future__ import annotations

import numbers
from typing import Any


def check_bool(name: str, value: object) -> bool:
    """`value` if it is a bool, else a `TypeError` naming `name`."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r}: expected True or False, got {type(value).__name__}.")
    return value


def check_max_to_keep(value: object) -> int | None:
    """``max_to_keep`` as TensorFlow accepts it (integral floats such as 2.0 included)."""
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


def check_hours(value: object) -> float | None:
    """``keep_checkpoint_every_n_hours``; 0 disables it, as in TensorFlow."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or float(value) < 0:
        raise ValueError(
            f"keep_checkpoint_every_n_hours={value!r}: expected a positive number of hours, "
            "or None (0 also disables it, as in TensorFlow)."
        )
    return float(value) if value else None


def check_checkpoint(checkpoint: Any, init_fn: Any) -> None:
    """The two objects TensorFlow stores without checking."""
    if checkpoint is None or not callable(getattr(checkpoint, "restore", None)):
        raise TypeError(
            f"checkpoint={checkpoint!r}: expected a tf.train.Checkpoint (an object with "
            f"restore() and save_counter), got {type(checkpoint).__name__}."
        )
    if init_fn is not None and not callable(init_fn):
        raise TypeError(f"init_fn={init_fn!r}: expected a callable or None.")


def check_writes(read_only: bool, **options: bool) -> None:
    """Options that write to the directory cannot go with ``read_only=True``."""
    for option, value in options.items():
        if value and read_only:
            raise ValueError(
                f"{option}=True writes to the directory, but read_only=True was given; "
                "drop one of them."
            )
