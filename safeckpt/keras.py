"""Keras: `BackupAndRestore`, a drop-in for `keras.callbacks.BackupAndRestore`.

Importing this module imports Keras (``import safeckpt`` does not).

Example:
    >>> import safeckpt.keras
    >>> callback = safeckpt.keras.BackupAndRestore("/tmp/backup")  # was keras.callbacks.…
    >>> model.fit(x, y, epochs=10, callbacks=[callback])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import keras

from safeckpt._catalog.inventory import scan
from safeckpt._catalog.lease import lease_name
from safeckpt._format.layout import METADATA_SUFFIX, TEMP_SUFFIX, split_step
from safeckpt._io import fs, paths, safeio
from safeckpt._io import tf as adapter
from safeckpt._io.tf import tf
from safeckpt._manager.arguments import check_max_to_keep
from safeckpt._manager.manager import SafeCheckpointManager
from safeckpt._multiworker import context
from safeckpt._report import Outcome
from safeckpt._restore.policies import FallbackPolicy, normalize_fallback
from safeckpt._settings import normalize_match, normalize_verify

__all__ = ["BackupAndRestore"]

logger = logging.getLogger("safeckpt")

#: Base name of the backups: ``<backup_dir>/backup-<N>.index`` and ``.data-*``.
CHECKPOINT_NAME = "backup"


class BackupAndRestore(keras.callbacks.Callback):  # type: ignore[misc]
    """Back up the training state of `model.fit` and resume it, with safeckpt's guarantees.

    A drop-in for `keras.callbacks.BackupAndRestore`: Keras's four parameters keep Keras's
    names, order, defaults, validation and error messages. Each backup is a TensorFlow
    checkpoint ``<backup_dir>/backup-<N>`` of ``tf.train.Checkpoint(model=..., optimizer=...,
    epoch=..., batch=...)`` written by a `safeckpt.SafeCheckpointManager`: the weights, the
    optimizer state and the training position are in one checkpoint, written atomically, so
    they never disagree. A new backup never overwrites an older one; the manager keeps the
    newest ``max_to_keep``.

    At the start of `fit` the newest backup that verifies is restored (a damaged newest backup
    falls back to the previous one, logged) and `fit` resumes at the epoch after the last
    completed one, as Keras's callback does. With an integer `save_freq` the backed-up
    weights are restored and the interrupted epoch runs again from its first batch (Keras's
    behaviour). A backup that does not match the model raises
    `safeckpt.CheckpointMismatchError`, before anything is assigned.

    Args:
        backup_dir: Directory of the backups: a local path (``~``, ``$VAR`` and relative
            paths are resolved once, here) or a URI. Validated like
            `SafeCheckpointManager`'s directory (and created) at the start of `fit`.
        save_freq: ``"epoch"`` (a backup at the end of each epoch), an integer (a backup
            every `save_freq` batches), or False (no backup; Keras documents False for
            preemption checkpointing).
        double_checkpoint: If True, at least two backups are kept (``max_to_keep`` is
            raised to 2 if lower).
        delete_checkpoint: If True, a `fit` that ends normally deletes the backups and the
            state file this callback wrote (and `backup_dir` if it is then empty); any other
            file in `backup_dir` stays.
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
        keep = check_max_to_keep(max_to_keep)
        if double_checkpoint and keep is not None:
            keep = max(keep, 2)
        self.max_to_keep = keep
        self._fallback = normalize_fallback(fallback)
        self._verify = normalize_verify(verify)
        self._match = normalize_match(match)
        self._manager: SafeCheckpointManager | None = None
        self._position: tuple[Any, Any] | None = None  # the epoch and batch tf.Variables
        self._resumed_at: int | None = None

    @property
    def manager(self) -> SafeCheckpointManager | None:
        """The `SafeCheckpointManager` of the current (or last) `fit`; None before one."""
        return self._manager

    def on_train_begin(self, logs: Any = None) -> None:
        """Restore the newest usable backup and make `fit` resume after its epoch."""
        model = self.model
        if not model.built:
            raise ValueError(
                "To use the BackupAndRestore callback, "
                "you model must be built before you call `fit()`. "
                f"Model {model} is unbuilt. You can build it "
                "beforehand by calling it on a batch of data."
            )
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            # Optimizer variables must exist to receive their backed-up values.
            optimizer.build(model.trainable_variables)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="backup_epoch")
        batch = tf.Variable(0, dtype=tf.int64, trainable=False, name="backup_batch")
        objects: dict[str, Any] = {"model": model, "epoch": epoch, "batch": batch}
        if optimizer is not None:
            objects["optimizer"] = optimizer
        self._position = (epoch, batch)
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._manager = SafeCheckpointManager(
            tf.train.Checkpoint(**objects),
            self.backup_dir,
            max_to_keep=self.max_to_keep,
            checkpoint_name=CHECKPOINT_NAME,
            fallback=self._fallback,
            verify=self._verify,
            match=self._match,
        )
        report = self._manager.restore()
        if report.save_path is None:
            self._current_epoch = 0
            return
        level = logging.WARNING if report.outcome is Outcome.FELL_BACK else logging.INFO
        logger.log(level, "BackupAndRestore: %s", report)
        self._current_epoch = int(epoch.numpy())
        self._resumed_at = self._current_epoch
        adapter.set_initial_epoch(model, self._current_epoch)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        """Record the epoch in progress (what a batch-level backup resumes)."""
        self._current_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        """Back up at the end of the epoch with ``save_freq="epoch"``."""
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save_model()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        """Back up every `save_freq` batches with an integer `save_freq`."""
        if self._should_save_on_batch(batch):
            self._save_model()

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

    def _save_model(self) -> None:
        """Write one backup: weights, optimizer state and position in one checkpoint."""
        assert self._manager is not None
        assert self._position is not None
        epoch, batch = self._position
        epoch.assign(self._current_epoch)
        batch.assign(self._last_batch_seen)
        self._manager.save()

    def on_train_end(self, logs: Any = None) -> None:
        """Delete this callback's backups (``delete_checkpoint=True``), nothing else."""
        if self._resumed_at is not None:
            if adapter.initial_epoch(self.model) == self._resumed_at:
                adapter.set_initial_epoch(self.model, None)
            self._resumed_at = None
        if self.delete_checkpoint and context.worker_context().is_chief:
            delete_backups(self.backup_dir)


