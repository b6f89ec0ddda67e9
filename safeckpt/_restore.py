"""Restoring through the fallback policies.

`restore_newest` resolves "the newest usable checkpoint" of a `SafeCheckpointManager`;
`restore_exact` restores an explicit path exactly as asked. Both verify a checkpoint at the
manager's level *before* TensorFlow touches it, catch TensorFlow's whole error family during
the restore, and classify failures by probing the files, never by parsing messages alone.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

from safeckpt import _paths
from safeckpt._causes import CHECKPOINT_DAMAGE, Cause
from safeckpt._diagnose import diagnose, diagnose_directory
from safeckpt._diagnosis import Diagnosis, describe_exception
from safeckpt._errors import restore_error
from safeckpt._housekeeping import quarantine
from safeckpt._info import CheckpointInfo
from safeckpt._inventory import Inventory, scan
from safeckpt._layout import STATE_FILE, split_step, strip_file_suffix
from safeckpt._policies import OnEmpty, VerifyLevel
from safeckpt._ranking import rank
from safeckpt._report import Outcome, RestoreReport
from safeckpt._tf import tf, tf_checkpoint_management
from safeckpt._verify import check_prefix, with_alternatives

if TYPE_CHECKING:
    from safeckpt._manager import SafeCheckpointManager

logger = logging.getLogger("safeckpt")

#: What TensorFlow raises while restoring a checkpoint (see the notes on its irregular classes).
RESTORE_ERRORS = (tf.errors.OpError, IndexError, ValueError, UnicodeDecodeError, OSError)

_TRANSIENT = (Cause.PERMISSION_DENIED, Cause.STORAGE_UNAVAILABLE, Cause.NOT_A_DIRECTORY)


def _stage_diagnosis(prefix: str, exc: BaseException) -> Diagnosis:
    """Diagnose an error TensorFlow raised while restoring `prefix`, by probing its files."""
    directory = _paths.dirname(prefix)
    try:
        has_index = tf.io.gfile.exists(prefix + ".index")
    except RESTORE_ERRORS:
        has_index = False
    probe = check_prefix(prefix, deep=True) if has_index else diagnose(prefix)
    seen = f"TensorFlow raised {describe_exception(exc)}"
    if not probe.ok:
        return replace(probe, evidence=(*probe.evidence, seen + "."), error=describe_exception(exc))
    mismatch = isinstance(exc, (ValueError, tf.errors.InvalidArgumentError)) and not isinstance(
        exc, UnicodeDecodeError
    )
    if mismatch:
        return Diagnosis(
            Cause.MODEL_MISMATCH,
            f"{_paths.basename(prefix)} is intact but does not fit the program's variables.",
            directory,
            prefix,
            (f"{prefix}: every tensor's checksum matches (deep check).", seen + "."),
            (
                "Restore with the model configuration the checkpoint was written with "
                "(layer sizes, dtypes, mixed precision policy), or start this configuration "
                "in a new directory.",
                f"List what the checkpoint holds: tf.train.list_variables({prefix!r}).",
            ),
            error=describe_exception(exc),
        )
    return Diagnosis(
        Cause.UNKNOWN,
        f"TensorFlow could not restore {_paths.basename(prefix)}, although its files verify.",
        directory,
        prefix,
        (f"{prefix}: every tensor's checksum matches (deep check).", seen + "."),
        (f"Run `safeckpt doctor {directory}` and retry; the storage may have failed briefly.",),
        error=describe_exception(exc),
    )


def _create_save_counter(checkpoint: Any) -> None:
    """Create `tf.train.Checkpoint`'s lazily built ``save_counter`` before a restore.

    Otherwise TensorFlow restores it in a second ``RestoreV2`` op, after the one that assigns
    every existing variable: a damaged ``save_counter`` tensor then fails the restore with the
    model already holding the rejected checkpoint's values (and a fresh start would not be
    fresh). Created first, it is read by the same op, which fails before assigning anything.
    """
    with contextlib.suppress(AttributeError):
        _ = checkpoint.save_counter


def _inventory_diagnosis(info: CheckpointInfo, level: VerifyLevel) -> Diagnosis:
    """Diagnose a candidate without restoring it (inventory problems, then verification)."""
    directory = _paths.dirname(info.prefix)
    if Cause.STATE_FILE_STALE in info.problems:
        return Diagnosis(
            Cause.STATE_FILE_STALE,
            f"The state file names {info.basename}, whose files are gone.",
            directory,
            info.prefix,
            (f"{info.prefix}.index does not exist.",),
        )
    if Cause.INCOMPLETE_SAVE in info.problems:
        return Diagnosis(
            Cause.INCOMPLETE_SAVE,
            f"{info.basename} was never completed (an interrupted save).",
            directory,
            info.prefix,
            tuple(f"{_paths.join(directory, f)} is left over." for f in info.files),
        )
    if level is VerifyLevel.NONE and not info.problems:
        return Diagnosis(
            Cause.HEALTHY, f"{info.basename} was not verified.", directory, info.prefix
        )
    return check_prefix(info.prefix, deep=level is VerifyLevel.DEEP)


class Restore:
    """One restore through the policies; also the `RecoveryContext` the policies see."""

    def __init__(self, manager: SafeCheckpointManager, options: Any) -> None:
        self._manager = manager
        self._options = options
        self._level: VerifyLevel = manager.verify
        self._failure: Diagnosis | None = None
        self._candidates: list[CheckpointInfo] = []
        self._attempts: list[Diagnosis] = []
        self._inventory: Inventory | None = None
        self._requested: str | None = None
        self._notes: list[str] = []
        self._tf_failed = False
        self._quarantined = False

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
        """Verify, then restore `checkpoint`; None (and an attempt recorded) if rejected."""
        if checkpoint in self._candidates:
            self._candidates.remove(checkpoint)
        diagnosis = _inventory_diagnosis(checkpoint, self._level)
        if diagnosis.ok:
            try:
                _create_save_counter(self._manager._checkpoint)
                status = self._manager._checkpoint.restore(checkpoint.prefix, options=self._options)
            except RESTORE_ERRORS as exc:
                self._tf_failed = True
                diagnosis = _stage_diagnosis(checkpoint.prefix, exc)
                if diagnosis.cause is Cause.MODEL_MISMATCH:
                    raise restore_error(diagnosis, self.attempts) from exc
            else:
                outcome = Outcome.FELL_BACK if self._attempts else Outcome.RESTORED
                return self._restored(checkpoint, status, outcome)
        self._reject(checkpoint, diagnosis)
        return None

    def initialize(self, *, sweep_existing: bool = False) -> RestoreReport:
        """Start from initialization, keeping every existing checkpoint."""
        reason = self._failure
        if reason is not None:
            logger.warning(
                "Starting from initialization in %s although checkpoints exist (fallback "
                "policy fresh_init): %s",
                self._manager.directory,
                reason.summary,
            )
            if self._tf_failed:
                dropped = clear_pending_restorations(self._manager._checkpoint)
                self._notes.append(
                    f"A checkpoint failed inside TensorFlow's restore; {dropped} pending "
                    "restoration(s) it queued for objects not created yet were dropped."
                )
        return self._initialized(reason, sweep_existing=sweep_existing)

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

    # Entry point -------------------------------------------------------------------

    def newest(self) -> RestoreReport:
        """Restore the newest usable checkpoint, applying the manager's policies."""
        manager = self._manager
        directory, name = manager.directory, manager.checkpoint_name
        try:
            inventory = scan(directory)
        except RESTORE_ERRORS:
            diagnosis = diagnose(directory, checkpoint_name=name)
            if diagnosis.cause is Cause.DIRECTORY_MISSING:
                return self._empty(diagnosis)
            return self._recover(diagnosis)
        self._inventory = inventory
        ranking = rank(inventory, name)
        self._notes.extend(f"The state file: {odd}." for odd in inventory.state.oddities)
        self._notes.extend(ranking.notes)
        manager._note_existing(inventory)
        skipped = ranking.latest_unusable
        if skipped is not None:
            # What TensorFlow would restore; not a candidate (its files are gone or partial).
            self._requested = skipped.prefix
            diagnosis = _inventory_diagnosis(skipped, VerifyLevel.QUICK)
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
            listed = any(c.in_state_file for c in inventory.checkpoints)
            if not inventory.names() and not listed and state.problem not in _TRANSIENT:
                if state.problem is not None:
                    self._notes.append(f"The state file is unreadable: {state.error}.")
                return self._empty(None)
            if self._attempts:
                return self._recover(self._attempts[0])
            return self._recover(diagnose_directory(directory, checkpoint_name=name))
        primary, *rest = ranking.candidates
        self._candidates = rest
        self._requested = self._requested or primary.prefix
        self._note_state(inventory, primary)
        report = self.try_restore(primary)
        if report is not None:
            return report
        return self._recover(self._attempts[0])

    def exact(self, save_path: object) -> RestoreReport:
        """Restore exactly `save_path` (normalized), or raise with a diagnosis."""
        manager = self._manager
        prefix = resolve_request(save_path, manager.checkpoint_name, self._notes)
        for note in self._notes:
            logger.info("%s", note)
        self._requested = prefix
        try:
            has_index = tf.io.gfile.exists(prefix + ".index")
        except RESTORE_ERRORS:
            has_index = False
        if not has_index:
            found = diagnose(prefix, checkpoint_name=manager.checkpoint_name)
            if found.ok:  # pragma: no cover - a V1 checkpoint (single file) or a race
                found = replace(found, cause=Cause.UNKNOWN)
            raise restore_error(found, (), f"Cannot restore {prefix}.\n{found}")
        if self._level is not VerifyLevel.NONE:
            checked = check_prefix(prefix, deep=self._level is VerifyLevel.DEEP)
            if not checked.ok:
                found = with_alternatives(checked, prefix)
                raise restore_error(found, (found,), f"Cannot restore {prefix}.\n{found}")
        try:
            _create_save_counter(manager._checkpoint)
            status = manager._checkpoint.restore(prefix, options=self._options)
        except RESTORE_ERRORS as exc:
            found = _stage_diagnosis(prefix, exc)
            if found.cause is not Cause.MODEL_MISMATCH:
                found = with_alternatives(found, prefix)
            raise restore_error(found, (found,), f"Cannot restore {prefix}.\n{found}") from exc
        if manager._checkpoint_interval is not None:
            manager._last_checkpoint_step = tf_checkpoint_management._evaluate(
                manager._step_counter
            )
        if _paths.dirname(prefix) == manager.directory:
            ranking = rank(scan(manager.directory), manager.checkpoint_name)
            ahead = [c.prefix for c in ranking.candidates]
            newer = ranking.candidates[: ahead.index(prefix)] if prefix in ahead else ()
            manager._adopt(prefix, newer, latest=False)
        logger.info("Restored %s (explicit request).", prefix)
        return RestoreReport(
            save_path=prefix,
            outcome=Outcome.RESTORED,
            requested=prefix,
            status=status,
            step=split_step(_paths.basename(prefix))[1],
            directory=manager.directory,
            notes=tuple(self._notes),
        )

    # Internals -------------------------------------------------------------------

    def _note_state(self, inventory: Inventory, primary: CheckpointInfo) -> None:
        state = inventory.state
        if not state.exists:
            self._notes.append(
                f"The state file {state.path} is missing; {primary.basename} was found by "
                "listing the directory (TensorFlow would have started from scratch)."
            )
        elif state.problem is not None:
            self._notes.append(
                f"The state file is unreadable ({state.error}); {primary.basename} was found "
                "by listing the directory (TensorFlow would have started from scratch)."
            )
        latest = inventory.state_latest()
        if latest is not None and latest.reanchored and latest.prefix == primary.prefix:
            self._notes.append(
                f"The state file records {latest.recorded!r}, outside {inventory.directory}; "
                f"re-anchored to {primary.prefix}."
            )

    def _reject(self, info: CheckpointInfo, diagnosis: Diagnosis) -> None:
        manager = self._manager
        self._attempts.append(diagnosis)
        logger.warning("Cannot restore %s: %s", info.prefix, diagnosis.summary)
        manager._forget(info)
        if (
            manager.quarantine
            and not manager.read_only
            and diagnosis.cause in CHECKPOINT_DAMAGE
            and diagnosis.cause is not Cause.PERMISSION_DENIED
            and info.files
        ):
            moved = quarantine(info, manager.directory)
            if moved:
                self._quarantined = True
                self._notes.append(f"Moved {info.basename} into quarantine: {', '.join(moved)}.")

    def _restored(self, info: CheckpointInfo, status: Any, outcome: Outcome) -> RestoreReport:
        manager = self._manager
        manager._adopt(info.prefix, ())
        if self._quarantined:
            # The state file must stop naming what was moved away (quarantine is opt-in).
            # TF requires the latest checkpoint to be in the rotation when timestamps exist.
            manager._maybe_delete.setdefault(info.prefix, info.mtime or 0.0)
            try:
                manager._record_state()
            except RESTORE_ERRORS as exc:
                logger.warning("Could not rewrite the state file after quarantine: %s", exc)
        if manager._checkpoint_interval is not None:
            manager._last_checkpoint_step = tf_checkpoint_management._evaluate(
                manager._step_counter
            )
        report = RestoreReport(
            save_path=info.prefix,
            outcome=outcome,
            requested=self._requested,
            skipped=self.attempts,
            status=status,
            step=info.step,
            directory=manager.directory,
            notes=tuple(self._notes),
        )
        if outcome is Outcome.FELL_BACK:
            logger.warning(
                "Fell back to %s; %d newer checkpoint(s) could not be restored. First: %s",
                info.prefix,
                len(self._attempts),
                self._attempts[0].summary,
            )
        logger.info("Restored %s (step %s, %s).", info.prefix, info.step, outcome.value)
        return report

    def _initialized(self, reason: Diagnosis | None, *, sweep_existing: bool) -> RestoreReport:
        manager = self._manager
        if manager._init_fn is not None:
            manager._init_fn()
        status = manager._checkpoint.restore(None)
        highest = max(
            (
                c.step
                for c in (
                    self._inventory.family(manager.checkpoint_name) if self._inventory else []
                )
                if c.step is not None
            ),
            default=0,
        )
        manager._start_fresh(highest, keep_existing=not sweep_existing, fallback=reason is not None)
        report = RestoreReport(
            save_path=None,
            outcome=Outcome.INITIALIZED,
            requested=self._requested,
            skipped=self.attempts,
            status=status,
            directory=manager.directory,
            reason=reason,
            notes=tuple(self._notes),
        )
        if reason is None:
            logger.info("No checkpoint in %s: starting from initialization.", manager.directory)
        return report

    def _empty(self, diagnosis: Diagnosis | None) -> RestoreReport:
        manager = self._manager
        if manager.on_empty is OnEmpty.RAISE:
            found = diagnosis or diagnose(
                manager.directory, checkpoint_name=manager.checkpoint_name
            )
            message = (
                f"No checkpoint to restore in {manager.directory} (on_empty='raise').\n"
                + str(found)
            )
            raise restore_error(replace(found, cause=_not_found_cause(found)), (), message)
        return self._initialized(None, sweep_existing=False)

    def _recover(self, failure: Diagnosis) -> RestoreReport:
        self._failure = failure
        for policy in self._manager.fallback:
            report = policy.recover(self)
            if report is not None:
                return report
        self.fail()

    def _error_diagnosis(self) -> Diagnosis:
        failure = self.failure
        suggestions = list(failure.suggestions)
        directory = self._manager.directory
        suggestions.append(f"See the full diagnosis: safeckpt doctor {directory}")
        if failure.cause in CHECKPOINT_DAMAGE or failure.cause is Cause.STATE_FILE_STALE:
            suggestions.append(
                "To start from initialization while these checkpoints exist (they are kept), "
                "construct the manager with fallback=('previous_valid', 'fresh_init')."
            )
        return replace(failure, suggestions=tuple(dict.fromkeys(suggestions)))

    def _error_message(self) -> str:
        diagnosis = self._error_diagnosis()
        lines = [f"No checkpoint in {self._manager.directory} could be restored."]
        lines.append(str(diagnosis))
        if len(self._attempts) > 1:
            lines.append("Checkpoints tried, newest first:")
            lines.extend(f"  - {d.checkpoint}: {d.summary}" for d in self._attempts)
        return "\n".join(lines)


