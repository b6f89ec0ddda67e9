"""`SafeCheckpointManager`: a drop-in `tf.train.CheckpointManager`."""

from __future__ import annotations

import collections
import logging
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

from safeckpt import _distribute, _paths
from safeckpt._causes import Cause
from safeckpt._diagnose import diagnose
from safeckpt._diagnosis import Diagnosis
from safeckpt._directory import validate_directory
from safeckpt._errors import CheckpointDirectoryError, ReadOnlyError, SaveError, restore_error
from safeckpt._housekeeping import cleanup_temp
from safeckpt._info import CheckpointInfo
from safeckpt._inventory import Inventory, scan
from safeckpt._layout import STATE_FILE, split_step
from safeckpt._policies import (
    FallbackPolicy,
    OnEmpty,
    VerifyLevel,
    normalize_fallback,
    normalize_on_empty,
    normalize_verify,
)
from safeckpt._ranking import rank
from safeckpt._report import RestoreReport
from safeckpt._restore import Restore
from safeckpt._statefile import resolve_recorded
from safeckpt._tf import MANAGER_TAKES_LAST_CHECKPOINT_STEP, tf, tf_checkpoint_management

logger = logging.getLogger("safeckpt")


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r}: expected True or False, got {type(value).__name__}.")
    return value


def _check_max_to_keep(value: object) -> int | None:
    # TensorFlow accepts any positive number; integral floats (2.0) stay accepted.
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or float(value) <= 0
        or not float(value).is_integer()
    ):
        raise ValueError(
            f"max_to_keep={value!r}: expected a positive integer, or None to keep every checkpoint."
        )
    return int(float(value))


def _check_hours(value: object) -> float | None:
    # TensorFlow treats 0 like None (no preservation); keep accepting it.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or float(value) < 0:
        raise ValueError(
            f"keep_checkpoint_every_n_hours={value!r}: expected a positive number of hours, "
            "or None (0 also disables it, as in TensorFlow)."
        )
    return float(value) if value else None


