"""The manager's metadata files and ``keep_best``: written after each save, swept with it.

`Keeper` is what `SafeCheckpointManager` delegates to:

- ``save(metrics=..., metadata=...)`` checks the values before anything is written
  (`Keeper.check`), and removes a metadata file left without its checkpoint under the
  number about to be saved, so that no stale file can ever describe the new checkpoint;
- TensorFlow's rotation calls the manager's ``_sweep`` after it recorded the new checkpoint
  in the state file (its files are then complete); the manager calls `Keeper.sweep`, which
  writes the new checkpoint's metadata file, takes the `k` best
  (`safeckpt._catalog.best.decide`) out of TensorFlow's sight, runs TensorFlow's own sweep
  (it deletes, and applies ``keep_checkpoint_every_n_hours``), removes the metadata file of
  every checkpoint that sweep deleted (after the checkpoint: a kill in between leaves an
  orphan metadata file, never a checkpoint without its data; the inventory reports
  orphans, ``cleanup_temp`` and ``repair`` remove them), and puts the protected ones back
  at the old end of the rotation;
- `Keeper.best` finds the best checkpoint again from the metadata files on disk.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from safeckpt._catalog.best import Scored, decide, rank_best
from safeckpt._catalog.inventory import Inventory, scan
from safeckpt._format import metadata as files
from safeckpt._format.layout import INDEX_SUFFIX, METADATA_SUFFIX, split_step, strip_file_suffix
from safeckpt._format.verify import check_prefix
from safeckpt._io import fs, paths, pool
from safeckpt._io import tf as adapter
from safeckpt._io.tf import tf
from safeckpt._metadata import CheckpointMetadata, KeepBest
from safeckpt._report import RestoreReport

logger = logging.getLogger("safeckpt")


def check_keep_best(keep_best: object) -> KeepBest | None:
    """The ``keep_best`` argument, checked.

    Raises:
        TypeError: Neither None nor a `KeepBest`.
    """
    if keep_best is None or isinstance(keep_best, KeepBest):
        return keep_best
    raise TypeError(
        f"keep_best must be a safeckpt.KeepBest (e.g. KeepBest('val_loss', mode='min')) "
        f"or None, got {keep_best!r}."
    )


@dataclass(frozen=True)
class Pending:
    """What one ``save()`` call asked to record (checked before TensorFlow wrote anything)."""

    metrics: dict[str, float]
    metadata: dict[str, Any]


@dataclass
class Keeper:
    """One manager's metadata files and best checkpoints (see the module docstring).

    Attributes:
        directory: The manager's directory (normalized).
        name: Its checkpoint name.
        keep: Its ``keep_best`` (None: metadata only).
        task: The multi-worker task (``"worker:0"``) written into the files, or None.
    """

    directory: str
    name: str
    keep: KeepBest | None
    task: str | None = None
    _pending: dict[str | None, Pending] = field(default_factory=dict)
    _orphans: set[str] = field(default_factory=set)
    _book: dict[str, Scored] | None = None  # prefix -> metrics of this name, once read

    def seen(self, inventory: Inventory) -> None:
        """Take note of the directory as first listed: its orphan metadata files."""
        for name in inventory.orphan_metadata:
            base = name[: -len(METADATA_SUFFIX)]
            if split_step(base)[0] == self.name:
                self._orphans.add(fs.join(self.directory, base))

    @staticmethod
    def check(metrics: object, metadata: object) -> Pending:
        """A save's values, checked before anything (even the writer lease) is written.

        Raises:
            TypeError: A metric or metadata value is not acceptable (naming its key).
        """
        return Pending(files.check_metrics(metrics), files.check_user_metadata(metadata))

    def expect(self, pending: Pending, prefix: str | None) -> None:
        """Remember what the save TensorFlow is about to write (`prefix`) records.

        `prefix` is None when the number cannot be known (graph mode). A metadata file of
        that prefix left by an earlier checkpoint whose files are gone is removed now, so
        that it can never describe the new checkpoint.
        """
        if prefix is not None and prefix in self._orphans:
            try:
                files.remove_metadata(prefix)
            except (tf.errors.OpError, OSError) as exc:
                path = files.metadata_path(prefix)
                logger.warning("Could not remove the stale %s: %s", path, exc)
            self._orphans.discard(prefix)
        self._pending[prefix] = pending

    def sweep(
        self,
        manager: Any,
        max_to_keep: int | None,
        tf_sweep: Callable[[], None],
        *,
        chief: bool = True,
    ) -> None:
        """After TensorFlow recorded a save: write its metadata, then the rotation's sweep.

        A non-chief worker's save runs in its private ``workertemp_<id>/`` (its rotation
        names files there): it writes and removes no metadata (the chief does), but applies
        the same decision to its rotation, from its own ``metrics=`` and the chief's files,
        so that `checkpoints` is the same on every worker.
        """
        saved = adapter.latest(manager)
        if saved is not None:
            shared = self._shared(saved)
            pending = self._pending.pop(shared, None) or self._pending.pop(None, None)
            if chief:
                self._write(shared, pending or Pending({}, {}))
            elif self.keep is not None:
                self._score(shared, pending or Pending({}, {}))
        rotation = adapter.rotation(manager)
        by_shared = {self._shared(p): p for p in rotation}
        decision = decide(list(by_shared), max_to_keep, self.keep, self._known())
        held = collections.OrderedDict(
            (by_shared[p], rotation.pop(by_shared[p])) for p in decision.protected
        )
        before = list(rotation)
        tf_sweep()
        rotation = adapter.rotation(manager)
        hours = adapter.keeps_hours(manager)  # else every entry TF popped was deleted
        for prefix in before:
            if prefix not in rotation and not (hours and fs.exists(prefix + INDEX_SUFFIX)):
                self._forget(self._shared(prefix), remove=chief)
        if held:
            held.update(rotation)
            adapter.set_rotation(manager, held)

    def _shared(self, prefix: str) -> str:
        """`prefix` in the manager's directory (a non-chief's save names its private one)."""
        return fs.join(self.directory, fs.basename(prefix))

    def _score(self, prefix: str, pending: Pending) -> None:
        """Take note of a save's metrics without writing (a non-chief worker)."""
        self._known()
        if self._book is not None:
            step = split_step(fs.basename(prefix))[1]
            self._book[prefix] = Scored(prefix, step, dict(pending.metrics))

    def _write(self, prefix: str, pending: Pending) -> None:
        meta = files.build(
            prefix,
            time=adapter.now(),
            metrics=pending.metrics,
            metadata=pending.metadata,
            keep_best=self.keep,
            task=self.task,
            variables=files.fingerprint(prefix),
        )
        try:
            files.write_metadata(meta)
        except (tf.errors.OpError, OSError) as exc:  # the checkpoint is complete: keep it
            logger.warning("Could not write %s: %s", files.metadata_path(prefix), exc)
            return
        self._orphans.discard(prefix)
        if self._book is not None:
            self._book[prefix] = Scored(prefix, meta.step, meta.metrics)

    def _forget(self, prefix: str, *, remove: bool = True) -> None:
        """The checkpoint `prefix` was deleted: remove its metadata file (after it)."""
        if self._book is not None:
            self._book.pop(prefix, None)
        if not remove:
            return
        try:
            files.remove_metadata(prefix)
        except (tf.errors.OpError, OSError) as exc:
            self._orphans.add(prefix)
            logger.warning("Could not remove %s: %s", files.metadata_path(prefix), exc)

    def _known(self) -> list[Scored]:
        """Every checkpoint of this name with its metrics (read once, then kept up to date)."""
        if self.keep is None:
            return []
        if self._book is None:
            self._book = {s.prefix: s for s in read_scores(self.directory, self.name)}
        return list(self._book.values())

    def best(self, *, verify: bool = True) -> str | None:
        """The best checkpoint of this name by ``keep_best``, from the files on disk.

        One listing, one read per metadata file of the name (in parallel on remote storage)
        and, with `verify`, a quick verification of the candidate; a damaged one is passed
        over for the next best. None without ``keep_best`` or when none has the metric.
        """
        if self.keep is None:
            return None
        for candidate in rank_best(read_scores(self.directory, self.name), self.keep):
            if not verify:
                return candidate.prefix
            verdict = check_prefix(candidate.prefix)
            if verdict.ok:
                return candidate.prefix
            logger.warning(
                "%s would be the best checkpoint by %s but does not verify (%s); "
                "trying the next best.",
                candidate.prefix,
                self.keep.metric,
                verdict.summary,
            )
        return None

    def annotate(self, report: RestoreReport) -> RestoreReport:
        """`report` with a note when the restored checkpoint has no metadata, or damaged."""
        if report.save_path is None:
            return report
        read = files.read_metadata(report.save_path)
        base = fs.basename(report.save_path)
        if read.problem is not None:
            note = f"The metadata file of {base} is damaged ({read.problem}); it was ignored."
        elif read.metadata is None:
            note = (
                f"{base} has no metadata file (written by plain TensorFlow, an older "
                "safeckpt, or a save interrupted before it)."
            )
        else:
            return report
        return replace(report, notes=(*report.notes, note))


