"""What a restore decides, as values: the engine's input and output (`RestorePlan`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from safeckpt._catalog.inventory import Inventory
from safeckpt._causes import Cause
from safeckpt._format.layout import INDEX_SUFFIX
from safeckpt._info import CheckpointInfo
from safeckpt._report import RestoreReport
from safeckpt._restore.policies import FallbackPolicy, MatchMode, OnEmpty, StorageRetry, VerifyLevel


@dataclass(frozen=True)
class RestoreSettings:
    """What a restore needs to know about its manager, as plain values."""

    checkpoint: Any
    directory: str
    checkpoint_name: str
    verify: VerifyLevel
    fallback: tuple[FallbackPolicy, ...]
    on_empty: OnEmpty
    quarantine: bool
    init_fn: Callable[[], Any] | None
    options: Any = None
    match: MatchMode = MatchMode.EXISTING
    retry: StorageRetry = field(default_factory=StorageRetry)


@dataclass(frozen=True)
class RestorePlan:
    """What the manager changes after a restore (the engine decides, the manager applies).

    Attributes:
        report: The `RestoreReport` (None when the restore raised).
        rejected: Checkpoints rejected on the way: they leave the ``max_to_keep`` rotation.
        quarantine: Of those, the ones whose files move into ``quarantine/`` (then the state
            file is rewritten so that nothing names them).
        adopt: The restored checkpoint: it becomes the newest of the rotation.
        make_latest: Whether `adopt` also becomes `latest_checkpoint` (not for an explicit
            request, which TensorFlow does not record either).
        keep_newer: Intact checkpoints the rule ranks above `adopt` (a rewind): they leave the
            rotation and are kept.
        fresh_above: After an initialization: number new saves above this step.
        keep_existing: With `fresh_above`: keep the inherited checkpoints out of the rotation.
        clear_latest: Set `latest_checkpoint` to None (a fresh start after a failure).
        existing_steps: Steps of the manager's name whose files exist (no save writes over
            them), when the directory was listed.
        restored: Whether a checkpoint was restored (the interval counts from its step).
    """

    report: RestoreReport | None
    rejected: tuple[CheckpointInfo, ...] = ()
    quarantine: tuple[CheckpointInfo, ...] = ()
    adopt: str | None = None
    make_latest: bool = False
    keep_newer: tuple[str, ...] = ()
    fresh_above: int | None = None
    keep_existing: bool = True
    clear_latest: bool = False
    existing_steps: frozenset[int] | None = None
    restored: bool = False


def existing_steps(inventory: Inventory, name: str) -> frozenset[int]:
    """Steps of `name` whose files a save must not write over.

    Only the remains of a save that was interrupted before its index was complete (its
    ``_temp/`` is still there) and that a readable state file does not list are not
    protected: TensorFlow's next save of that number completes them.
    """
    garbled = inventory.state.exists and inventory.state.problem is not None
    return frozenset(
        c.step
        for c in inventory.family(name)
        if c.step is not None
        and any(not f.endswith("_temp/") for f in c.files)
        and (garbled or c.in_state_file or c.problems != (Cause.INCOMPLETE_SAVE,))
    )


def has_checkpoints(inventory: Inventory) -> bool:
    """Whether anything here is (or was) a checkpoint: an index file, or a state entry.

    What an interrupted first save leaves (data without an index, or an unfinished index
    next to its ``_temp/``; TensorFlow writes the index last) does not count: such a
    directory is still empty. An index without its data does count: that is damage.
    """
    return any(
        c.in_state_file
        or (
            c.problems != (Cause.INCOMPLETE_SAVE,)
            and any(f.endswith(INDEX_SUFFIX) for f in c.files)
        )
        for c in inventory.checkpoints
    )


def state_notes(inventory: Inventory, primary: CheckpointInfo) -> list[str]:
    """What the report says about how the state file led (or did not lead) to `primary`."""
    notes: list[str] = []
    state = inventory.state
    how = (
        f"{primary.basename} was found by listing the directory (TensorFlow would have "
        "started from scratch)"
    )
    if not state.exists:
        notes.append(f"The state file {state.path} is missing; {how}.")
    elif state.problem is not None:
        notes.append(f"The state file is unreadable ({state.error}); {how}.")
    latest = inventory.state_latest()
    if latest is not None and latest.reanchored and latest.prefix == primary.prefix:
        notes.append(
            f"The state file records {latest.recorded!r}, outside {inventory.directory}; "
            f"re-anchored to {primary.prefix}."
        )
    return notes
