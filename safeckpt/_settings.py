"""The option vocabularies of a restore and their validators (public value types).

`VerifyLevel`, `OnEmpty` and `MatchMode` are closed vocabularies (``str`` enums); `StorageRetry`
is the ``storage_retry`` option. The ``normalize_*`` functions validate a user's argument once,
at construction, with an error that names it.
"""

from __future__ import annotations

from dataclasses import dataclass

from safeckpt._causes import Vocabulary
from safeckpt._public import public


@public
class VerifyLevel(Vocabulary):
    """How much of a checkpoint is checked before it is restored."""

    NONE = "none"
    """No check: TensorFlow's own errors during the restore are still caught and diagnosed."""

    QUICK = "quick"
    """Parse the index (checking its block checksums) and check every shard's size."""

    DEEP = "deep"
    """Quick, plus every tensor's CRC32C: no damaged checkpoint reaches TensorFlow."""


@public
class OnEmpty(Vocabulary):
    """What a restore does when the directory holds no checkpoint at all."""

    INITIALIZE = "initialize"
    """Call ``init_fn`` (if any) and start from initialization, as TensorFlow does."""

    RAISE = "raise"
    """Raise `CheckpointNotFoundError` (for evaluation and inference jobs)."""


@public
class MatchMode(Vocabulary):
    """What a restore requires of the match between the program and the checkpoint."""

    EXISTING = "existing"
    """Every variable the program has now must get a value; extra checkpoint values are fine."""

    CONSUMED = "consumed"
    """In addition, every value in the checkpoint must be used (a strict resume)."""

    PARTIAL = "partial"
    """No requirement (TensorFlow's ``expect_partial()``); everything is still reported."""


@public
@dataclass(frozen=True)
class StorageRetry:
    """What a restore does when the storage cannot read a checkpoint (``storage_retry``).

    A read that fails for a reason that says nothing about the bytes (a dropped connection,
    ``5xx`` answers, a timeout, an unreachable host: cause ``storage_unavailable``, or
    TensorFlow failing on files that verify: ``unknown``) is not damage. The restore tries
    the same checkpoint again, waiting ``initial_delay``, then ``multiplier`` times longer
    each time (at most ``max_delay``), and after ``attempts`` tries raises
    `StorageUnavailableError` without falling back: the fallback policies only skip
    checkpoints whose damage is proven. This comes on top of the storage client's own
    retries (TensorFlow's GCS client retries each request up to 10 times).

    Attributes:
        attempts: Tries per checkpoint, the first included (1: no retry).
        initial_delay: Seconds before the second try.
        multiplier: Growth of the delay between tries.
        max_delay: The longest delay, in seconds.
        fall_back: After the last try, let the fallback policies skip the unreadable
            checkpoint as if it were damaged (it is kept: never moved, deleted or written
            over). Off by default; a fresh start never follows from unreadable storage.
    """

    attempts: int = 3
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 10.0
    fall_back: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise TypeError(f"attempts={self.attempts!r}: expected an integer >= 1.")
        if self.attempts < 1:
            raise ValueError(f"attempts={self.attempts!r}: expected an integer >= 1.")
        for name in ("initial_delay", "multiplier", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name}={value!r}: expected a number >= 0 (seconds).")
        if not isinstance(self.fall_back, bool):
            raise TypeError(f"fall_back={self.fall_back!r}: expected True or False.")

    def delay(self, attempt: int) -> float | None:
        """Seconds to wait after failed try number `attempt` (from 1); None: give up."""
        if attempt >= self.attempts:
            return None
        return float(min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1)))


_DEFAULT_RETRY = StorageRetry()


def normalize_storage_retry(value: object) -> StorageRetry:
    """Validate the ``storage_retry`` argument (None: the defaults)."""
    if value is None:
        return _DEFAULT_RETRY
    if not isinstance(value, StorageRetry):
        raise TypeError(
            f"storage_retry={value!r}: expected a safeckpt.StorageRetry (e.g. "
            f"StorageRetry(attempts=5)) or None, got {type(value).__name__}."
        )
    return value


#: ``save_retry="auto"`` (the default): `SAVE_RETRY_REMOTE` on remote storage, none locally.
AUTO = "auto"
#: What ``save_retry="auto"`` means on remote storage (``gs://`` and every scheme but
#: ``file://`` and ``ram://``): three tries, 1 s then 2 s apart.
SAVE_RETRY_REMOTE = StorageRetry()


def normalize_save_retry(value: object) -> StorageRetry | str | None:
    """Validate the ``save_retry`` argument: a `StorageRetry`, None (off) or ``"auto"``."""
    if value is None or isinstance(value, StorageRetry) or value == AUTO:
        return value
    raise TypeError(
        f"save_retry={value!r}: expected a safeckpt.StorageRetry (e.g. "
        f"StorageRetry(attempts=5)), None (no retry) or {AUTO!r} (retry on remote storage)."
    )


def normalize_enum(name: str, value: object, enum: type[Vocabulary]) -> str:
    """Validate a string option against `enum`; returns the member's value."""
    if isinstance(value, enum):
        return str(value.value)
    if isinstance(value, str) and any(value == member.value for member in enum):
        return value
    choices = [member.value for member in enum]
    if not isinstance(value, str):
        raise TypeError(
            f"{name}={value!r}: expected one of {', '.join(map(repr, choices))}, "
            f"got {type(value).__name__}."
        )
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(map(repr, choices))}.")
    return value


def normalize_verify(value: object) -> VerifyLevel:
    """Validate the ``verify`` argument."""
    return VerifyLevel(normalize_enum("verify", value, VerifyLevel))


def normalize_match(value: object) -> MatchMode:
    """Validate the ``match`` argument."""
    return MatchMode(normalize_enum("match", value, MatchMode))


def normalize_on_empty(value: object) -> OnEmpty:
    """Validate the ``on_empty`` argument."""
    return OnEmpty(normalize_enum("on_empty", value, OnEmpty))