class SafeCheckpointManager(tf.train.CheckpointManager):  # type: ignore[misc]
    """A `tf.train.CheckpointManager` that validates its directory and never loses a run.

    It takes TensorFlow's arguments, in TensorFlow's order, and behaves like TensorFlow's
    manager on healthy directories. safeckpt's own options are keyword-only.

    Args:
        checkpoint: The `tf.train.Checkpoint` to save and restore.
        directory: Where checkpoints live: a local path (``~``, ``$VAR`` and relative paths
            are resolved once, here) or a URI such as ``gs://bucket/run``.
        max_to_keep: How many recent checkpoints to keep, or None to keep all.
        keep_checkpoint_every_n_hours: Additionally preserve one checkpoint per this many hours.
        checkpoint_name: Base name of the checkpoint prefixes (``<name>-<N>``).
        step_counter: A `tf.Variable` with the training step (with `checkpoint_interval`).
        checkpoint_interval: Minimum number of steps between two saves.
        init_fn: Called by `restore_or_initialize` when there is nothing to restore.
        last_checkpoint_step: The step of the last checkpoint saved (with the interval).
        create_directory: Create a missing `directory` (with parents) at construction.
        read_only: Never write: no directory creation, no write probe; `save` raises
            `ReadOnlyError`. For evaluation and inference jobs.
        fallback: What `restore` does when the newest checkpoint cannot be restored: a
            policy name (``"previous_valid"``, ``"fresh_init"``, ``"raise"``), a policy
            object (`PreviousValid`, `FreshInit`, `Raise`, or any `FallbackPolicy`), or a
            sequence of them applied in order.
        on_empty: What `restore` does when the directory holds no checkpoint at all:
            ``"initialize"`` (TensorFlow's behaviour) or ``"raise"``.
        verify: How each checkpoint is checked before it is restored: ``"quick"`` (index
            and shard sizes), ``"deep"`` (also every tensor's CRC32C) or ``"none"``.
        cleanup_temp: After each save, remove leftovers of interrupted saves older than
            the newest complete checkpoint (``<prefix>_temp/``, ``checkpoint.tmp*``).
        quarantine: Move a checkpoint that fails verification into
            ``<directory>/quarantine/`` instead of retrying it at every restore.

    Under `tf.distribute.MultiWorkerMirroredStrategy` every worker constructs the manager
    with the same (chief's, shared) `directory` and calls `save` and `restore` alike. Only
    the chief writes `directory`; the other workers save into a private
    ``<directory>/workertemp_<task_id>/`` that is deleted again (TensorFlow's own pattern),
    never quarantine or clean up, and restore from `directory`. Directory validation, saves
    and restores end with an exchange of outcomes between the workers, so an error raises on
    every worker (and workers that would restore different checkpoints raise) instead of one
    worker failing while the others wait in a collective. Construct the manager inside
    ``strategy.scope()``, after the strategy, or with ``TF_CONFIG`` set.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument has an invalid value.
        CheckpointDirectoryError: `directory` cannot be used (a `ValueError` too).
    """

    def __init__(
        self,
        checkpoint: Any,
        directory: Any,
        max_to_keep: int | None,
        keep_checkpoint_every_n_hours: float | None = None,
        checkpoint_name: str = "ckpt",
        step_counter: Any = None,
        checkpoint_interval: int | None = None,
        init_fn: Callable[[], Any] | None = None,
        last_checkpoint_step: int | None = None,
        *,
        create_directory: bool = True,
        read_only: bool = False,
        fallback: str | FallbackPolicy | Sequence[str | FallbackPolicy] = "previous_valid",
        on_empty: str = "initialize",
        verify: str = "quick",
        cleanup_temp: bool = False,
        quarantine: bool = False,
    ) -> None:
        if checkpoint is None or not callable(getattr(checkpoint, "restore", None)):
            raise TypeError(
                f"checkpoint={checkpoint!r}: expected a tf.train.Checkpoint (an object with "
                "restore() and save_counter), got "
                f"{type(checkpoint).__name__}."
            )
        if init_fn is not None and not callable(init_fn):
            raise TypeError(f"init_fn={init_fn!r}: expected a callable or None.")
        max_to_keep = _check_max_to_keep(max_to_keep)
        keep_checkpoint_every_n_hours = _check_hours(keep_checkpoint_every_n_hours)
        self._read_only = _check_bool("read_only", read_only)
        _check_bool("create_directory", create_directory)
        self._fallback = normalize_fallback(fallback)
        self._on_empty = normalize_on_empty(on_empty)
        self._verify = normalize_verify(verify)
        self._cleanup_temp = _check_bool("cleanup_temp", cleanup_temp)
        self._quarantine = _check_bool("quarantine", quarantine)
        for option, value in (("cleanup_temp", cleanup_temp), ("quarantine", quarantine)):
            if value and read_only:
                raise ValueError(
                    f"{option}=True writes to the directory, but read_only=True was given; "
                    "drop one of them."
                )
        self.last_restore: RestoreReport | None = None
        self._existing_steps: set[int] = set()
        self._state_is_directory = False
        self._listed_at_start: frozenset[str] = frozenset()
        self._worker = _distribute.worker_context()
        if not self._worker.is_chief:
            self._quarantine = False  # only the chief moves files in the shared directory
        directory = _paths.normalize_directory(directory)
        checkpoint_name = _paths.normalize_checkpoint_name(checkpoint_name)

        def directory_error(message: str, diagnosis: Diagnosis) -> CheckpointDirectoryError:
            return CheckpointDirectoryError(message, diagnosis, directory)

        # Every worker needs `directory` (non-chiefs write their workertemp_<id> inside it).
        self.created_directory = _distribute.agree(
            self._worker,
            "use the checkpoint directory",
            lambda: validate_directory(directory, create=create_directory, read_only=read_only),
            directory_error,
        )
        try:
            super().__init__(
                checkpoint,
                directory,
                max_to_keep,
                keep_checkpoint_every_n_hours=keep_checkpoint_every_n_hours,
                checkpoint_name=checkpoint_name,
                step_counter=step_counter,
                checkpoint_interval=checkpoint_interval,
                init_fn=init_fn,
                **(
                    {"last_checkpoint_step": last_checkpoint_step}
                    if MANAGER_TAKES_LAST_CHECKPOINT_STEP
                    else {}
                ),
            )
        except (ValueError, UnicodeDecodeError) as exc:
            # TensorFlow raises these while reading an empty, incomplete or non-UTF-8 state
            # file. Arguments were validated above, so finish TF's "no recorded state" branch.
            if not hasattr(self, "_checkpoint_interval"):
                raise
            logger.warning(
                "The checkpoint state file in %s could not be read (%s: %s); "
                "treating it as absent.",
                directory,
                type(exc).__name__,
                exc,
            )
            self._maybe_delete: collections.OrderedDict[str, float] = collections.OrderedDict()
            self._latest_checkpoint: str | None = None
            self._last_preserved_timestamp = tf_checkpoint_management.time.time() - 1.0
        if not MANAGER_TAKES_LAST_CHECKPOINT_STEP and checkpoint_interval is not None:
            self._last_checkpoint_step = last_checkpoint_step  # TF < 2.20 lacks the keyword
        self._reconcile()
        self._inherited = set(self._maybe_delete)

    def _reconcile(self) -> None:
        """Make the recorded state follow the rule (in memory; the state file is untouched).

        `latest_checkpoint` becomes the first candidate of `safeckpt._ranking.rank`. The
        ``max_to_keep`` rotation keeps only TensorFlow's entries that are candidates of this
        manager's name (never files that are gone, outside the directory, or of another
        name), plus interrupted saves newer than the state file, ordered by the same rule.
        """
        try:
            inventory = scan(self.directory)
        except (tf.errors.OpError, OSError):
            return
        ranking = rank(inventory, self.checkpoint_name)
        self._state_is_directory = inventory.state.problem is Cause.NOT_A_DIRECTORY
        self._listed_at_start = frozenset(
            c.prefix for c in inventory.checkpoints if c.in_state_file
        )
        self._note_existing(inventory)
        ours = [c for c in reversed(ranking.candidates) if c.name == self.checkpoint_name]
        local = {c.basename for c in inventory.checkpoints}
        timestamps: dict[str, float] = {}
        for path, timestamp in self._maybe_delete.items():
            prefix = resolve_recorded(self.directory, path, local).prefix
            if prefix is not None and any(c.prefix == prefix for c in ours):
                timestamps[prefix] = timestamp
            else:
                logger.info(
                    "The state file lists %s, which is not a checkpoint named %r in %s; it "
                    "is kept out of the max_to_keep rotation.",
                    path,
                    self.checkpoint_name,
                    self.directory,
                )
        for info in ranking.interrupted:
            timestamps[info.prefix] = info.mtime or tf_checkpoint_management.time.time()
        self._maybe_delete = collections.OrderedDict(
            (c.prefix, timestamps[c.prefix]) for c in ours if c.prefix in timestamps
        )
        latest = ranking.first.prefix if ranking.first is not None else None
        if latest != self._latest_checkpoint:
            logger.warning(
                "latest_checkpoint is %s (the state file says %s).", latest, self._latest_checkpoint
            )
        for note in (*inventory.state.oddities, *ranking.notes):
            logger.info("%s: %s", inventory.state.path, note)
        self._latest_checkpoint = latest

    def _note_existing(self, inventory: Inventory) -> None:
        """Remember which steps of this name have files, so that no save writes over them.

        The remains of a save that never finished and that the state file never listed
        (data without an index, a half-written index next to ``_temp/``) are not protected:
        TensorFlow's next save of that number completes them.
        """
        leftover = {Cause.INCOMPLETE_SAVE, Cause.MISSING_INDEX}
        self._existing_steps = {
            c.step
            for c in inventory.family(self.checkpoint_name)
            if c.step is not None
            and any(not f.endswith("_temp/") for f in c.files)
            and (c.in_state_file or not c.problems or not set(c.problems) <= leftover)
        }

    def _forget(self, info: CheckpointInfo) -> None:
        """Take a rejected checkpoint out of the rotation and out of `latest_checkpoint`."""
        self._maybe_delete.pop(info.prefix, None)
        if self._latest_checkpoint == info.prefix:
            self._latest_checkpoint = None

    def _adopt(self, prefix: str, newer: Sequence[CheckpointInfo], *, latest: bool = True) -> None:
        """Make the restored `prefix` the newest of the rotation (and `latest_checkpoint`).

        `newer` are intact checkpoints the rule ranks before it (an explicit restore of an
        older checkpoint): they leave the rotation, so retention never deletes them.
        """
        if latest:
            self._latest_checkpoint = prefix
        for info in newer:
            if self._maybe_delete.pop(info.prefix, None) is not None:
                logger.info(
                    "Keeping %s, newer than the restored %s, out of the max_to_keep rotation.",
                    info.prefix,
                    prefix,
                )
        if prefix in self._maybe_delete:
            self._maybe_delete.move_to_end(prefix)

    def _refuse_unrecordable_save(self) -> None:
        """Raise `SaveError` before writing when the state file is a directory.

        TensorFlow would write the checkpoint's files and then fail to record them (a bare
        ``FailedPreconditionError``), leaving an unlisted checkpoint behind.
        """
        if not self._state_is_directory:
            return
        state = _paths.join(self.directory, STATE_FILE)
        if not _paths.isdir(state):
            self._state_is_directory = False  # fixed meanwhile
            return
        diagnosis = Diagnosis(
            Cause.NOT_A_DIRECTORY,
            f"The state file {state} is a directory, so no save could be recorded.",
            self.directory,
            evidence=(f"{state} is a directory (TensorFlow writes its checkpoint list there).",),
            suggestions=(
                f"Move the directory {state} elsewhere; the checkpoints next to it stay "
                "usable, and restore() works meanwhile.",
            ),
        )
        raise SaveError(f"Nothing was saved: {diagnosis}", diagnosis)

    def _number_save(self, checkpoint_number: Any) -> None:
        """Before a save: never let TensorFlow's numbering write over existing files.

        TensorFlow numbers a save ``save_counter + 1``; after restoring an older checkpoint
        (a fallback, a rewind) or starting fresh next to existing checkpoints, that number
        can name files that exist. The save is then numbered above the highest existing step
        instead. An explicit `checkpoint_number` is honoured, with a warning.
        """
        if not self._existing_steps or not tf.executing_eagerly():
            return
        counter = self._checkpoint.save_counter
        try:
            if checkpoint_number is None:
                number = int(counter.numpy()) + 1
            else:
                number = int(getattr(checkpoint_number, "numpy", lambda: checkpoint_number)())
        except (TypeError, ValueError, AttributeError):
            return
        if number not in self._existing_steps:
            return
        if checkpoint_number is not None:
            logger.warning(
                "save(checkpoint_number=%d) writes over the existing %s-%d, as asked.",
                number,
                self._checkpoint_prefix,
                number,
            )
            return
        highest = max(self._existing_steps)
        logger.warning(
            "The next save would write over the existing %s-%d; numbering it %d instead "
            "(above the highest existing step).",
            self._checkpoint_prefix,
            number,
            highest + 1,
        )
        counter.assign(highest)

    def _start_fresh(self, highest: int, *, keep_existing: bool, fallback: bool) -> None:
        """Number new checkpoints above `highest`; keep the inherited ones out of the sweep."""
        counter = self._checkpoint.save_counter
        if tf.executing_eagerly():
            if highest > int(counter.numpy()):
                counter.assign(highest)
        else:  # graph mode (tf.compat.v1): only with a default session
            session = tf.compat.v1.get_default_session()
            if session is not None and highest > int(session.run(counter)):
                session.run(counter.assign(highest))
        if keep_existing:
            for prefix in self._inherited:
                self._maybe_delete.pop(prefix, None)
        if fallback:
            self._latest_checkpoint = None

    @property
    def read_only(self) -> bool:
        """Whether this manager refuses to write."""
        return self._read_only

    @property
    def fallback(self) -> tuple[FallbackPolicy, ...]:
        """The fallback policies, normalized, in the order they are applied."""
        return self._fallback

    @property
    def on_empty(self) -> OnEmpty:
        """What `restore` does in a directory without checkpoints."""
        return self._on_empty

    @property
    def verify(self) -> VerifyLevel:
        """How each checkpoint is verified before it is restored."""
        return self._verify

    @property
    def cleanup_temp(self) -> bool:
        """Whether saves remove older leftovers of interrupted saves."""
        return self._cleanup_temp

    @property
    def quarantine(self) -> bool:
        """Whether checkpoints that fail verification are moved into ``quarantine/``.

        Always False on a non-chief worker of a multi-worker job: only the chief moves files.
        """
        return self._quarantine

    @property
    def checkpoint_name(self) -> str:
        """The base name of this manager's checkpoint prefixes."""
        return str(_paths.basename(self._checkpoint_prefix))

    def diagnose(self, *, deep: bool = False) -> Diagnosis:
        """Diagnose this manager's directory for its `checkpoint_name` (see `safeckpt.diagnose`)."""
        return diagnose(self.directory, checkpoint_name=self.checkpoint_name, deep=deep)

    def restore(self, save_path: Any = None, *, options: Any = None) -> RestoreReport:
        """Restore the newest usable checkpoint, or exactly `save_path`.

        ``save_path=None`` (or this manager's own `latest_checkpoint`) means "the newest
        usable checkpoint": candidates from the state file and a directory listing are
        verified at the ``verify`` level before TensorFlow reads them, and the ``fallback``
        policies decide what happens when the newest cannot be restored; an empty directory
        follows ``on_empty``. Any other path is restored exactly as asked (a ``.index`` or
        ``.data-…`` file name becomes its prefix, a directory its newest checkpoint, the
        state file the checkpoint it names) or raises: an explicit request never turns into
        another checkpoint.

        Args:
            save_path: None, or a checkpoint prefix (or a path a user might pass instead).
            options: A `tf.train.CheckpointOptions`, passed to `tf.train.Checkpoint.restore`.

        Returns:
            A `RestoreReport`, also stored as `last_restore`.

        Raises:
            CheckpointNotFoundError: Nothing to restore (a `tf.errors.NotFoundError`).
            CheckpointCorruptedError: Only damaged checkpoints (a `tf.errors.DataLossError`).
            CheckpointPermissionError: The files cannot be read.
            CheckpointMismatchError: The checkpoint does not fit the program's variables.
            RestoreError: Any other failure; every one carries ``.diagnosis``. In a
                multi-worker job every worker raises when one of them fails (the error of
                that worker, rebuilt from its diagnosis) or when they would restore
                different checkpoints.
        """

        def run() -> RestoreReport:
            restore = Restore(self, options)
            if save_path is None or self._is_latest(save_path):
                report = restore.newest()
            else:
                report = restore.exact(save_path)
            self.last_restore = report
            return report

        def peer_error(message: str, diagnosis: Diagnosis) -> Exception:
            return restore_error(diagnosis, (), message)

        if _distribute.can_agree(self._worker):
            # Nobody looks at the directory before every worker's (async) save is complete.
            _distribute.agree(self._worker, "finish saving", self._sync_checkpoint, SaveError)
        return _distribute.agree(
            self._worker,
            "restore",
            run,
            peer_error,
            summarize=lambda report: _basename_or_none(report.save_path),
            detail=lambda report: f"{report.outcome.value} {report.save_path or report.directory}",
        )

    def restore_or_initialize(self) -> str | None:
        """Restore the newest usable checkpoint, else initialize; TensorFlow's contract.

        Goes through the same policies as `restore` (``restore(None)``).

        Returns:
            The restored checkpoint prefix, or None after initializing (``init_fn`` called).
        """
        return self.restore().save_path

    def _is_latest(self, save_path: Any) -> bool:
        if self._latest_checkpoint is None or not isinstance(save_path, (str, os.PathLike)):
            return False
        if os.fspath(save_path) == self._latest_checkpoint:
            return True
        try:
            return bool(
                _paths.normalize_directory(save_path, "save_path") == self._latest_checkpoint
            )
        except (TypeError, ValueError):
            return False

    def save(
        self,
        checkpoint_number: Any = None,
        check_interval: bool = True,
        options: Any = None,
    ) -> str | None:
        """Save a checkpoint, as `tf.train.CheckpointManager.save` does, never over another.

        When TensorFlow's numbering (``save_counter + 1``) names a checkpoint whose files
        exist (after restoring an older checkpoint, or in a new run next to old ones), the
        save is numbered above the highest existing step instead (logged). An explicit
        `checkpoint_number` is honoured, with a warning when it names an existing checkpoint.

        On a non-chief worker of a multi-worker job the checkpoint is written into
        ``<directory>/workertemp_<task_id>/``, which is then deleted, and the path returned
        is the one the chief writes in `directory`.

        Raises:
            ReadOnlyError: The manager was created with ``read_only=True``.
            SaveError: The ``checkpoint`` state file is a directory (nothing is written).
            SaveError: Another worker of a multi-worker job failed to save.
        """
        if self._read_only:
            raise ReadOnlyError(
                f"This SafeCheckpointManager for {self.directory} was created with "
                "read_only=True, so save() writes nothing. Create it with read_only=False "
                "to save checkpoints."
            )

        def run() -> str | None:
            self._refuse_unrecordable_save()
            self._number_save(checkpoint_number)
            if not self._worker.is_chief:
                result = self._save_elsewhere(checkpoint_number, check_interval, options)
            else:
                result = super(SafeCheckpointManager, self).save(
                    checkpoint_number=checkpoint_number,
                    check_interval=check_interval,
                    options=options,
                )
            if result is not None:
                step = split_step(_paths.basename(result))[1]
                if step is not None:
                    self._existing_steps.add(step)
            if result is not None and self._cleanup_temp and self._worker.is_chief:
                asynchronous = getattr(options, "experimental_enable_async_checkpoint", False)
                try:
                    cleanup_temp(
                        scan(self.directory),
                        self.checkpoint_name,
                        finished=None if asynchronous else result,
                        protected=self._listed_at_start,
                    )
                except (tf.errors.OpError, OSError) as exc:
                    logger.warning("Could not clean up leftovers in %s: %s", self.directory, exc)
            return result

        return _distribute.agree(self._worker, "save", run, SaveError, summarize=_basename_or_none)

    def _save_elsewhere(
        self, checkpoint_number: Any, check_interval: bool, options: Any
    ) -> str | None:
        """Save as a non-chief worker: into its workertemp directory, then delete that.

        TensorFlow's save runs unchanged (with its collectives), on this manager's own state
        moved into the temporary directory: its sweep can only delete files there. The
        state is moved back afterwards, so `checkpoints` and `latest_checkpoint` name the
        chief's files, as on the chief.
        """
        directory: str = self.directory
        prefix: str = self._prefix
        temp = _distribute.make_write_directory(directory, self._worker)

        def move(path: str, into: str) -> str:
            return _paths.join(into, _paths.basename(path))

        latest = self._latest_checkpoint
        self._maybe_delete = collections.OrderedDict(
            (move(p, temp), t) for p, t in self._maybe_delete.items()
        )
        self._latest_checkpoint = None if latest is None else move(latest, temp)
        self._directory, self._checkpoint_prefix = temp, move(prefix, temp)
        try:
            result: str | None = super().save(
                checkpoint_number=checkpoint_number, check_interval=check_interval, options=options
            )
        finally:
            try:
                self._sync_checkpoint()  # an async save must finish in the temporary directory
            finally:
                latest = self._latest_checkpoint
                self._directory, self._checkpoint_prefix = directory, prefix
                self._maybe_delete = collections.OrderedDict(
                    (move(p, directory), t) for p, t in self._maybe_delete.items()
                )
                self._latest_checkpoint = None if latest is None else move(latest, directory)
                _distribute.remove_write_directory(directory, self._worker)
        return None if result is None else move(result, directory)

    def _sync_checkpoint(self) -> None:
        """Wait for an asynchronous save (`sync`, also for checkpoints without one)."""
        sync = getattr(self._checkpoint, "sync", None)
        if callable(sync):
            sync()


def _basename_or_none(path: str | None) -> str | None:
    return None if path is None else str(_paths.basename(path))