def read_scores(directory: str, name: str) -> list[Scored]:
    """The complete checkpoints of `name` in `directory` with the metrics their files record."""
    infos = [c for c in scan(directory).family(name) if c.complete]
    reads = pool.map_io(
        directory,
        lambda c: files.read_metadata(c.prefix) if c.metadata_file is not None else None,
        infos,
    )
    return [
        Scored(c.prefix, c.step, None if r is None or r.metadata is None else r.metadata.metrics)
        for c, r in zip(infos, reads, strict=True)
    ]


def metadata_prefix(path: object) -> str:
    """The checkpoint prefix `path` names: a prefix, or one of its files (metadata included).

    Raises:
        TypeError, CheckpointDirectoryError: `path` is malformed.
    """
    prefix = paths.normalize_directory(path, "prefix")
    if prefix.endswith(METADATA_SUFFIX) and len(prefix) > len(METADATA_SUFFIX):
        return prefix[: -len(METADATA_SUFFIX)]
    return strip_file_suffix(prefix) or prefix


def read_for_manager(prefix: str) -> CheckpointMetadata | None:
    """The metadata of `prefix`, or None (absent; a damaged file is logged and gives None)."""
    read = files.read_metadata(prefix)
    if read.problem is not None:
        logger.warning("The metadata file %s is damaged: %s", read.path, read.problem)
    return read.metadata