def delete_backups(directory: str) -> list[str]:
    """Delete the backups `BackupAndRestore` writes in `directory`, and nothing else.

    Removes every ``backup-<N>`` checkpoint (complete or damaged), its metadata file and its
    ``_temp`` leftover,
    the writer lease of ``backup`` (``.safeckpt-writer-backup``), the ``checkpoint`` state
    file when it lists only backups, its ``checkpoint.tmp*``
    leftovers then, and finally `directory` itself if it is then empty (local paths only).

    Returns:
        The paths removed.
    """
    if not tf.io.gfile.exists(directory):
        return []
    inventory = scan(directory)
    doomed = [
        fs.join(directory, name)
        for info in inventory.family(CHECKPOINT_NAME)
        for name in (*info.files, *([info.metadata_file] if info.metadata_file else []))
    ]
    doomed += [  # metadata files without their checkpoint, and killed metadata writes
        fs.join(directory, name)
        for name in (*inventory.orphan_metadata, *inventory.metadata_temps)
        if split_step(name.split(METADATA_SUFFIX, 1)[0])[0] == CHECKPOINT_NAME
    ]
    doomed += [
        fs.join(directory, name)
        for name in inventory.temp_dirs
        if split_step(name.removesuffix(TEMP_SUFFIX))[0] == CHECKPOINT_NAME
    ]
    lease = lease_name(CHECKPOINT_NAME)
    doomed += [
        fs.join(directory, name)
        for name in inventory.own
        if name == lease or name.startswith(lease + ".tmp-")
    ]
    state = inventory.state
    recorded = (*state.all_paths, *([state.latest] if state.latest else []))
    if (
        state.exists
        and state.problem is None
        and all(split_step(fs.basename(path))[0] == CHECKPOINT_NAME for path in recorded)
    ):
        doomed.append(state.path)
        doomed += [fs.join(directory, name) for name in inventory.state_temps]
    removed = []
    for path in doomed:
        try:
            safeio.remove_entry(path)  # a link as a link: never what it points to
        except (tf.errors.NotFoundError, FileNotFoundError):
            continue
        removed.append(path)
    if fs.scheme_of(directory) is None:
        try:
            os.rmdir(directory)  # fails (and keeps it) unless it is empty
        except OSError:
            pass
        else:
            removed.append(directory)
    return removed
