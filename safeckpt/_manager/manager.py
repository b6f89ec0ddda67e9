"""`SafeCheckpointManager`: a drop-in `tf.train.CheckpointManager`.

The manager owns its state (TensorFlow's rotation, latest checkpoint and counters, reached
only through the `safeckpt._io.tf` adapter) and this class is the only code that changes it:
the restore engine (`safeckpt._restore.engine`) returns a `RestoreResult`, whose plan
`SafeCheckpointManager._apply` carries out before the error (if any) is raised; `_reconcile`
applies what `safeckpt._manager.reconcile.reconcile` computed; `_relocate` moves the state
around a non-chief's save (`safeckpt._manager.saving.save_as_worker` calls it).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

from safeckpt._catalog.housekeeping import cleanup_after_save, quarantine_all
from safeckpt._catalog.inventory import Inventory, scan
from safeckpt._catalog.lease import WriterLease, lease_name
from safeckpt._catalog.volume import warn_at_construction
from safeckpt._diagnose.path import diagnose
from safeckpt._diagnosis import Diagnosis
from safeckpt._format.layout import split_step
from safeckpt._io import fs, paths
from safeckpt._io import tf as adapter
from safeckpt._io.tf import tf
from safeckpt._manager.arguments import (
    check_checkpoint,
    check_hours,
    check_max_to_keep,
    check_peer_timeout,
)
from safeckpt._manager.attempts import before_writing, plan, save_retrying
from safeckpt._manager.finite import refuse_nonfinite
from safeckpt._manager.options import manager_options
from safeckpt._manager.reconcile import reconcile
from safeckpt._manager.retention import (
    Keeper,
    check_keep_best,
    metadata_prefix,
    read_for_manager,
)
from safeckpt._manager.saving import (
    expected_prefix,
    prepare_save,
    raise_counter,
    read_only_error,
    refuse_if_state_unwritable,
    save_as_worker,
    special_state,
)
from safeckpt._metadata import CheckpointMetadata, KeepBest
from safeckpt._multiworker import context
from safeckpt._multiworker.agreement import Agreement
from safeckpt._public import public
from safeckpt._report import RestoreReport
from safeckpt._restore.engine import Restore
from safeckpt._restore.plan import RestorePlan
from safeckpt._restore.policies import FallbackPolicy
from safeckpt._settings import OnEmpty, StorageRetry, VerifyLevel

logger = logging.getLogger("safeckpt")


@public
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
        verify: How each checkpoint is checked before it is restored: ``"quick"`` (index,
            shard sizes, object graph), ``"deep"`` (also every tensor's CRC32C) or ``"none"``.
        cleanup_temp: After each save, remove leftovers of interrupted saves older than
            the newest complete checkpoint (``<prefix>_temp/``, ``checkpoint.tmp*``).
        quarantine: Move a checkpoint that fails verification into
            ``<directory>/quarantine/`` instead of retrying it at every restore.
        match: What a restore requires of the program against the checkpoint, compared
            before anything is assigned: ``"existing"`` (every variable the program has
            gets a value), ``"consumed"`` (also every checkpoint value is used) or
            ``"partial"`` (no requirement). A failed match raises `CheckpointMismatchError`.
        storage_retry: How a restore retries a checkpoint the storage cannot serve (a
            `StorageRetry`; None for its defaults) before raising `StorageUnavailableError`.
        peer_timeout: Multi-worker: seconds a restore waits for another worker's report
            before raising `WorkerUnavailableError` on every live worker (None:
            ``$SAFECKPT_PEER_TIMEOUT``, else 60). A crashed worker is detected sooner.
        save_retry: How a save retries a transient storage error (a `StorageRetry`):
            ``"auto"`` retries on remote storage (``StorageRetry()``) and not on local
            paths; None never retries. Each try first removes what the failed one wrote;
            after the last, `SaveError` leaves the directory and ``save_counter`` as they
            were (docs/saving.md).
        check_finite: Before writing, check every floating-point variable for NaN and
            infinity; a non-finite state raises `SaveError` (``nonfinite_values``) and
            nothing is written or swept.
        allow_ephemeral: Do not warn about a local directory whose checkpoints will not
            outlive the job (tmpfs, a container's overlay root, the temporary folder); so
            does ``SAFECKPT_ALLOW_EPHEMERAL=1``.
        writer_lease: Hold the directory's writer lease (``.safeckpt-writer-<name>``) while
            saving, so that a second live writer of the same name is refused with
            `ConcurrentWriterError` (docs/fallback.md, "Two writers"). False: no lease.
        keep_best: A `KeepBest`: the rotation never deletes one of the `k` best checkpoints
            by that metric of ``save(metrics=...)`` (docs/metadata.md); see
            `best_checkpoint`. None (the default): TensorFlow's rotation.

    Each save writes ``<prefix>.safeckpt.json`` beside the checkpoint once its files are
    complete (`metadata`; docs/metadata.md).

    Under `tf.distribute.MultiWorkerMirroredStrategy` (docs/fallback.md) only the chief
    writes the shared `directory`; the others save into a private, deleted
    ``<directory>/workertemp_<task_id>/`` and restore from `directory`. A `restore` is
    agreed on by the workers that built a manager on the same `directory` and
    `checkpoint_name` (an error or a disagreement raises on each); a directory with this
    worker's ``workertemp_<task_id>`` in it is its own. Construct it inside
    ``strategy.scope()`` or with ``TF_CONFIG`` set.

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
        match: str = "existing",
        storage_retry: StorageRetry | None = None,
        peer_timeout: float | None = None,
        writer_lease: bool = True,
        save_retry: StorageRetry | Literal["auto"] | None = "auto",
        check_finite: bool = False,
        allow_ephemeral: bool = False,
        keep_best: KeepBest | None = None,
    ) -> None:
        check_checkpoint(checkpoint, init_fn)
        max_to_keep = check_max_to_keep(max_to_keep)
        keep_checkpoint_every_n_hours = check_hours(keep_checkpoint_every_n_hours)
        keep_best = check_keep_best(keep_best)
        options = manager_options(
            create_directory, read_only, fallback, on_empty, verify, cleanup_temp, quarantine,
            match, storage_retry, writer_lease, save_retry, check_finite, allow_ephemeral,
        )  # fmt: skip
        self.last_restore: RestoreReport | None = None
        self._existing_steps: frozenset[int] = frozenset()
        self._state_unwritable = False
        self._listed_at_start: frozenset[str] = frozenset()
        self._leftovers_at_start: frozenset[str] = frozenset()  # remote saves' "before"
        self._path = paths.normalize_directory(directory)  # what everything inside uses
        self._spelled, directory = paths.spelled_directory(directory), self._path
        checkpoint_name = paths.normalize_checkpoint_name(checkpoint_name)
        self._worker = context.manager_context(directory)
        self._options = options.for_worker(self._worker.is_chief)
        self._agreement = Agreement(
            self._worker, directory, checkpoint_name, check_peer_timeout(peer_timeout)
        )
        self.created_directory = self._agreement.validate(
            create=options.create_directory, read_only=options.read_only
        )
        special = special_state(directory)  # a FIFO: TensorFlow's constructor would block
        adapter.init_manager(
            self, super().__init__, checkpoint, directory, max_to_keep,
            keep_checkpoint_every_n_hours=keep_checkpoint_every_n_hours,
            checkpoint_name=checkpoint_name, step_counter=step_counter,
            checkpoint_interval=checkpoint_interval, init_fn=init_fn,
            last_checkpoint_step=last_checkpoint_step, read_state=not special,
        )  # fmt: skip
        self._reconciled = False
        self._inherited: frozenset[str] = frozenset()
        self._floor: str | None = None  # last returned, restored or saved: never go back
        holds = options.writer_lease and not options.read_only and self._worker.is_chief
        holds = holds and self._worker.stands_for is None  # not a worker's private directory
        self._lease = WriterLease(directory, checkpoint_name) if holds else None
        if not options.read_only and self._worker.is_chief:
            latest = adapter.latest(self)  # from the state file TensorFlow's constructor read
            if latest is not None and fs.dirname(latest) != directory:
                latest = None  # recorded elsewhere (a moved directory): not measured here
            warn_at_construction(directory, checkpoint_name, options.allow_ephemeral, latest)
        task = self._worker.describe() if self._worker.task_type is not None else None
        self._keeper = Keeper(directory, checkpoint_name, keep_best, task)

    def _reconcile(self) -> Inventory | None:
        """Make the recorded state follow the rule, once, on first use (not at construction).

        In memory; the state file is untouched. Returns the inventory listed, if it listed.
        """
        if self._reconciled:
            return None
        try:
            inventory = scan(self._path)
        except (tf.errors.OpError, OSError):  # the storage failed: try again at the next use
            self._inherited = frozenset(adapter.rotation(self))
            return None
        self._reconciled = True
        self._keeper.seen(inventory)
        if self._lease is not None:
            self._lease.first_look(lease_name(self.checkpoint_name) in inventory.own)
        state = reconcile(inventory, self.checkpoint_name, adapter.rotation(self))
        self._state_unwritable = inventory.state.not_a_file  # saves refused, never rewritten
        self._listed_at_start = state.listed
        self._leftovers_at_start = frozenset((*inventory.temp_dirs, *inventory.state_temps))
        self._existing_steps = inventory.existing_steps(self.checkpoint_name)
        if state.latest != adapter.latest(self):
            logger.warning(
                "latest_checkpoint is %s (the state file says %s).",
                state.latest,
                adapter.latest(self),
            )
        adapter.set_rotation(self, state.rotation)
        adapter.set_latest(self, state.latest)
        self._floor = state.latest
        self._inherited = frozenset(state.rotation)
        return inventory

    def _apply(self, plan: RestorePlan) -> RestoreReport | None:
        """Carry out what a restore decided: the only place that changes the manager's state.

        Returns the plan's report, with a note for each checkpoint moved into quarantine.
        """
        rotation = adapter.rotation(self)
        if plan.existing_steps is not None:
            self._existing_steps = plan.existing_steps
        for info in plan.rejected:
            rotation.pop(info.prefix, None)
            if adapter.latest(self) == info.prefix:
                adapter.set_latest(self, None)
            if self._floor == info.prefix:
                self._floor = None
        if plan.restored:
            self._floor = plan.adopt  # an explicit request outside the directory: no floor
        moved = [] if self._options.read_only else quarantine_all(plan.quarantine, self._path)
        for prefix in plan.keep_newer:
            if rotation.pop(prefix, None) is not None:
                logger.info(
                    "Keeping %s, newer than the restored checkpoint, out of the "
                    "max_to_keep rotation.",
                    prefix,
                )
        if plan.adopt is not None:
            if plan.make_latest:
                adapter.set_latest(self, plan.adopt)
            if plan.adopt in rotation:
                rotation.move_to_end(plan.adopt)
        if moved and plan.adopt is not None and not self._state_unwritable:
            # The state file must stop naming what was moved away (quarantine is opt-in).
            # TF requires the latest checkpoint to be in the rotation when timestamps exist.
            rotation.setdefault(plan.adopt, adapter.now())
            try:
                adapter.record_state(self)
            except (tf.errors.OpError, OSError, ValueError) as exc:
                logger.warning("Could not rewrite the state file after quarantine: %s", exc)
        if plan.restored:
            adapter.note_restored_step(self)
        if plan.fresh_above is not None:
            if plan.fresh_above:  # not on a first run: TF creates save_counter at its 1st save
                raise_counter(adapter.checkpoint_of(self).save_counter, plan.fresh_above)
            if plan.keep_existing:
                for prefix in self._inherited:
                    rotation.pop(prefix, None)
            if plan.clear_latest:
                adapter.set_latest(self, None)
        if moved and plan.report is not None:
            note = f"Moved into quarantine: {', '.join(moved)}."
            return dataclasses.replace(plan.report, notes=(*plan.report.notes, note))
        return plan.report

    @property
    def directory(self) -> str:
        """The directory as given (TF's string), with ``~``, ``$VAR`` and cwd resolved."""
        return self._spelled

    @property
    def latest_checkpoint(self) -> str | None:
        """The newest checkpoint by the rule (docs/fallback.md), or None."""
        self._reconcile()
        return adapter.latest(self)

    @property
    def checkpoints(self) -> list[str]:
        """The checkpoints of the ``max_to_keep`` rotation, oldest first."""
        self._reconcile()
        return list(adapter.rotation(self))

    @property
    def read_only(self) -> bool:
        """Whether this manager refuses to write."""
        return self._options.read_only

    @property
    def fallback(self) -> tuple[FallbackPolicy, ...]:
        """The fallback policies, normalized, in the order they are applied."""
        return self._options.fallback

    @property
    def on_empty(self) -> OnEmpty:
        """What `restore` does in a directory without checkpoints."""
        return self._options.on_empty

    @property
    def verify(self) -> VerifyLevel:
        """How each checkpoint is verified before it is restored."""
        return self._options.verify

    @property
    def cleanup_temp(self) -> bool:
        """Whether saves remove older leftovers of interrupted saves."""
        return self._options.cleanup_temp

    @property
    def quarantine(self) -> bool:
        """Whether checkpoints that fail verification are moved into ``quarantine/``.

        Always False on a non-chief worker of a multi-worker job: only the chief moves files.
        """
        return self._options.quarantine

    @property
    def save_retry(self) -> StorageRetry | None:
        """How saves retry transient storage errors here (``"auto"`` resolved), or None."""
        return None if self._worker.multi_worker else self._options.save_retry_for(self._path)

    @property
    def checkpoint_name(self) -> str:
        """The base name of this manager's checkpoint prefixes."""
        return str(fs.basename(adapter.checkpoint_prefix(self)))

    def diagnose(self, *, deep: bool = False) -> Diagnosis:
        """Diagnose this manager's directory for its `checkpoint_name` (see `safeckpt.diagnose`)."""
        return diagnose(self._path, checkpoint_name=self.checkpoint_name, deep=deep)

    def restore(
        self, save_path: Any = None, *, options: Any = None, match: str | None = None
    ) -> RestoreReport:
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
            match: Override the manager's ``match`` for this call.

        Returns:
            A `RestoreReport`, also stored as `last_restore`.

        Raises:
            CheckpointNotFoundError: Nothing to restore (a `tf.errors.NotFoundError`).
            CheckpointCorruptedError: Only damaged checkpoints (a `tf.errors.DataLossError`);
                `NoUsableCheckpointError` when every candidate was tried (also a
                `tf.errors.NotFoundError`).
            CheckpointPermissionError: The files cannot be read.
            StorageUnavailableError: The storage did not serve the newest checkpoint (after
                ``storage_retry``); nothing was skipped, moved or started fresh.
            CheckpointMismatchError: The checkpoint does not fit the program (see ``match``),
                found before anything was assigned.
            RestoreError: Any other failure; every one carries ``.diagnosis``. In a
                multi-worker job every worker raises when one of them fails (the error of
                that worker, rebuilt from its diagnosis) or when they would restore
                different checkpoints; `WorkerUnavailableError` when another worker crashed
                or did not report within ``peer_timeout``.
        """
        settings = self._options.restore_settings(
            adapter.checkpoint_of(self), self._path, self.checkpoint_name, adapter.init_fn(self),
            options, match,
        )  # fmt: skip

        def run() -> RestoreReport:
            listed = self._reconcile()
            result = Restore(settings).run(save_path, adapter.latest(self), listed, self._floor)
            report = self._apply(result.plan)  # also after a failure: rejections, quarantine
            if result.error is not None:
                raise result.error
            assert report is not None
            report = self._keeper.annotate(report)
            self.last_restore = report
            return report

        if self._worker.multi_worker:
            self._sync_checkpoint()  # the chief opens the agreement once its writes are done
        return self._agreement.decide(
            run,
            lambda report: report.save_path and str(fs.basename(report.save_path)),
            lambda report: f"{report.outcome.value} {report.save_path or report.directory}",
        )

    def restore_or_initialize(self, *, match: str | None = None) -> str | None:
        """Restore the newest usable checkpoint, else initialize; TensorFlow's contract.

        Goes through the same policies as `restore` (``restore(None)``).

        Returns:
            The restored checkpoint prefix, or None after initializing (``init_fn`` called).
        """
        return self.restore(match=match).save_path

    def save(
        self,
        checkpoint_number: Any = None,
        check_interval: bool = True,
        options: Any = None,
        *,
        metrics: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str | None:
        """Save a checkpoint, as `tf.train.CheckpointManager.save` does, never over another.

        Once TensorFlow's files are complete, ``<prefix>.safeckpt.json`` is written beside
        them (atomically; docs/metadata.md): the step, time, versions, host and process, a
        fingerprint of the variables, `metrics` and `metadata`. Its presence means the save
        finished; a checkpoint without it is as usable.

        When TensorFlow's numbering (``save_counter + 1``) names a checkpoint whose files
        exist (after restoring an older checkpoint, or in a new run next to old ones), the
        save is numbered above the highest existing step instead (logged). An explicit
        `checkpoint_number` is honoured, with a warning when it names an existing checkpoint.

        On a non-chief worker of a multi-worker job the checkpoint is written into
        ``<directory>/workertemp_<task_id>/``, which is then deleted, and the path returned
        is the one the chief writes in `directory`.

        Args:
            checkpoint_number: TensorFlow's: the number of the checkpoint (default: the
                next ``save_counter``).
            check_interval: TensorFlow's: honour ``checkpoint_interval``.
            options: TensorFlow's `tf.train.CheckpointOptions`.
            metrics: Numbers by name (``{"val_loss": 0.31}``; ``nan`` and infinities are
                kept but never rank as best), recorded and used by ``keep_best``.
            metadata: Anything JSON-serializable (str keys, finite numbers) to record.

        The manager holds the directory's writer lease for its `checkpoint_name`
        (``writer_lease=True``, docs/fallback.md): a save that finds another live writer's
        lease raises before anything is written.

        Raises:
            TypeError: A `metrics` or `metadata` value is not acceptable (naming its key;
                raised before anything is written).
            ReadOnlyError: The manager was created with ``read_only=True``.
            ConcurrentWriterError: Another live writer saves checkpoints of this name here.
            SaveError: The ``checkpoint`` state file is a directory, FIFO or device, the
                save's ``<prefix>-<N>_temp`` is there but no real directory (a link, a
                file, a socket), or an explicit `checkpoint_number` has files whose names
                are not UTF-8 (TensorFlow's save fails on them); nothing is written.
                Also after a failed write (docs/saving.md): the storage kept failing
                after ``save_retry`` (cause ``storage_unavailable``), the disk is full
                (``disk_full``), or with ``check_finite=True`` a variable holds NaN or
                infinity (``nonfinite_values``). The files this save wrote are removed;
                the state file, every earlier checkpoint and ``save_counter`` are as they
                were, so a training loop may catch it and go on.
        """
        if self._options.read_only:
            raise read_only_error(self._path)
        pending = self._keeper.check(metrics, metadata)
        self._reconcile()
        if self._state_unwritable:
            self._state_unwritable = refuse_if_state_unwritable(self._path)
        if adapter.interval_skips(self, check_interval):
            return None  # TensorFlow's checkpoint_interval: nothing is written
        if self._options.check_finite:
            refuse_nonfinite(adapter.checkpoint_of(self), self._path)
        checkpoint = adapter.checkpoint_of(self)
        count = int(checkpoint.save_counter.numpy()) if tf.executing_eagerly() else None
        self._existing_steps = before_writing(self.save_retry, self._path, lambda: prepare_save(
            checkpoint, adapter.checkpoint_prefix(self), checkpoint_number,
            self._existing_steps, self._lease, chief=self._worker.is_chief,
        ))  # fmt: skip
        checkpoint, prefix = adapter.checkpoint_of(self), adapter.checkpoint_prefix(self)
        self._keeper.expect(pending, expected_prefix(checkpoint, prefix, checkpoint_number))

        def tf_save(written: Any = options) -> str | None:
            return super(SafeCheckpointManager, self).save(  # type: ignore[no-any-return]
                checkpoint_number=checkpoint_number, check_interval=check_interval, options=written
            )

        if self._worker.is_chief:
            job = plan(
                self, checkpoint_number, options, self.save_retry, self._existing_steps,
                self._leftovers_at_start,
            )  # fmt: skip
            job = None if job is None else dataclasses.replace(job, count=count)
            result = tf_save() if job is None else save_retrying(job, tf_save, options)
        else:  # no agreement: a save's collectives are TensorFlow's
            result = save_as_worker(
                self._path, self._worker, tf_save, self._sync_checkpoint, self._relocate
            )
        if result is None:
            return None
        step = split_step(fs.basename(result))[1]
        self._existing_steps |= frozenset() if step is None else {step}
        self._floor = result
        if self._options.cleanup_temp and self._worker.is_chief:
            asynchronous = getattr(options, "experimental_enable_async_checkpoint", False)
            done = None if asynchronous else result
            cleanup_after_save(self._path, self.checkpoint_name, done, self._listed_at_start)
        return result

    def _relocate(self, into: str) -> None:
        """Move the manager's state (rotation, latest, prefix) into the directory `into`.

        For a non-chief's save (`save_as_worker`): TensorFlow's save then writes and sweeps
        only there; moved back to the manager's directory afterwards.
        """

        def move(path: str) -> str:
            return fs.join(into, fs.basename(path))

        latest = adapter.latest(self)
        rotation = adapter.rotation(self)
        adapter.set_rotation(
            self, collections.OrderedDict((move(p), t) for p, t in rotation.items())
        )
        adapter.set_latest(self, None if latest is None else move(latest))
        adapter.relocate(self, into, move(adapter.checkpoint_prefix(self)))

    def _sweep(self) -> None:
        """TensorFlow's rotation, after it recorded a save: metadata, ``keep_best``, its sweep.

        Overrides `tf.train.CheckpointManager`'s (called by its save once the checkpoint's
        files are complete; `safeckpt._io.tf.sweep`). Only the chief writes metadata; every
        worker applies ``keep_best`` to its rotation.
        """
        chief = self._worker.is_chief
        self._keeper.sweep(
            self,
            adapter.max_to_keep(self),
            lambda: adapter.sweep(self, SafeCheckpointManager),
            chief=chief,
        )

    @property
    def keep_best(self) -> KeepBest | None:
        """The ``keep_best`` option (None: TensorFlow's rotation)."""
        return self._keeper.keep

    @property
    def best_checkpoint(self) -> str | None:
        """The best checkpoint by ``keep_best`` that verifies (quick), or None.

        Found from the metadata files on disk (so after a restart too, and the same on every
        worker of a multi-worker job once the chief's save is finished): one listing, one
        read per metadata file of this name, and a quick verification of the best, passing
        over a damaged one to the next best. None without ``keep_best`` or when no
        checkpoint has the metric. `restore` still resumes from the newest; restore this one
        with ``manager.restore(manager.best_checkpoint)``.
        """
        return self._keeper.best()

    def metadata(self, prefix: Any = None) -> CheckpointMetadata | None:
        """The metadata recorded beside `prefix` (default: `latest_checkpoint`), or None.

        None when there is no checkpoint, or no metadata file (plain TensorFlow, an older
        safeckpt, a save interrupted before it); a damaged file is logged and gives None.
        """
        if prefix is None:
            prefix = self.latest_checkpoint
            if prefix is None:
                return None
        return read_for_manager(metadata_prefix(prefix))

    def _sync_checkpoint(self) -> None:
        """Wait for an asynchronous save (`sync`, also for checkpoints without one)."""
        sync = getattr(adapter.checkpoint_of(self), "sync", None)
        if callable(sync):
            sync()
