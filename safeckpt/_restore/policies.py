"""Fallback policies: what a restore does when the newest checkpoint cannot be used.

A policy *decides*; the restore engine (`safeckpt._restore.engine`) *applies*. A policy is any
object with a ``decide(context)`` method (the `FallbackPolicy` protocol): it is handed a
frozen `RecoveryContext` (the failure, the untried candidates, the rejected attempts) and
returns a decision — `TryCheckpoint`, `StartFresh`, `GiveUp` — or None to pass to the next
policy. It never calls back into the engine. After a `TryCheckpoint` that fails, the engine asks
the same policy again with a new context (the candidate has moved from `candidates` to
`attempts`); a decision that restores or starts fresh ends the restore.

`SafeCheckpointManager` normalizes its ``fallback`` argument once, at construction, into a
tuple of policies and asks them in order; when every policy has passed, the restore raises
the diagnosed error. String shorthands:

=================== ===================================
``"raise"``         `Raise()`
``"previous_valid"`` `PreviousValid()`
``"fresh_init"``    `FreshInit()`
=================== ===================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from safeckpt._diagnosis import Diagnosis
from safeckpt._info import CheckpointInfo
from safeckpt._public import public

#: Where the policy protocol is documented (named in the errors about it).
PROTOCOL_DOCS = "docs/fallback.md, section 'Policies'"


@public
@dataclass(frozen=True)
class RecoveryContext:
    """What a policy sees when the newest checkpoint cannot be used: a read-only snapshot.

    Attributes:
        failure: Why the newest checkpoint (or the directory) could not be used.
        candidates: Earlier checkpoints of the same name not tried yet, newest first by the
            rule (docs/fallback.md). A `TryCheckpoint` must name one of them.
        attempts: The diagnosis of every checkpoint tried and rejected so far in this
            restore, newest first (by any policy, and the newest checkpoint itself).
        tried: How many checkpoints the policy being asked has decided to try in this
            restore (each `TryCheckpoint` it returned, whatever came of it).
    """

    failure: Diagnosis
    candidates: tuple[CheckpointInfo, ...]
    attempts: tuple[Diagnosis, ...]
    tried: int = 0


@public
@dataclass(frozen=True)
class TryCheckpoint:
    """Decision: verify `checkpoint` at the manager's level, then restore it.

    When it restores, the restore ends (outcome ``fell_back``). When it is rejected, its
    diagnosis joins `RecoveryContext.attempts` and the same policy is asked again. A
    checkpoint the storage could not serve is tried again (`StorageRetry`) and then raises
    `StorageUnavailableError`, unless ``StorageRetry(fall_back=True)`` lets it be rejected
    like a damaged one. One another process removed meanwhile is not rejected: the policy is
    asked again with the candidates of a new listing (newer checkpoints first); after five
    such removals in one restore the restore raises `CheckpointNotFoundError`
    (``removed_concurrently``).

    Attributes:
        checkpoint: One of `RecoveryContext.candidates`.
    """

    checkpoint: CheckpointInfo


@public
@dataclass(frozen=True)
class StartFresh:
    """Decision: start from initialization, running ``init_fn``; the restore ends.

    The existing checkpoints are kept (new saves are numbered above them). Raises
    `StorageUnavailableError` instead when a checkpoint was skipped only because the storage
    could not serve it (``StorageRetry(fall_back=True)``): it may be usable.

    Attributes:
        sweep_existing: Leave the existing checkpoints in the ``max_to_keep`` rotation, so
            that later saves may delete them as TensorFlow would.
    """

    sweep_existing: bool = False


@public
@dataclass(frozen=True)
class GiveUp:
    """Decision: stop the chain and raise the diagnosed `RestoreError`, with every attempt."""


#: What `FallbackPolicy.decide` returns, besides None (pass to the next policy).
Decision = TryCheckpoint | StartFresh | GiveUp
DECISIONS = (TryCheckpoint, StartFresh, GiveUp)


@public
@runtime_checkable
class FallbackPolicy(Protocol):
    """A step of the fallback chain: looks at a `RecoveryContext`, returns a decision."""

    def decide(self, context: RecoveryContext) -> Decision | None:
        """`TryCheckpoint`, `StartFresh` or `GiveUp`; None passes to the next policy."""
        ...


@public
@dataclass(frozen=True)
class Raise:
    """Stop and raise the diagnosed error (``"raise"``)."""

    def decide(self, context: RecoveryContext) -> Decision | None:
        """Always `GiveUp`."""
        return GiveUp()


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

    def decide(self, context: RecoveryContext) -> Decision | None:
        """The newest untried candidate; None when none is left or `max_attempts` is spent."""
        if self.max_attempts is not None and context.tried >= self.max_attempts:
            return None
        if not context.candidates:
            return None
        return TryCheckpoint(context.candidates[0])


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

    def decide(self, context: RecoveryContext) -> Decision | None:
        """Always `StartFresh` (see there)."""
        return StartFresh(sweep_existing=self.sweep_existing)


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
    if callable(getattr(value, "recover", None)):
        raise TypeError(
            f"fallback={value!r}: {type(value).__name__} has recover(context), the former "
            "policy protocol, in which a policy called back into the restore (try_restore, "
            "initialize, fail). A policy now returns a decision from decide(context): "
            "TryCheckpoint(candidate), StartFresh(), GiveUp(), or None to pass to the next "
            f"policy. See {PROTOCOL_DOCS}."
        )
    raise TypeError(
        f"fallback={value!r}: expected a policy name such as 'previous_valid', an object with a "
        "decide(context) method (not the former recover(context), see "
        f"{PROTOCOL_DOCS}), or a sequence of them; got {type(value).__name__}."
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
