"""The restore engine: runs the fallback policies and returns a `RestorePlan`.

`Restore.newest` resolves "the newest usable checkpoint" by the rule (`safeckpt._catalog.ranking`);
`Restore.exact` restores an explicit path exactly as asked. Both verify a checkpoint at the
configured level *before* TensorFlow touches it and classify failures by probing the files
(`safeckpt._restore.candidates`). The engine restores into the `tf.train.Checkpoint` it is given and
decides what the manager must change; it never touches the manager. The manager applies the
plan (`SafeCheckpointManager._apply`), also when the engine raises (`Restore.plan_so_far`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from safeckpt._catalog.inventory import Inventory, scan
from safeckpt._catalog.ranking import consistent_rank, not_before, rank
from safeckpt._catalog.removed import RELISTS, relisted_if_gone, removed_diagnosis
from safeckpt._causes import CHECKPOINT_DAMAGE, MISMATCH, UNPROVEN, Cause
from safeckpt._diagnose.alternatives import with_alternatives
from safeckpt._diagnose.directory import diagnose_directory
from safeckpt._diagnose.path import diagnose
from safeckpt._diagnosis import Diagnosis
from safeckpt._errors import restore_error
from safeckpt._format.layout import INDEX_SUFFIX, split_step
from safeckpt._format.verify import check_prefix
from safeckpt._info import CheckpointInfo
from safeckpt._io import fs
from safeckpt._io import tf as adapter
from safeckpt._report import Outcome, RestoreReport
from safeckpt._restore.candidates import RESTORE_ERRORS, inventory_diagnosis, stage_diagnosis
from safeckpt._restore.match import Match
from safeckpt._restore.plan import RestorePlan, RestoreSettings
from safeckpt._restore.reading import match_or_raise, tf_restore
from safeckpt._restore.request import not_found_cause, resolve_request
from safeckpt._restore.retrying import listed, retrying, unreadable_error
from safeckpt._settings import OnEmpty, VerifyLevel

logger = logging.getLogger("safeckpt")

_TRANSIENT = (Cause.PERMISSION_DENIED, Cause.STORAGE_UNAVAILABLE)


@dataclass
class _Progress:
    """What the engine has decided so far."""

    rejected: list[CheckpointInfo] = field(default_factory=list)
    quarantine: list[CheckpointInfo] = field(default_factory=list)
    existing: frozenset[int] | None = None


class Restore:
    """One restore through the policies; also the `RecoveryContext` the policies see."""

    def __init__(self, settings: RestoreSettings) -> None:
        self._s = settings
        self._failure: Diagnosis | None = None
        self._candidates: list[CheckpointInfo] = []
        self._attempts: list[Diagnosis] = []
        self._inventory: Inventory | None = None
        self._requested: str | None = None
        self._notes: list[str] = []
        self._tf_failed = False
        self._progress = _Progress()
        self._plan: RestorePlan | None = None
        self._removed: list[str] = []
        self._was_removed = False

    # RecoveryContext -------------------------------------------------------------------

    @property
    def failure(self) -> Diagnosis:
        """Why the newest checkpoint (or the directory) could not be used."""
        assert self._failure is not None
        return self._failure

    @property
    def candidates(self) -> tuple[CheckpointInfo, ...]:
        """Earlier checkpoints not tried yet, newest first."""
        return tuple(self._candidates)

    @property
    def attempts(self) -> tuple[Diagnosis, ...]:
        """Every checkpoint tried and rejected so far, newest first."""
        return tuple(self._attempts)

    def try_restore(self, checkpoint: CheckpointInfo) -> RestoreReport | None:
        """Verify, then restore `checkpoint`; None (and an attempt recorded) if rejected.

        A checkpoint the storage could not read is tried again (``storage_retry``); after
        the last try it raises `StorageUnavailableError` (nothing is proven damaged) unless
        ``StorageRetry.fall_back`` lets it be rejected like a damaged one. One another
        process removed meanwhile is stepped over (`_step_over`).
        """
        if checkpoint in self._candidates:
            self._candidates.remove(checkpoint)
        self._was_removed = False
        diagnosis = retrying(self._s.retry, checkpoint.basename, lambda: self._attempt(checkpoint))
        if diagnosis is None:
            assert self._plan is not None
            return self._plan.report
        fresh = relisted_if_gone(checkpoint, diagnosis)
        if fresh is not None:
            self._step_over(checkpoint, fresh)
            return None
        if diagnosis.cause in UNPROVEN and not self._s.retry.fall_back:
            raise unreadable_error(diagnosis, self._s.retry, self.attempts)
        self._reject(checkpoint, diagnosis)
        return None

    def _step_over(self, checkpoint: CheckpointInfo, fresh: Inventory) -> None:
        """`checkpoint` was removed by another process: go on with `fresh`'s candidates.

        Newer checkpoints that appeared meanwhile come first; nothing already tried comes
        back. Raises ``removed_concurrently`` after `RELISTS` removals, or when nothing is
        left to try and nothing was damaged.
        """
        self._removed.append(checkpoint.basename)
        self._was_removed = True
        self._progress.rejected.append(checkpoint)  # it leaves the rotation, as it left the disk
        logger.info("%s was removed by another process while being restored.", checkpoint.prefix)
        self._notes.append(
            f"{checkpoint.basename} was removed by another process while it was being "
            "restored; the directory was listed again."
        )
        name = self._s.checkpoint_name
        tried = {c.prefix for c in self._progress.rejected}
        tried.update(d.checkpoint for d in self._attempts if d.checkpoint is not None)
        self._inventory = fresh
        self._progress.existing = fresh.existing_steps(name)
        self._candidates = [c for c in rank(fresh, name).candidates if c.prefix not in tried]
        if len(self._removed) > RELISTS or not (self._candidates or self._attempts):
            found = removed_diagnosis(checkpoint, self._removed)
            raise restore_error(
                found, self.attempts, f"Cannot restore from {found.directory}.\n{found}"
            )

    def _attempt(self, checkpoint: CheckpointInfo) -> Diagnosis | None:
        """One try of `try_restore`: None when restored (`_plan` is set), else the diagnosis."""
        diagnosis = inventory_diagnosis(checkpoint, self._s.verify)
        if not diagnosis.ok:
            return diagnosis
        # A mismatch raises: no fallback.
        match = match_or_raise(self._s.checkpoint, checkpoint.prefix, self._s.match, self.attempts)
        if isinstance(match, Diagnosis):
            return match
        self._note_match(match)
        try:
            status = tf_restore(
                self._s.checkpoint, checkpoint.prefix, self._s.options, self._s.match, match
            )
        except RESTORE_ERRORS as exc:
            self._tf_failed = True
            diagnosis = stage_diagnosis(checkpoint.prefix, exc)
            if diagnosis.cause in MISMATCH:
                raise restore_error(diagnosis, self.attempts) from exc
            return diagnosis
        outcome = Outcome.FELL_BACK if self._attempts else Outcome.RESTORED
        self._plan = self._restored(checkpoint, status, outcome, match)
        return None

    def initialize(self, *, sweep_existing: bool = False) -> RestoreReport:
        """Start from initialization, keeping every existing checkpoint.

        Raises `StorageUnavailableError` instead when a checkpoint was skipped only because
        the storage could not serve it (``StorageRetry(fall_back=True)``): it may be usable.
        """
        unread = [a for a in self._attempts if a.cause in UNPROVEN]
        if unread:
            raise unreadable_error(unread[0], self._s.retry, self.attempts)
        reason = self._failure
        if reason is not None:
            logger.warning(
                "Starting from initialization in %s although checkpoints exist (fallback "
                "policy fresh_init): %s",
                self._s.directory,
                reason.summary,
            )
            if self._tf_failed:
                dropped = adapter.drop_pending_restorations(self._s.checkpoint)
                self._notes.append(
                    f"A checkpoint failed inside TensorFlow's restore; {dropped} pending "
                    "restoration(s) it queued for objects not created yet were dropped."
                )
        self._plan = self._initialized(reason, sweep_existing=sweep_existing)
        assert self._plan.report is not None
        return self._plan.report

    def fail(self) -> NoReturn:
        """Raise the diagnosed error for `failure`.

        When every candidate was tried, nothing in the directory is usable: the error is then
        also a `tf.errors.NotFoundError`, whatever the damage.
        """
        raise restore_error(
            self._error_diagnosis(),
            self.attempts,
            self._error_message(),
            exhausted=not self._candidates,
        )

    # Entry points ----------------------------------------------------------------------

    def plan_so_far(self) -> RestorePlan:
        """The decisions taken before the engine raised (rejections, the directory's steps)."""
        return RestorePlan(
            None,
            tuple(self._progress.rejected),
            tuple(self._progress.quarantine),
            existing_steps=self._progress.existing,
        )

    def newest(self, inventory: Inventory | None = None, floor: str | None = None) -> RestorePlan:
        """Restore the newest usable checkpoint, applying the policies.

        Args:
            inventory: The directory's inventory when the caller has just listed it.
            floor: The checkpoint the manager last returned, restored or saved: never go
                back before it while it is a candidate (`safeckpt._catalog.ranking.not_before`).
        """
        directory, name = self._s.directory, self._s.checkpoint_name
        found = listed(self._s.retry, directory, name, inventory)
        if isinstance(found, Diagnosis):
            if found.cause is Cause.DIRECTORY_MISSING:
                return self._empty(found)
            return self._recover(found)
        inventory, ranking = consistent_rank(found, name)
        ranking = not_before(ranking, inventory, floor)
        self._inventory = inventory
        self._progress.existing = inventory.existing_steps(name)
        self._notes.extend(f"The state file: {odd}." for odd in inventory.state.oddities)
        self._notes.extend(ranking.notes)
        skipped = ranking.latest_unusable
        if skipped is not None:
            # What TensorFlow would restore; not a candidate (its files are gone or partial).
            self._requested = skipped.prefix
            diagnosis = inventory_diagnosis(skipped, VerifyLevel.QUICK)
            if not diagnosis.ok:
                self._reject(skipped, diagnosis)
        for info in inventory.family(name):
            if info not in ranking.candidates and not info.in_state_file:
                self._notes.append(
                    f"{info.basename} is incomplete ({', '.join(map(str, info.problems))}) and "
                    "not in the state file: a save that never finished; ignored."
                )
        if not ranking.candidates:
            state = inventory.state
            unsure = state.problem in _TRANSIENT or state.not_a_file
            if not inventory.has_checkpoints() and not unsure:
                if state.problem is not None:
                    self._notes.append(f"The state file is unreadable: {state.error}.")
                return self._empty(None)
            if self._attempts:
                return self._recover(self._attempts[0])
            return self._recover(diagnose_directory(directory, checkpoint_name=name))
        primary, *rest = ranking.candidates
        self._candidates = rest
        self._requested = self._requested or primary.prefix
        self._notes.extend(inventory.state_notes(primary))
        while self.try_restore(primary) is None:
            if not self._was_removed or self._attempts:
                return self._recover(self._attempts[0])
            primary = self._candidates[0]  # removed meanwhile: the new newest, not a fallback
        assert self._plan is not None
        return self._plan

    def exact(self, save_path: object) -> RestorePlan:
        """Restore exactly `save_path` (normalized), or raise with a diagnosis."""
        directory, name = self._s.directory, self._s.checkpoint_name
        prefix = resolve_request(save_path, name, self._notes)
        for note in self._notes:
            logger.info("%s", note)
        self._requested = prefix
        try:
            has_index = fs.exists(prefix + INDEX_SUFFIX)
        except RESTORE_ERRORS:
            has_index = False
        if not has_index:
            found = diagnose(prefix, checkpoint_name=name)
            if found.ok:  # pragma: no cover - a V1 checkpoint (single file) or a race
                found = replace(found, cause=Cause.UNKNOWN)
            raise restore_error(found, (), f"Cannot restore {prefix}.\n{found}")
        if self._s.verify is not VerifyLevel.NONE:
            checked = check_prefix(prefix, deep=self._s.verify is VerifyLevel.DEEP)
            if not checked.ok:
                found = with_alternatives(checked, prefix)
                raise restore_error(found, (found,), f"Cannot restore {prefix}.\n{found}")
        match = match_or_raise(self._s.checkpoint, prefix, self._s.match, self.attempts)
        if isinstance(match, Diagnosis):
            found = with_alternatives(match, prefix)
            raise restore_error(found, (found,), f"Cannot restore {prefix}.\n{found}")
        self._note_match(match)
        try:
            status = tf_restore(self._s.checkpoint, prefix, self._s.options, self._s.match, match)
        except RESTORE_ERRORS as exc:
            found = stage_diagnosis(prefix, exc)
            if found.cause not in MISMATCH:
                found = with_alternatives(found, prefix)
            raise restore_error(found, (found,), f"Cannot restore {prefix}.\n{found}") from exc
        newer: tuple[str, ...] = ()
        existing = None
        if fs.dirname(prefix) == directory:
            inventory = scan(directory)
            existing = inventory.existing_steps(name)
            ahead = [c.prefix for c in rank(inventory, name).candidates]
            newer = tuple(ahead[: ahead.index(prefix)]) if prefix in ahead else ()
        logger.info("Restored %s (explicit request).", prefix)
        report = RestoreReport(
            save_path=prefix,
            outcome=Outcome.RESTORED,
            requested=prefix,
            status=status,
            step=split_step(fs.basename(prefix))[1],
            directory=directory,
            notes=tuple(self._notes),
            unmatched=match.unmatched if match else (),
            unused=match.unused if match else (),
            pending=match.pending if match else (),
        )
        return RestorePlan(
            report,
            adopt=prefix if existing is not None else None,
            keep_newer=newer,
            existing_steps=existing,
            restored=True,
        )

    # Internals -------------------------------------------------------------------------

    def _note_match(self, match: Match | None) -> None:
        if match is not None:
            self._notes.extend(n for n in match.notes if n not in self._notes)

    def _reject(self, info: CheckpointInfo, diagnosis: Diagnosis) -> None:
        self._attempts.append(diagnosis)
        logger.warning("Cannot restore %s: %s", info.prefix, diagnosis.summary)
        self._progress.rejected.append(info)
        if (
            self._s.quarantine
            and diagnosis.cause in CHECKPOINT_DAMAGE
            and diagnosis.cause is not Cause.PERMISSION_DENIED
            and info.files
        ):
            self._progress.quarantine.append(info)

    def _restored(
        self, info: CheckpointInfo, status: Any, outcome: Outcome, match: Match | None
    ) -> RestorePlan:
        report = RestoreReport(
            save_path=info.prefix,
            outcome=outcome,
            requested=self._requested,
            skipped=self.attempts,
            status=status,
            step=info.step,
            directory=self._s.directory,
            notes=tuple(self._notes),
            unmatched=match.unmatched if match else (),
            unused=match.unused if match else (),
            pending=match.pending if match else (),
        )
        if outcome is Outcome.FELL_BACK:
            logger.warning(
                "Fell back to %s; %d newer checkpoint(s) could not be restored. First: %s",
                info.prefix,
                len(self._attempts),
                self._attempts[0].summary,
            )
        logger.info("Restored %s (step %s, %s).", info.prefix, info.step, outcome.value)
        return replace(
            self.plan_so_far(), report=report, adopt=info.prefix, make_latest=True, restored=True
        )

    def _initialized(self, reason: Diagnosis | None, *, sweep_existing: bool) -> RestorePlan:
        if self._s.init_fn is not None:
            self._s.init_fn()
        # Not restore(None): it creates save_counter (a collective TF's initialization skips).
        status = getattr(self._s.checkpoint, "read", self._s.checkpoint.restore)(None)
        family = self._inventory.family(self._s.checkpoint_name) if self._inventory else []
        highest = max((c.step for c in family if c.step is not None), default=0)
        report = RestoreReport(
            save_path=None,
            outcome=Outcome.INITIALIZED,
            requested=self._requested,
            skipped=self.attempts,
            status=status,
            directory=self._s.directory,
            reason=reason,
            notes=tuple(self._notes),
        )
        if reason is None:
            logger.info("No checkpoint in %s: starting from initialization.", self._s.directory)
        return replace(
            self.plan_so_far(),
            report=report,
            fresh_above=highest,
            keep_existing=not sweep_existing,
            clear_latest=reason is not None,
        )

    def _empty(self, diagnosis: Diagnosis | None) -> RestorePlan:
        if self._s.on_empty is OnEmpty.RAISE:
            found = diagnosis or diagnose(
                self._s.directory, checkpoint_name=self._s.checkpoint_name
            )
            message = (
                f"No checkpoint to restore in {self._s.directory} (on_empty='raise').\n"
                + str(found)
            )
            raise restore_error(replace(found, cause=not_found_cause(found)), (), message)
        return self._initialized(None, sweep_existing=False)

    def _recover(self, failure: Diagnosis) -> RestorePlan:
        self._failure = failure
        if failure.cause in UNPROVEN and failure.checkpoint is None:
            raise unreadable_error(failure, self._s.retry, self.attempts)  # never a fresh start
        for policy in self._s.fallback:
            if policy.recover(self) is not None and self._plan is not None:
                return self._plan
        self.fail()

    def _error_diagnosis(self) -> Diagnosis:
        failure = self.failure
        suggestions = list(failure.suggestions)
        suggestions.append(f"See the full diagnosis: safeckpt doctor {self._s.directory}")
        if failure.cause in CHECKPOINT_DAMAGE or failure.cause is Cause.STATE_FILE_STALE:
            suggestions.append(
                "To start from initialization while these checkpoints exist (they are kept), "
                "construct the manager with fallback=('previous_valid', 'fresh_init')."
            )
        return replace(failure, suggestions=tuple(dict.fromkeys(suggestions)))

    def _error_message(self) -> str:
        lines = [f"No checkpoint in {self._s.directory} could be restored."]
        lines.append(str(self._error_diagnosis()))
        if len(self._attempts) > 1:
            lines.append("Checkpoints tried, newest first:")
            lines.extend(f"  - {d.checkpoint}: {d.summary}" for d in self._attempts)
        return "\n".join(lines)
