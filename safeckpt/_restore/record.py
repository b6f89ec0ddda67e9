"""The one record of a restore: typed events, and the two functions that read it.

The engine (`safeckpt._restore.engine`) appends an event for everything it does or learns,
in order, and never edits one. `report_of` builds the `RestoreReport` and `result_of` the
`RestorePlan` (with the error, when the restore failed) from that list alone: there is no
other account of what a restore did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from safeckpt._diagnosis import Diagnosis
from safeckpt._info import CheckpointInfo
from safeckpt._report import Outcome, RestoreReport
from safeckpt._restore.plan import RestorePlan, RestoreResult


@dataclass(frozen=True)
class Requested:
    """The checkpoint the request named (the explicit path, or what TensorFlow would restore)."""

    prefix: str


@dataclass(frozen=True)
class Noted:
    """A note for the report."""

    text: str


@dataclass(frozen=True)
class Listed:
    """The directory was listed (again): which steps of the manager's name exist.

    Attributes:
        existing_steps: Steps whose files exist (no save may write over them).
        highest_step: The highest of them, 0 if none (a fresh start numbers saves above it).
    """

    existing_steps: frozenset[int]
    highest_step: int


@dataclass(frozen=True)
class Rejected:
    """A checkpoint was tried and rejected (it leaves the rotation).

    Attributes:
        checkpoint: The checkpoint.
        diagnosis: Why.
        quarantine: Whether its files move into ``quarantine/``.
    """

    checkpoint: CheckpointInfo
    diagnosis: Diagnosis
    quarantine: bool = False


@dataclass(frozen=True)
class Removed:
    """A checkpoint another process removed while it was being tried (it leaves the rotation)."""

    checkpoint: CheckpointInfo


@dataclass(frozen=True)
class FailedInTensorFlow:
    """TensorFlow's restore of `prefix` raised (it may have queued pending restorations)."""

    prefix: str


@dataclass(frozen=True)
class Restored:
    """A checkpoint was restored: the restore ends.

    Attributes:
        prefix: The checkpoint.
        step: Its step.
        status: TensorFlow's load status.
        unmatched: Program variables the checkpoint has no value for.
        unused: Checkpoint values the program does not use.
        pending: Values waiting for objects the program has not created yet.
        explicit: An explicit ``restore(save_path)`` (not recorded as the latest checkpoint).
        keep_newer: With `explicit`: intact checkpoints the rule ranks above it.
    """

    prefix: str
    step: int | None
    status: Any
    unmatched: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    explicit: bool = False
    keep_newer: tuple[str, ...] = ()


@dataclass(frozen=True)
class StartedFresh:
    """The program started from initialization: the restore ends.

    Attributes:
        reason: The failure that led there, or None (nothing to restore).
        status: TensorFlow's status of the initialization.
        sweep_existing: Whether the existing checkpoints stay in the rotation.
    """

    reason: Diagnosis | None
    status: Any
    sweep_existing: bool = False


@dataclass(frozen=True)
class Failed:
    """The restore ended in an error, raised once the plan is applied."""

    error: BaseException


Event = (
    Requested
    | Noted
    | Listed
    | Rejected
    | Removed
    | FailedInTensorFlow
    | Restored
    | StartedFresh
    | Failed
)


def attempts_of(events: Sequence[Event]) -> tuple[Diagnosis, ...]:
    """The diagnosis of every rejected checkpoint, in the order they were tried."""
    return tuple(e.diagnosis for e in events if isinstance(e, Rejected))


def notes_of(events: Sequence[Event]) -> tuple[str, ...]:
    """Every note, in order."""
    return tuple(e.text for e in events if isinstance(e, Noted))


def last_listing(events: Sequence[Event]) -> Listed | None:
    """The latest listing of the directory, if it was listed."""
    return next((e for e in reversed(events) if isinstance(e, Listed)), None)


def _end(events: Sequence[Event]) -> Restored | StartedFresh | Failed | None:
    last = events[-1] if events else None
    return last if isinstance(last, (Restored, StartedFresh, Failed)) else None


def report_of(events: Sequence[Event], directory: str) -> RestoreReport | None:
    """The `RestoreReport` of a restore that ended in a checkpoint or a fresh start."""
    end = _end(events)
    requested = next((e.prefix for e in events if isinstance(e, Requested)), None)
    attempts = attempts_of(events)
    if isinstance(end, Restored):
        return RestoreReport(
            save_path=end.prefix,
            outcome=Outcome.FELL_BACK if attempts and not end.explicit else Outcome.RESTORED,
            requested=requested,
            skipped=attempts,
            status=end.status,
            step=end.step,
            directory=directory,
            notes=notes_of(events),
            unmatched=end.unmatched,
            unused=end.unused,
            pending=end.pending,
        )
    if isinstance(end, StartedFresh):
        return RestoreReport(
            save_path=None,
            outcome=Outcome.INITIALIZED,
            requested=requested,
            skipped=attempts,
            status=end.status,
            directory=directory,
            reason=end.reason,
            notes=notes_of(events),
        )
    return None


def result_of(events: Sequence[Event], directory: str) -> RestoreResult:
    """The `RestorePlan` the manager applies, and the error it then raises (if any)."""
    listing = last_listing(events)
    plan = RestorePlan(
        report_of(events, directory),
        rejected=tuple(e.checkpoint for e in events if isinstance(e, (Rejected, Removed))),
        quarantine=tuple(e.checkpoint for e in events if isinstance(e, Rejected) and e.quarantine),
        existing_steps=None if listing is None else listing.existing_steps,
    )
    end = _end(events)
    if isinstance(end, Restored):
        if end.explicit:  # adopted into the rotation only when it is in the directory
            adopt = end.prefix if listing is not None else None
            plan = replace(plan, adopt=adopt, keep_newer=end.keep_newer, restored=True)
        else:
            plan = replace(plan, adopt=end.prefix, make_latest=True, restored=True)
    elif isinstance(end, StartedFresh):
        plan = replace(
            plan,
            fresh_above=0 if listing is None else listing.highest_step,
            keep_existing=not end.sweep_existing,
            clear_latest=end.reason is not None,
        )
    return RestoreResult(plan, end.error if isinstance(end, Failed) else None)
