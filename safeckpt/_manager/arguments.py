"""Validation of `SafeCheckpointManager`'s arguments: errors name the argument and the fix."""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

from safeckpt._multiworker.agreement import PEER_TIMEOUT_ENV

#: Seconds a worker waits for another worker's report by default.
DEFAULT_PEER_TIMEOUT = 60.0


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


def check_peer_timeout(value: Any) -> float:
    """`value` in seconds, or the ``SAFECKPT_PEER_TIMEOUT`` environment variable, or 60.

    Raises:
        TypeError: `value` is not a number (or None).
        ValueError: The number (or the environment variable) is not positive and finite.
    """
    if value is None:
        text = os.environ.get(PEER_TIMEOUT_ENV, "").strip()
        if not text:
            return DEFAULT_PEER_TIMEOUT
        source = f"{PEER_TIMEOUT_ENV}={text!r}"
        try:
            value = float(text)
        except ValueError:
            value = math.nan
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                "peer_timeout must be a number of seconds (int or float) or None, got "
                f"{type(value).__name__}: {value!r}"
            )
        source = f"peer_timeout={value!r}"
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"{source} is not a valid time: expected a positive, finite number of seconds to "
            f"wait for another worker, such as {DEFAULT_PEER_TIMEOUT:g}."
        )
    return float(value)