def resolve_request(save_path: object, checkpoint_name: str, notes: list[str]) -> str:
    """Normalize an explicit `save_path` to a checkpoint prefix; each rewrite is noted.

    A ``.index``/``.data-…`` file name becomes its prefix, a directory its newest checkpoint,
    the ``checkpoint`` state file the checkpoint it names.

    Raises:
        TypeError, CheckpointDirectoryError: `save_path` is malformed.
        CheckpointNotFoundError: A directory or state file names no checkpoint.
    """
    path = _paths.normalize_directory(save_path, "save_path")
    try:
        if tf.io.gfile.exists(path + ".index"):
            return path
        stripped = strip_file_suffix(path)
        if stripped is not None and tf.io.gfile.exists(stripped + ".index"):
            notes.append(f"{path} is a checkpoint file; restoring its prefix {stripped}.")
            return stripped
        is_dir = _paths.isdir(path)
        if _paths.basename(path) == STATE_FILE and not is_dir and tf.io.gfile.exists(path):
            directory = _paths.dirname(path)
            chosen = _newest_in(directory, checkpoint_name)
            notes.append(f"{path} is the state file; restoring the checkpoint it names, {chosen}.")
            return chosen
        if is_dir:
            chosen = _newest_in(path, checkpoint_name)
            notes.append(f"{path} is a directory; restoring its newest checkpoint, {chosen}.")
            return chosen
    except RESTORE_ERRORS:
        pass
    return path


