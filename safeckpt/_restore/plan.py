"""What a restore decides, as values: the engine's input and output (`RestorePlan`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from safeckpt._info import CheckpointInfo
from safeckpt._report import RestoreReport
from safeckpt._restore.policies import FallbackPolicy
from safeckpt._settings import MatchMode, OnEmpty, StorageRetry, VerifyLevel


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


@dataclass(frozen=True)
class RestoreResult:
    """What the engine hands the manager: the plan to apply, then the error to raise, if any.

    Attributes:
        plan: What the manager changes, also when the restore failed (the checkpoints
            rejected on the way leave the rotation, quarantine moves what it must).
        error: What the restore raises once the plan is applied, or None.
    """

    plan: RestorePlan
    error: BaseException | None = None
