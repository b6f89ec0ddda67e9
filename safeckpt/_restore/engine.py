"""The restore engine: applies the policies' decisions and records what happened.

`Restore.run` reads the request once (`safeckpt._restore.request`): "the newest usable
checkpoint" is resolved by the rule (`safeckpt._catalog.ranking`), its fallback decided by the
policies (`safeckpt._restore.policies`); an explicit path is restored exactly as asked. Both go
through the same attempt (`Restore._read`): verify at the configured level *before* TensorFlow
touches the checkpoint, match the program, restore, and classify failures by probing the files
(`safeckpt._restore.candidates`).

The flow is one way: the engine asks each policy for a decision with a frozen
`RecoveryContext`, applies it, and appends what happened to one record
(`safeckpt._restore.record`); `run` returns the `RestoreResult` built from that record — the
`RestorePlan` and, when the restore failed, the error — and the manager applies the plan
(`SafeCheckpointManager._apply`), then raises the error. The engine restores into the
`tf.train.Checkpoint` it is given and never touches the manager.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
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
from safeckpt._restore.candidates import RESTORE_ERRORS, inventory_diagnosis, stage_diagnosis
from safeckpt._restore.match import Match
from safeckpt._restore.plan import RestoreResult, RestoreSettings
from safeckpt._restore.policies import (
    DECISIONS,
    PROTOCOL_DOCS,
    FallbackPolicy,
    GiveUp,
    RecoveryContext,
    StartFresh,
    TryCheckpoint,
)
from safeckpt._restore.reading import match_or_raise, tf_restore
from safeckpt._restore.record import (
    Event,
    Failed,
    FailedInTensorFlow,
    Listed,
    Noted,
    Rejected,
    Removed,
    Requested,
    Restored,
    StartedFresh,
    attempts_of,
    notes_of,
    result_of,
)
from safeckpt._restore.request import ExplicitRequest, not_found_cause, read_request
from safeckpt._restore.retrying import listed, retrying, unreadable_error
from safeckpt._settings import OnEmpty, VerifyLevel

logger = logging.getLogger("safeckpt")

_TRANSIENT = (Cause.PERMISSION_DENIED, Cause.STORAGE_UNAVAILABLE)


class _Tried(enum.Enum):
    """How trying one candidate ended."""

    RESTORED = "restored"
    REJECTED = "rejected"
    REMOVED = "removed"  # by another process, meanwhile: not a rejection


@dataclass(frozen=True)
class _Read:
    """One checkpoint read into the program."""

    status: Any
    match: Match | None


@dataclass(frozen=True)
class _Unread:
    """One checkpoint that could not be read: why, and TensorFlow's error if it raised."""

    diagnosis: Diagnosis
    error: BaseException | None = None

    @property
    def mismatch(self) -> bool:
        """TensorFlow found the checkpoint intact but not fitting the program: no fallback."""
        return self.error is not None and self.diagnosis.cause in MISMATCH