def _newest_in(directory: str, checkpoint_name: str) -> str:
    """The first candidate of the rule (see `rank`), else the newest complete checkpoint."""
    inventory = scan(directory)
    first = rank(inventory, checkpoint_name).first
    if first is not None:
        return first.prefix
    complete = [c for c in inventory.checkpoints if c.complete]
    if complete:
        return complete[-1].prefix
    found = diagnose_directory(directory, checkpoint_name=checkpoint_name)
    raise restore_error(
        replace(found, cause=_not_found_cause(found)), (), f"No checkpoint in {directory}.\n{found}"
    )


def clear_pending_restorations(root: Any) -> int:
    """Drop the restorations a failed ``restore()`` left queued for objects not created yet.

    TensorFlow queues values for objects that do not exist yet on their parents (deferred
    restoration); a restore that fails midway leaves them queued, and objects created later
    would silently receive values of the rejected checkpoint. Returns how many were dropped.
    """
    dropped = 0
    try:
        objects = tf.train.TrackableView(root).descendants()
    except Exception:  # pragma: no cover - a graph TF cannot walk; nothing more can be done
        return 0
    for trackable in objects:
        pending = getattr(trackable, "_self_unconditional_deferred_dependencies", None)
        if isinstance(pending, dict) and pending:
            dropped += len(pending)
            pending.clear()
    return dropped


def _not_found_cause(diagnosis: Diagnosis) -> Cause:
    return Cause.NO_CHECKPOINTS if diagnosis.cause is Cause.HEALTHY else diagnosis.cause
