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

from safeckpt._diagnosis import Diagnosis
from safeckpt._info import CheckpointInfo
from safeckpt._public import public
from safeckpt._report import RestoreReport


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