class Restore:
    """One restore: asks the policies, applies their decisions, records what happened."""

    def __init__(self, settings: RestoreSettings) -> None:
        self._s = settings
        self._events: list[Event] = []
        self._candidates: list[CheckpointInfo] = []
        self._failure: Diagnosis | None = None

    def run(
        self,
        save_path: object,
        latest: str | None,
        inventory: Inventory | None = None,
        floor: str | None = None,
    ) -> RestoreResult:
        """Restore what `save_path` asks for; never raises: the error is in the result.

        Args:
            save_path: ``restore()``'s argument: None (or the manager's `latest` checkpoint)
                for the newest usable checkpoint, else an explicit path.
            latest: The manager's latest checkpoint.
            inventory: The directory's inventory when the caller has just listed it.
            floor: The checkpoint the manager last returned, restored or saved: never go
                back before it while it is a candidate (`safeckpt._catalog.ranking.not_before`).
        """
        try:
            request = read_request(save_path, latest, self._s.checkpoint_name)
            if request is None:
                self._newest(inventory, floor)
            else:
                self._exact(request)
        except BaseException as exc:  # the manager applies the plan first, then raises it
            self._record(Failed(exc))
        return result_of(self._events, self._s.directory)

    @property
    def _attempts(self) -> tuple[Diagnosis, ...]:
        return attempts_of(self._events)

    def _record(self, event: Event) -> None:
        self._events.append(event)

    def _note(self, *texts: str) -> None:
        for text in texts:
            self._record(Noted(text))

    def _listed(self, inventory: Inventory) -> None:
        family = inventory.family(self._s.checkpoint_name)
        highest = max((c.step for c in family if c.step is not None), default=0)
        self._record(Listed(inventory.existing_steps(self._s.checkpoint_name), highest))

    # The newest usable checkpoint ------------------------------------------------------

    def _newest(self, inventory: Inventory | None, floor: str | None) -> None:
        directory, name = self._s.directory, self._s.checkpoint_name
        found = listed(self._s.retry, directory, name, inventory)
        if isinstance(found, Diagnosis):
            if found.cause is Cause.DIRECTORY_MISSING:
                self._empty(found)
                return
            self._fall_back(found)
            return
        inventory, ranking = consistent_rank(found, name)
        ranking = not_before(ranking, inventory, floor)
        self._listed(inventory)
        self._note(*(f"The state file: {odd}." for odd in inventory.state.oddities))
        self._note(*ranking.notes)
        skipped = ranking.latest_unusable
        if skipped is not None:
            # What TensorFlow would restore; not a candidate (its files are gone or partial).
            self._record(Requested(skipped.prefix))
            diagnosis = inventory_diagnosis(skipped, VerifyLevel.QUICK)
            if not diagnosis.ok:
                self._reject(skipped, diagnosis)
        for info in inventory.family(name):
            if info not in ranking.candidates and not info.in_state_file:
                self._note(
                    f"{info.basename} is incomplete ({', '.join(map(str, info.problems))}) and "
                    "not in the state file: a save that never finished; ignored."
                )
        if not ranking.candidates:
            state = inventory.state
            unsure = state.problem in _TRANSIENT or state.not_a_file
            if not inventory.has_checkpoints() and not unsure:
                if state.problem is not None:
                    self._note(f"The state file is unreadable: {state.error}.")
                self._empty(None)
                return
            if self._attempts:
                self._fall_back(self._attempts[0])
                return
            self._fall_back(diagnose_directory(directory, checkpoint_name=name))
            return
        primary, *rest = ranking.candidates
        self._candidates = rest
        if skipped is None:
            self._record(Requested(primary.prefix))
        self._note(*inventory.state_notes(primary))
        while (tried := self._try(primary)) is not _Tried.RESTORED:
            if tried is _Tried.REJECTED or self._attempts:
                self._fall_back(self._attempts[0])
                return
            primary = self._candidates[0]  # removed meanwhile: the new newest, not a fallback
        return None

    def _fall_back(self, failure: Diagnosis) -> None:
        """Ask the policies in order and apply each decision until one ends the restore."""
        self._failure = failure
        if failure.cause in UNPROVEN and failure.checkpoint is None:
            raise unreadable_error(failure, self._s.retry, self._attempts)  # never fresh
        for policy in self._s.fallback:
            tried = 0
            while True:
                context = RecoveryContext(failure, tuple(self._candidates), self._attempts, tried)
                decision = policy.decide(context)
                if decision is None:
                    break
                if isinstance(decision, TryCheckpoint):
                    self._check_candidate(policy, decision, context)
                    tried += 1
                    if self._try(decision.checkpoint) is _Tried.RESTORED:
                        return
                elif isinstance(decision, StartFresh):
                    self._start_fresh(decision.sweep_existing)
                    return
                elif isinstance(decision, GiveUp):
                    self._give_up()
                else:
                    names = ", ".join(d.__name__ for d in DECISIONS)
                    raise TypeError(
                        f"fallback policy {policy!r}: decide() returned {decision!r}; expected "
                        f"one of {names}, or None to pass to the next policy ({PROTOCOL_DOCS})."
                    )
        self._give_up()

    @staticmethod
    def _check_candidate(
        policy: FallbackPolicy, decision: TryCheckpoint, context: RecoveryContext
    ) -> None:
        if decision.checkpoint not in context.candidates:
            raise ValueError(
                f"fallback policy {policy!r} decided {decision!r}, which is not one of "
                "context.candidates (the checkpoints not tried yet); a policy may only try "
                f"those ({PROTOCOL_DOCS})."
            )

    def _try(self, checkpoint: CheckpointInfo) -> _Tried:
        """Verify, then restore `checkpoint`, trying again while the storage fails.

        A checkpoint the storage could not read is tried again (``storage_retry``); after
        the last try it raises `StorageUnavailableError` (nothing is proven damaged) unless
        ``StorageRetry.fall_back`` lets it be rejected like a damaged one. One another
        process removed meanwhile is stepped over (`_step_over`).
        """
        if checkpoint in self._candidates:
            self._candidates.remove(checkpoint)
        diagnosis = retrying(self._s.retry, checkpoint.basename, lambda: self._attempt(checkpoint))
        if diagnosis is None:
            return _Tried.RESTORED
        fresh = relisted_if_gone(checkpoint, diagnosis)
        if fresh is not None:
            self._step_over(checkpoint, fresh)
            return _Tried.REMOVED
        if diagnosis.cause in UNPROVEN and not self._s.retry.fall_back:
            raise unreadable_error(diagnosis, self._s.retry, self._attempts)
        self._reject(checkpoint, diagnosis)
        return _Tried.REJECTED

    def _attempt(self, checkpoint: CheckpointInfo) -> Diagnosis | None:
        """One try of a candidate: None when restored (recorded), else the diagnosis."""
        read = self._read(
            checkpoint.prefix, lambda: inventory_diagnosis(checkpoint, self._s.verify)
        )
        if isinstance(read, _Unread):
            if read.mismatch:  # no fallback: an earlier checkpoint would not fit either
                raise restore_error(read.diagnosis, self._attempts) from read.error
            return read.diagnosis
        self._restored(Restored(checkpoint.prefix, checkpoint.step, read.status, *_lists(read)))
        return None

    def _step_over(self, checkpoint: CheckpointInfo, fresh: Inventory) -> None:
        """`checkpoint` was removed by another process: go on with `fresh`'s candidates.

        Newer checkpoints that appeared meanwhile come first; nothing already tried comes
        back. Raises ``removed_concurrently`` after `RELISTS` removals, or when nothing is
        left to try and nothing was damaged.
        """
        self._record(Removed(checkpoint))  # it leaves the rotation, as it left the disk
        logger.info("%s was removed by another process while being restored.", checkpoint.prefix)
        self._note(
            f"{checkpoint.basename} was removed by another process while it was being "
            "restored; the directory was listed again."
        )
        tried = {e.checkpoint.prefix for e in self._events if isinstance(e, (Rejected, Removed))}
        tried.update(d.checkpoint for d in self._attempts if d.checkpoint is not None)
        self._listed(fresh)
        name = self._s.checkpoint_name
        self._candidates = [c for c in rank(fresh, name).candidates if c.prefix not in tried]
        removed = [e.checkpoint.basename for e in self._events if isinstance(e, Removed)]
        if len(removed) > RELISTS or not (self._candidates or self._attempts):
            found = removed_diagnosis(checkpoint, removed)
            raise restore_error(
                found, self._attempts, f"Cannot restore from {found.directory}.\n{found}"
            )

    def _reject(self, info: CheckpointInfo, diagnosis: Diagnosis) -> None:
        quarantine = (
            self._s.quarantine
            and diagnosis.cause in CHECKPOINT_DAMAGE
            and diagnosis.cause is not Cause.PERMISSION_DENIED
            and bool(info.files)
        )
        self._record(Rejected(info, diagnosis, quarantine))
        logger.warning("Cannot restore %s: %s", info.prefix, diagnosis.summary)

    def _restored(self, event: Restored) -> None:
        self._record(event)
        attempts = self._attempts
        if attempts:
            logger.warning(
                "Fell back to %s; %d newer checkpoint(s) could not be restored. First: %s",
                event.prefix,
                len(attempts),
                attempts[0].summary,
            )
        outcome = "fell_back" if attempts else "restored"
        logger.info("Restored %s (step %s, %s).", event.prefix, event.step, outcome)

    def _start_fresh(self, sweep_existing: bool) -> None:
        """A policy decided `StartFresh`: initialize, keeping every existing checkpoint.

        Raises `StorageUnavailableError` instead when a checkpoint was skipped only because
        the storage could not serve it (``StorageRetry(fall_back=True)``): it may be usable.
        """
        unread = [a for a in self._attempts if a.cause in UNPROVEN]
        if unread:
            raise unreadable_error(unread[0], self._s.retry, self._attempts)
        reason = self._failure
        if reason is not None:
            logger.warning(
                "Starting from initialization in %s although checkpoints exist (fallback "
                "policy fresh_init): %s",
                self._s.directory,
                reason.summary,
            )
            if any(isinstance(e, FailedInTensorFlow) for e in self._events):
                dropped = adapter.drop_pending_restorations(self._s.checkpoint)
                self._note(
                    f"A checkpoint failed inside TensorFlow's restore; {dropped} pending "
                    "restoration(s) it queued for objects not created yet were dropped."
                )
        self._initialize(reason, sweep_existing=sweep_existing)

    def _initialize(self, reason: Diagnosis | None, *, sweep_existing: bool) -> None:
        if self._s.init_fn is not None:
            self._s.init_fn()
        # Not restore(None): it creates save_counter (a collective TF's initialization skips).
        status = getattr(self._s.checkpoint, "read", self._s.checkpoint.restore)(None)
        self._record(StartedFresh(reason, status, sweep_existing))
        if reason is None:
            logger.info("No checkpoint in %s: starting from initialization.", self._s.directory)

    def _empty(self, diagnosis: Diagnosis | None) -> None:
        if self._s.on_empty is OnEmpty.RAISE:
            found = diagnosis or diagnose(
                self._s.directory, checkpoint_name=self._s.checkpoint_name
            )
            message = (
                f"No checkpoint to restore in {self._s.directory} (on_empty='raise').\n"
                + str(found)
            )
            raise restore_error(replace(found, cause=not_found_cause(found)), (), message)
        self._initialize(None, sweep_existing=False)

    def _give_up(self) -> NoReturn:
        """Raise the diagnosed error for the failure.

        When every candidate was tried, nothing in the directory is usable: the error is then
        also a `tf.errors.NotFoundError`, whatever the damage.
        """
        raise restore_error(
            self._error_diagnosis(),
            self._attempts,
            self._error_message(),
            exhausted=not self._candidates,
        )

    def _error_diagnosis(self) -> Diagnosis:
        assert self._failure is not None
        failure = self._failure
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
        attempts = self._attempts
        if len(attempts) > 1:
            lines.append("Checkpoints tried, newest first:")
            lines.extend(f"  - {d.checkpoint}: {d.summary}" for d in attempts)
        return "\n".join(lines)

    # An explicit path ------------------------------------------------------------------

    def _exact(self, request: ExplicitRequest) -> None:
        """Restore exactly the requested prefix, or raise with a diagnosis (no fallback)."""
        directory, name = self._s.directory, self._s.checkpoint_name
        prefix = request.prefix
        self._record(Requested(prefix))
        for note in request.notes:
            logger.info("%s", note)
        self._note(*request.notes)
        try:
            has_index = fs.exists(prefix + INDEX_SUFFIX)
        except RESTORE_ERRORS:
            has_index = False
        if not has_index:
            found = diagnose(prefix, checkpoint_name=name)
            if found.ok:  # pragma: no cover - a V1 checkpoint (single file) or a race
                found = replace(found, cause=Cause.UNKNOWN)
            raise restore_error(found, (), f"Cannot restore {prefix}.\n{found}")
        read = self._read(prefix, lambda: self._verified(prefix))
        if isinstance(read, _Unread):
            found = read.diagnosis if read.mismatch else with_alternatives(read.diagnosis, prefix)
            error = restore_error(found, (found,), f"Cannot restore {prefix}.\n{found}")
            if read.error is None:
                raise error
            raise error from read.error
        newer: tuple[str, ...] = ()
        if fs.dirname(prefix) == directory:
            inventory = scan(directory)
            self._listed(inventory)
            ahead = [c.prefix for c in rank(inventory, name).candidates]
            newer = tuple(ahead[: ahead.index(prefix)]) if prefix in ahead else ()
        self._record(
            Restored(
                prefix,
                split_step(fs.basename(prefix))[1],
                read.status,
                *_lists(read),
                explicit=True,
                keep_newer=newer,
            )
        )
        logger.info("Restored %s (explicit request).", prefix)

    def _verified(self, prefix: str) -> Diagnosis:
        if self._s.verify is VerifyLevel.NONE:
            return Diagnosis(
                Cause.HEALTHY,
                f"{fs.basename(prefix)} was not verified.",
                fs.dirname(prefix),
                prefix,
            )
        return check_prefix(prefix, deep=self._s.verify is VerifyLevel.DEEP)

    # The one attempt sequence ----------------------------------------------------------

    def _read(self, prefix: str, verified: Callable[[], Diagnosis]) -> _Read | _Unread:
        """Verify `prefix` (`verified`), match the program against it, restore it.

        Raises `CheckpointMismatchError` when the match fails (before anything is assigned).
        """
        diagnosis = verified()
        if not diagnosis.ok:
            return _Unread(diagnosis)
        match = match_or_raise(self._s.checkpoint, prefix, self._s.match, self._attempts)
        if isinstance(match, Diagnosis):
            return _Unread(match)
        if match is not None:
            for note in match.notes:
                if note not in notes_of(self._events):
                    self._note(note)
        try:
            status = tf_restore(self._s.checkpoint, prefix, self._s.options, self._s.match, match)
        except RESTORE_ERRORS as exc:
            self._record(FailedInTensorFlow(prefix))
            return _Unread(stage_diagnosis(prefix, exc), exc)
        return _Read(status, match)


def _lists(read: _Read) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The match's unmatched, unused and pending names (empty without a match)."""
    match = read.match
    if match is None:
        return (), (), ()
    return match.unmatched, match.unused, match.pending
