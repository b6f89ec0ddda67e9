"""Fallback policies: what a restore does when the newest checkpoint cannot be used.

A policy is any object with a ``recover(context)`` method (the `FallbackPolicy` protocol).
`SafeCheckpointManager` normalizes its ``fallback`` argument once, at construction, into a
tuple of policies and applies them in order until one returns a `RestoreReport`; when none
does, the restore raises the diagnosed error. String shorthands:

=================== ===================================
``"raise"``         `Raise()`
``"previous_valid"`` `PreviousValid()`
``"fresh_init"``    `FreshInit()`
=================== ===================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol, runtime_checkable

from safeckpt._causes import Vocabulary
from safeckpt._diagnosis import Diagnosis
from safeckpt._info import CheckpointInfo
from safeckpt._public import public
from safeckpt._report import RestoreReport


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
class RecoveryContext(Protocol):
    """What a policy can see and do while recovering from an unusable newest checkpoint."""

    @property
    def failure(self) -> Diagnosis:
        """Why the newest checkpoint (or the directory) could not be used."""
        ...

    @property
    def candidates(self) -> tuple[CheckpointInfo, ...]:
        """Earlier checkpoints of the same name not tried yet, newest first."""
        ...

    @property
    def attempts(self) -> tuple[Diagnosis, ...]:
        """The diagnosis of every checkpoint tried and rejected so far, newest first."""
        ...

    def try_restore(self, checkpoint: CheckpointInfo) -> RestoreReport | None:
        """Verify `checkpoint` at the manager's level, then restore it.

        Returns the report on success; None when it was rejected (its diagnosis is then
        appended to `attempts` and it leaves `candidates`). A checkpoint the storage could
        not serve is tried again (`StorageRetry`) and then raises `StorageUnavailableError`,
        unless ``StorageRetry(fall_back=True)`` lets it be rejected like a damaged one. A
        checkpoint another process removed meanwhile is not rejected: None is returned and
        `candidates` become those of a new listing (newer checkpoints first); after five
        such removals in one restore it raises `CheckpointNotFoundError`
        (``removed_concurrently``).
        """
        ...

    def initialize(self, *, sweep_existing: bool = False) -> RestoreReport:
        """Start from initialization: run ``init_fn`` and protect the existing checkpoints.

        Args:
            sweep_existing: Leave the existing checkpoints in the ``max_to_keep`` rotation.
        """
        ...

    def fail(self) -> NoReturn:
        """Raise the diagnosed `RestoreError` for `failure`, with every attempt."""
        ...


@public
@runtime_checkable
class FallbackPolicy(Protocol):
    """A step of the fallback chain."""

    def recover(self, context: RecoveryContext) -> RestoreReport | None:
        """Resolve the failure (return a report), pass to the next policy (None), or raise."""
        ...


@public
@dataclass(frozen=True)
class Raise:
    """Stop and raise the diagnosed error (``"raise"``)."""

    def recover(self, context: RecoveryContext) -> RestoreReport | None:
        """Raise `context.failure` as a `RestoreError`."""
        context.fail()


@public
@dataclass(frozen=True)
class PreviousValid:
    """Restore the newest earlier checkpoint that verifies (``"previous_valid"``).

    Candidates are the manager's complete checkpoints, in the order of the one rule for "the
    newest checkpoint" (docs/fallback.md). Each is verified at the manager's
    ``verify`` level before it is restored; one that fails verification or TensorFlow's
    restore is skipped.

    Attributes:
        max_attempts: The most earlier checkpoints to try, or None for all of them.
    """

    max_attempts: int | None = None

    def __post_init__(self) -> None:
        value = self.max_attempts
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(
                f"max_attempts={value!r}: expected a positive integer, or None to try every "
                "earlier checkpoint."
            )

    def recover(self, context: RecoveryContext) -> RestoreReport | None:
        """Try the candidates newest first; None when none of them could be restored."""
        tried = 0
        while context.candidates:
            if self.max_attempts is not None and tried >= self.max_attempts:
                return None
            tried += 1
            report = context.try_restore(context.candidates[0])
            if report is not None:
                return report
        return None


@public
@dataclass(frozen=True)
class FreshInit:
    """Start from initialization, logged at WARNING with the diagnosis (``"fresh_init"``).

    The existing checkpoints are kept: new checkpoints are numbered above the highest
    existing step, and the checkpoints found at construction leave the ``max_to_keep``
    rotation, so no save deletes or overwrites them.

    Attributes:
        sweep_existing: Keep the existing checkpoints in the ``max_to_keep`` rotation, so
            that later saves may delete them as TensorFlow would (opt-in).
    """

    sweep_existing: bool = False

    def recover(self, context: RecoveryContext) -> RestoreReport | None:
        """Initialize (see `RecoveryContext.initialize`)."""
        return context.initialize(sweep_existing=self.sweep_existing)


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


_SHORTHANDS: dict[str, FallbackPolicy] = {
    "raise": Raise(),
    "previous_valid": PreviousValid(),
    "fresh_init": FreshInit(),
}


def _one_policy(value: object) -> FallbackPolicy:
    if isinstance(value, str):
        try:
            return _SHORTHANDS[value]
        except KeyError:
            raise ValueError(
                f"fallback={value!r}: expected one of {', '.join(map(repr, _SHORTHANDS))}, a "
                "policy object (Raise(), PreviousValid(), FreshInit()), or a sequence of them."
            ) from None
    if isinstance(value, FallbackPolicy):
        return value
    raise TypeError(
        f"fallback={value!r}: expected a policy name such as 'previous_valid', an object with a "
        f"recover(context) method, or a sequence of them; got {type(value).__name__}."
    )


def normalize_fallback(value: object) -> tuple[FallbackPolicy, ...]:
    """Turn the ``fallback`` argument into a non-empty tuple of policies."""
    if isinstance(value, (str, FallbackPolicy)):
        return (_one_policy(value),)
    if isinstance(value, Sequence):
        if not value:
            raise ValueError(
                "fallback=(): expected at least one policy, e.g. 'raise' to never fall back."
            )
        return tuple(_one_policy(item) for item in value)
    return (_one_policy(value),)


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
