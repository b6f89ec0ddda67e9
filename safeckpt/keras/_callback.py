"""`BackupAndRestore`: a drop-in for `keras.callbacks.BackupAndRestore` over safeckpt.

The callback is the engine: it writes and restores backups through a
`SafeCheckpointManager` and applies what the policies decide: the callbacks' state
(`safeckpt.keras._callbacks`), where a resumed epoch continues (`safeckpt.keras._resume`),
and the preemption signal (`safeckpt.keras._preemption`).

Inside Keras's ``fit`` it works *after* every other callback: from the first epoch on it is
moved to the end of ``fit``'s ``CallbackList``, so a backup holds the state the other
callbacks reached at that epoch or batch (a `ReduceLROnPlateau` listed first has already
lowered the learning rate), and the state it restores is put back after every
``on_train_begin`` (which resets it). The list's hooks are wrapped for the length of the
``fit``: to number the batches of a resumed epoch, and to back up a trained epoch or batch
when another callback raises before this one is reached. Driven by a loop of its own (the
hooks called directly), it backs up in its own hooks.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from safeckpt._io import paths
from safeckpt._io import tf as adapter
from safeckpt._io.tf import tf
from safeckpt._manager.arguments import check_max_to_keep
from safeckpt._manager.manager import SafeCheckpointManager
from safeckpt._multiworker import context
from safeckpt._report import Outcome
from safeckpt._restore.policies import FallbackPolicy, normalize_fallback
from safeckpt._restore.reading import match_or_raise
from safeckpt._settings import MatchMode, normalize_match, normalize_verify
from safeckpt.keras._callbacks import apply_states, capture_states
from safeckpt.keras._cleanup import CHECKPOINT_NAME, delete_backups
from safeckpt.keras._preemption import SignalWatch
from safeckpt.keras._resume import RestartEpoch, SkipBatches, plan
from safeckpt.keras._state import FitState, FitStateError, Position, decode, encode

__all__ = ["BackupAndRestore"]

logger = logging.getLogger("safeckpt")

#: The ``CallbackList`` methods wrapped during a ``fit`` (see the module doc).
_HOOKS = ("on_epoch_begin", "on_train_batch_begin", "on_train_batch_end", "on_epoch_end")


class BackupAndRestore(keras.callbacks.Callback):  # type: ignore[misc]
    """Back up the training state of `model.fit` and resume it, with safeckpt's guarantees.

    A drop-in for `keras.callbacks.BackupAndRestore`: Keras's four parameters keep Keras's
    names, order, defaults, validation and error messages. Each backup is a TensorFlow
    checkpoint ``<backup_dir>/backup-<N>`` of ``tf.train.Checkpoint(model=..., optimizer=...,
    epoch=..., batch=..., fit_state=...)`` written by a `safeckpt.SafeCheckpointManager`:
    the weights, the optimizer state, the training position and the state of the ``fit``'s
    stateful callbacks and metrics are in one checkpoint, written atomically, so they never
    disagree. A new backup never overwrites an older one; the manager keeps the newest
    ``max_to_keep``.

    At the start of `fit` the newest backup that verifies is restored (a damaged newest
    backup falls back to the previous one, logged) and `fit` resumes as if it had never
    stopped:

    - at the epoch after the last completed one, or, after a mid-epoch backup (an integer
      `save_freq`, a preemption), at the batch after the last one backed up, when the
      input reads the same batches each epoch (otherwise the epoch runs again from its
      first batch, Keras's behaviour, and the log says why);
    - with the state of `ModelCheckpoint`, `EarlyStopping`, `ReduceLROnPlateau` and of any
      callback with ``backup_state()``/``restore_state(state)`` methods
      (`safeckpt.keras.StatefulCallback`);
    - into a model that is not built yet: the values wait for the variables the first batch
      creates (TensorFlow's restore-on-create) and are matched once they exist.

    A backup that does not match the model raises `safeckpt.CheckpointMismatchError`.

    Args:
        backup_dir: Directory of the backups: a local path (``~``, ``$VAR`` and relative
            paths are resolved once, here) or a URI. Validated like
            `SafeCheckpointManager`'s directory (and created) at the start of `fit`.
        save_freq: ``"epoch"`` (a backup at the end of each epoch), an integer (a backup
            every `save_freq` batches), or False (no periodic backup).
        double_checkpoint: If True, at least two backups are kept (``max_to_keep`` is
            raised to 2 if lower).
        delete_checkpoint: If True, a `fit` that ends normally deletes the backups and the
            state file this callback wrote (and `backup_dir` if it is then empty); any other
            file in `backup_dir` stays.
        save_before_preemption: If True (tf_keras's name), a ``SIGTERM`` during `fit` makes
            the callback back up at the end of the batch in progress and stop `fit`
            (``model.stop_training``); the backups are kept, and once `fit` has returned
            the signal is delivered again to the handler that was in place before (by
            default the process then terminates). `fit` must run in the main thread.
        max_to_keep: How many backups to keep (None: all).
        fallback: The `SafeCheckpointManager` ``fallback`` policies, for a newest backup that
            cannot be restored.
        verify: How each backup is checked before it is restored: ``"quick"``, ``"deep"``
            or ``"none"``.
        match: What a restore requires of the model against the backup: ``"existing"``,
            ``"consumed"`` or ``"partial"``.

    Raises:
        ValueError: `backup_dir` is empty ("Empty `backup_dir` argument passed"), `save_freq`
            is neither ``"epoch"`` nor an integer ("Invalid value for argument
            `save_freq`"), or a safeckpt option is invalid.
        CheckpointDirectoryError: `backup_dir` is malformed (a `ValueError` too).
    """

    def __init__(
        self,
        backup_dir: Any,
        save_freq: Any = "epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
        *,
        save_before_preemption: bool = False,
        max_to_keep: int | None = 2,
        fallback: str | FallbackPolicy | Sequence[str | FallbackPolicy] = "previous_valid",
        verify: str = "quick",
        match: str = "existing",
    ) -> None:
        super().__init__()
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        self.backup_dir = paths.normalize_directory(backup_dir, "backup_dir")
        if save_freq != "epoch" and not isinstance(save_freq, int):
            raise ValueError(
                "Invalid value for argument `save_freq`. "
                f"Received: save_freq={save_freq}. "
                "Expected either 'epoch' or an integer value."
            )
        if not isinstance(save_before_preemption, bool):
            raise TypeError(
                "save_before_preemption must be True or False, got "
                f"{type(save_before_preemption).__name__}"
            )
        self.save_before_preemption = save_before_preemption
        keep = check_max_to_keep(max_to_keep)
        if double_checkpoint and keep is not None:
            keep = max(keep, 2)
        self.max_to_keep = keep
        self._fallback = normalize_fallback(fallback)
        self._verify = normalize_verify(verify)
        self._match = normalize_match(match)
        self._manager: SafeCheckpointManager | None = None
        self._backup_checkpoint: Any = None
        self._variables: tuple[Any, Any, Any] | None = None  # epoch, batch, fit_state
        self._resumed_at: int | None = None
        self._fit: adapter.KerasFit | None = None
        self._wrapped: dict[str, Callable[..., Any]] = {}
        self._watch = SignalWatch()
        self._preempted = False
        self._restored: FitState | None = None
        self._pending_check: str | None = None  # a backup restored into an unbuilt model
        self._skip: SkipBatches | None = None  # the resumed epoch's batches to skip
        self._train_function: Callable[..., Any] | None = None
        self._idle_step = False  # the loop step in progress is past a resumed epoch's end
        self._handled: tuple[str, int] | None = None  # the last hook this callback ran
        self._fresh_iterator = True

    @property
    def manager(self) -> SafeCheckpointManager | None:
        """The `SafeCheckpointManager` of the current (or last) `fit`; None before one."""
        return self._manager

    @property
    def preempted(self) -> bool:
        """Whether the last `fit` was stopped by a preemption signal (its backup is kept)."""
        return self._preempted

    # --- the start of fit -------------------------------------------------------------

    def on_train_begin(self, logs: Any = None) -> None:
        """Restore the newest usable backup and make `fit` resume where it stood."""
        model = self.model
        self._fit = adapter.keras_fit(self)
        self._preempted = False
        self._restored = None
        self._skip = None
        self._pending_check = None
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._idle_step = False
        self._fresh_iterator = True
        optimizer = getattr(model, "optimizer", None)
        if model.built and optimizer is not None and not optimizer.built:
            # Optimizer variables must exist to receive their backed-up values.
            optimizer.build(model.trainable_variables)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="backup_epoch")
        batch = tf.Variable(0, dtype=tf.int64, trainable=False, name="backup_batch")
        fit_state = tf.Variable(b"", dtype=tf.string, trainable=False, name="backup_fit_state")
        objects: dict[str, Any] = {"model": model, "epoch": epoch, "batch": batch}
        if optimizer is not None:
            objects["optimizer"] = optimizer
        if self._match is MatchMode.CONSUMED:  # every value of the backup must be used
            objects["fit_state"] = fit_state
        self._variables = (epoch, batch, fit_state)
        self._backup_checkpoint = tf.train.Checkpoint(**objects)
        self._manager = SafeCheckpointManager(
            self._backup_checkpoint,
            self.backup_dir,
            max_to_keep=self.max_to_keep,
            checkpoint_name=CHECKPOINT_NAME,
            fallback=self._fallback,
            verify=self._verify,
            match=self._match,
        )
        built = model.built
        report = self._manager.restore()
        if "fit_state" not in objects:
            # Added after the restore, it takes the backup's value as it is tracked
            # (restore-on-create); a backup written before fit states existed has none and
            # matches as it did then.
            self._backup_checkpoint.fit_state = fit_state
        if report.save_path is not None:
            level = logging.WARNING if report.outcome is Outcome.FELL_BACK else logging.INFO
            logger.log(level, "BackupAndRestore: %s", report)
            if not built:
                self._pending_check = report.save_path
            self._resume_from(int(epoch.numpy()), fit_state.numpy())
        if self.save_before_preemption:
            self._watch.install(self._fit.frame if self._fit is not None else None)
        if self._fit is not None:
            self._wrap(self._fit.callback_list)
        elif self._pending_check is not None or self._skip is not None:
            self._wrap_train_function()

    def _resume_from(self, epoch: int, blob: bytes) -> None:
        """Take the restored backup's position and state; decide where the epoch continues."""
        position = Position(epoch=epoch)
        if blob:
            try:
                self._restored = decode(blob)
                position = self._restored.position
            except FitStateError as e:
                logger.warning(
                    "BackupAndRestore: the backup's fit state cannot be read (%s); fit "
                    "resumes at epoch %d from its first batch, callbacks afresh.",
                    e,
                    epoch,
                )
        if self._restored is not None:
            self._batches_seen_since_last_saving = self._restored.batches_since_save
            self._last_batch_seen = self._restored.last_batch_seen
        decision = plan(position, self._fit, self._steps_per_execution())
        if isinstance(decision, RestartEpoch):
            logger.warning(
                "BackupAndRestore: epoch %d was interrupted after batch %d; it runs again "
                "from its first batch because %s.",
                decision.epoch,
                position.batches_done,
                decision.reason,
            )
            self._last_batch_seen = 0
        elif decision.count:
            self._skip = decision
            logger.info(
                "BackupAndRestore: epoch %d continues at batch %d (the first %d are skipped).",
                decision.epoch,
                decision.count,
                decision.count,
            )
        self._current_epoch = position.epoch
        self._resumed_at = position.epoch
        adapter.set_initial_epoch(self.model, position.epoch)

    def _steps_per_execution(self) -> int:
        value = getattr(self.model, "steps_per_execution", 1)
        return value if isinstance(value, int) and value > 0 else 1

    # --- the hooks of fit's CallbackList, wrapped so that this callback works last ------

    def _wrap(self, callback_list: Any) -> None:
        for name in (*_HOOKS, "on_train_end"):
            self._wrapped[name] = getattr(callback_list, name)
        wrappers: dict[str, Callable[..., Any]] = {
            "on_epoch_begin": self._list_epoch_begin,
            "on_train_batch_begin": self._list_batch_begin,
            "on_train_batch_end": self._list_batch_end,
            "on_epoch_end": self._list_epoch_end,
            "on_train_end": self._list_train_end,
        }
        for name, wrapper in wrappers.items():
            setattr(callback_list, name, wrapper)
        self._wrap_train_function()

    def _unwrap(self) -> None:
        if self._fit is not None and self._wrapped:
            for name in self._wrapped:
                with contextlib.suppress(AttributeError):
                    delattr(self._fit.callback_list, name)
        self._wrapped = {}
        if self._train_function is not None:
            self.model.train_function = self._train_function
            self._train_function = None
        self._fit = None  # nor fit's frame, its callbacks and its data kept alive

    def _guarded(self, name: str, *args: Any) -> Any:
        """Call the wrapped hook; if it raises, end this fit's hooks and signal handlers."""
        try:
            return self._wrapped[name](*args)
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """A ``fit`` ended by an exception: undo the wrapping, give the signals back."""
        self._unwrap()
        self._watch.release()

    def _true_batch(self, batch: int) -> int:
        return batch + (self._skip.count if self._skip is not None else 0)

    def _beyond_epoch(self, batch: int) -> bool:
        """A loop step past the end of a resumed epoch whose first batches were skipped."""
        skip = self._skip
        return skip is not None and self._true_batch(batch) >= skip.batches_per_epoch

    def _list_epoch_begin(self, epoch: int, logs: Any = None) -> Any:
        if self._fit is not None:
            listed = self._fit.callback_list.callbacks
            if listed and listed[-1] is not self and any(c is self for c in listed):
                # Work last from now on: backups hold what every other callback made of
                # the epoch or batch (fit is not iterating the list between hooks).
                listed[:] = [c for c in listed if c is not self] + [self]
            if self._restored is not None:
                others = [c for c in self._fit.callbacks if c is not self]
                apply_states(self._restored.callbacks, others)
                if self._skip is None:
                    self._restored = None  # the metrics are for a skipped epoch only
        if self._skip is not None and self._skip.epoch != epoch:
            self._skip = None
        return self._guarded("on_epoch_begin", epoch, logs)

    def _list_batch_begin(self, batch: int, logs: Any = None) -> Any:
        self._idle_step = self._beyond_epoch(batch)
        if self._idle_step:
            return None
        return self._guarded("on_train_batch_begin", self._true_batch(batch), logs)

    def _list_batch_end(self, batch: int, logs: Any = None) -> Any:
        if self._beyond_epoch(batch):
            return None
        return self._end("on_train_batch_end", self._true_batch(batch), logs, self._after_batch)

    def _list_epoch_end(self, epoch: int, logs: Any = None) -> Any:
        self._skip = None
        self._restored = None
        return self._end("on_epoch_end", epoch, logs, self._after_epoch)

    def _end(self, hook: str, number: int, logs: Any, after: Callable[[int], None]) -> Any:
        """Dispatch an end hook; if a callback before this one raises, still back up."""
        self._handled = None
        try:
            return self._wrapped[hook](number, logs)
        except BaseException:
            # The epoch or batch is trained: back it up before the exception goes on.
            if self._handled != (hook, number):
                after(number)
            self._abandon()
            raise

    def _list_train_end(self, logs: Any = None) -> Any:
        try:
            return self._wrapped["on_train_end"](logs)
        finally:
            self._unwrap()
            self._watch.release()

    # --- the train function: skipped batches, metrics, a deferred match ----------------

    def _wrap_train_function(self) -> None:
        original = self.model.train_function
        if original is None or self._train_function is not None:
            return
        self._train_function = original

        def train_function(iterator: Any) -> Any:
            try:
                return self._train_step(original, iterator)
            except BaseException:
                self._abandon()
                raise

        self.model.train_function = train_function

    def _train_step(self, original: Callable[..., Any], iterator: Any) -> Any:
        skip = self._skip
        if skip is not None and self._restored is not None:
            restored, self._restored = self._restored, None
            # A whole epoch needs no reading (its iterator is replaced at its end), but an
            # unbuilt model needs one batch to be built on.
            reads = skip.count if skip.count < skip.batches_per_epoch else 0
            if not self.model.built:
                reads = max(reads, 1)
            for i in range(reads):
                batch = next(iterator)
                if i == 0 and not self.model.built:
                    self._build_on(batch)
            self._restore_metrics(restored.metrics, iterator)
        if self._idle_step:
            # Nothing read, nothing trained, no hook called: the epoch's logs so far.
            return self.model.get_metrics_result()
        if self._pending_check is not None:
            return self._first_step_and_match(original, iterator)
        return original(iterator)

    def _first_step_and_match(self, original: Callable[..., Any], iterator: Any) -> Any:
        """The first step of a model restored unbuilt, then its match against the backup.

        The step creates the variables; TensorFlow gives each its backed-up value as it is
        created (restore-on-create). A variable the backup cannot fill fails the step or the
        match, with the diagnosis of a `safeckpt.CheckpointMismatchError`.
        """
        prefix, self._pending_check = self._pending_check, None
        assert prefix is not None
        try:
            logs = original(iterator)
        except Exception:
            match_or_raise(self._backup_checkpoint, prefix, self._match, ())
            raise
        match_or_raise(self._backup_checkpoint, prefix, self._match, ())
        return logs

    def _build_on(self, batch: Any) -> None:
        """Build an unbuilt model by calling it on a batch, eagerly, in inference mode.

        Each variable it creates takes its backed-up value as it is created (TensorFlow's
        restore-on-create needs an eager creation; Keras's symbolic build cannot take it).
        """
        inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
        self.model(inputs, training=False)

    def _restore_metrics(self, values: Sequence[np.ndarray], iterator: Any) -> None:
        """Give the metrics the values they had at the backup, in the middle of its epoch."""
        spec = getattr(iterator, "element_spec", None)
        if len(self.model.metrics_variables) != len(values) and spec is not None:
            # Compiled metrics are built with the first step; build them now, from shapes
            # (the model is built: nothing of the backup is created here).
            adapter.build_from_spec(self.model, spec)
        variables = list(self.model.metrics_variables)
        if len(variables) != len(values) or any(
            tuple(v.shape) != tuple(a.shape) for v, a in zip(variables, values, strict=True)
        ):
            logger.warning(
                "BackupAndRestore: the model's metrics differ from the backup's; the "
                "resumed epoch's metrics count only the batches after the resume."
            )
            return
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)

    # --- the callback's own hooks -------------------------------------------------------

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        """Record the epoch in progress (what a batch-level backup resumes)."""
        self._current_epoch = epoch
        self._fresh_iterator = self._fit is not None and self._fit.steps_per_epoch is None

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        """Back up at the end of the epoch with ``save_freq="epoch"`` (or a preemption)."""
        self._handled = ("on_epoch_end", epoch)
        self._after_epoch(epoch)

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        """Back up every `save_freq` batches with an integer `save_freq` (or a preemption)."""
        self._handled = ("on_train_batch_end", batch)
        self._after_batch(batch)

    def on_train_end(self, logs: Any = None) -> None:
        """Delete this callback's backups (``delete_checkpoint=True``), nothing else."""
        if self._resumed_at is not None:
            if adapter.initial_epoch(self.model) == self._resumed_at:
                adapter.set_initial_epoch(self.model, None)
            self._resumed_at = None
        if self.delete_checkpoint and not self._preempted and context.worker_context().is_chief:
            delete_backups(self.backup_dir)
        if not self._wrapped:
            self._unwrap()
            self._watch.release()

    # --- backups --------------------------------------------------------------------------

    def _after_batch(self, batch: int) -> None:
        """After the other callbacks' ``on_train_batch_end``: back up if it is time."""
        due = self._should_save_on_batch(batch)
        if self._watch.received is not None and not self._preempted:
            self._preempt(self._current_epoch, batch + 1)
        elif due:
            self._save_model(self._current_epoch, batch + 1)

    def _after_epoch(self, epoch: int) -> None:
        """After the other callbacks' ``on_epoch_end``: back up at an epoch-end ``save_freq``."""
        if self._preempted:
            return  # fit stopped in the middle of the epoch: the preemption backup stands
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self._watch.received is not None and not self._preempted:
            self._preempt(epoch + 1, 0)
        elif self.save_freq == "epoch":
            self._save_model(epoch + 1, 0)

    def _preempt(self, epoch: int, batches_done: int) -> None:
        logger.warning(
            "BackupAndRestore: %s received; backing up epoch %d after %d batches and stopping fit.",
            self._watch.received.name if self._watch.received else "a signal",
            epoch,
            batches_done,
        )
        self._save_model(epoch, batches_done)
        self._preempted = True
        self.model.stop_training = True

    def _should_save_on_batch(self, batch: int) -> bool:
        """Keras's batch counting (supports ``steps_per_execution``)."""
        if self.save_freq == "epoch" or self.save_freq is False:
            return False
        # A batch number not above the last one starts a new epoch (batches are 0-indexed).
        new_epoch = batch <= self._last_batch_seen
        add_batches = batch + 1 if new_epoch else batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _save_model(self, epoch: int, batches_done: int) -> None:
        """Write one backup: weights, optimizer, position and fit state in one checkpoint."""
        assert self._manager is not None
        assert self._variables is not None
        epoch_variable, batch_variable, state_variable = self._variables
        fit = self._fit
        others = [c for c in fit.callbacks if c is not self] if fit is not None else []
        state = FitState(
            position=Position(
                epoch=epoch,
                batches_done=batches_done,
                fresh_iterator=self._fresh_iterator,
                batches_per_epoch=fit.num_batches if fit is not None else None,
                steps_per_execution=self._steps_per_execution(),
            ),
            callbacks=capture_states(others, others),
            metrics=(
                tuple(np.asarray(v.numpy()) for v in self.model.metrics_variables)
                if batches_done
                else ()
            ),
            batches_since_save=self._batches_seen_since_last_saving,
            last_batch_seen=self._last_batch_seen,
        )
        epoch_variable.assign(epoch)
        batch_variable.assign(self._last_batch_seen)
        state_variable.assign(encode(state))
        self._manager.save()
