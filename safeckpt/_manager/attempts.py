"""A save that survives storage hiccups, and the `SaveError` of one that does not.

One ``save()`` is one or more *attempts* of TensorFlow's save, all with the same number.
An attempt fails with a transient storage error (cause ``storage_unavailable`` in the one
table, `safeckpt._io.translate.cause_of`: 5xx, 429, dropped connections, TensorFlow's
"retry attempts failed") or a full disk (``disk_full``). Then:

- Before its files were complete (TensorFlow's write callbacks did not run), the files the
  attempt wrote are removed: ``<prefix>-<N>_temp/``, ``<prefix>-<N>.data-*``,
  ``<prefix>-<N>.index`` and ``checkpoint.tmp*``, never a name that existed before the
  attempt (`Before`), and the manager's rotation, latest checkpoint and ``save_counter`` are
  put back. Nothing else was touched: TensorFlow writes the state file and sweeps only
  after the files are complete.
- After (the state file or the sweep failed), the checkpoint is complete: only the
  recording (state file, sweep, state file) is tried again. If it never succeeds and the
  state file does not name the checkpoint, its files are removed as above.

A transient error is tried again as `StorageRetry` says; after the last try, or at once for
a full disk, `SaveError` is raised with the directory as it was. Any other error (403, a
missing bucket, a bad argument) is TensorFlow's, raised unchanged and never retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis, human_size
from safeckpt._errors import SaveError
from safeckpt._format.layout import (
    INDEX_SUFFIX,
    METADATA_SUFFIX,
    STATE_FILE,
    TEMP_SUFFIX,
    data_shard,
)
from safeckpt._format.statefile import read_state
from safeckpt._io import fs, safeio, storage
from safeckpt._io import tf as adapter
from safeckpt._io.tf import tf
from safeckpt._io.translate import cause_of
from safeckpt._manager.saving import requested_number
from safeckpt._settings import StorageRetry

logger = logging.getLogger("safeckpt")

_IO = (tf.errors.OpError, OSError)
#: Causes of a failed attempt that `save_retrying` handles; any other error is TensorFlow's.
HANDLED = frozenset({Cause.STORAGE_UNAVAILABLE, Cause.DISK_FULL})


@dataclass(frozen=True)
class Before:
    """What the directory held before an attempt: none of it is ever removed.

    Attributes:
        prefix: The save's ``<directory>/<name>-<N>``.
        names: The directory's entries (locally listed before each attempt; on remote
            storage, the leftovers the manager listed at its first use: no request).
        temp: The entries of ``<prefix>_temp/`` if it was there (locally), else None.
        had_checkpoint: ``<prefix>.index`` / ``.data-*`` existed (an explicit overwrite):
            they are never removed.
    """

    prefix: str
    names: frozenset[str]
    temp: frozenset[str] | None
    had_checkpoint: bool


def snapshot(prefix: str, existing: frozenset[int], step: int, known: frozenset[str]) -> Before:
    """`Before` for an attempt to save `prefix` (step `step`); `known`: remote leftovers."""
    directory, base = fs.dirname(prefix), fs.basename(prefix)
    local = fs.local_path(directory)
    if local is None:
        temp = None
        names = known
        had = step in existing
    else:
        try:
            names = frozenset(fs.listdir(directory))
        except _IO:
            names = frozenset()  # not there yet: TensorFlow's save creates it
        temp = frozenset(fs.listdir(prefix + TEMP_SUFFIX)) if base + TEMP_SUFFIX in names else None
        had = base + INDEX_SUFFIX in names or any(_shard_of(n, base) for n in names)
    return Before(prefix, names, temp, had)


def _shard_of(name: str, base: str) -> bool:
    shard = data_shard(name)
    return shard is not None and shard[0] == base


def written_by_attempt(before: Before, now: Iterable[str]) -> list[str]:
    """The names of `now` (the directory's entries) that the attempt wrote (pure).

    Within a ``_temp/`` that existed before, only its new entries (``<temp>/<entry>``).
    """
    base = fs.basename(before.prefix)
    out = []
    for name in now:
        if name in before.names:
            continue
        if (
            name == base + TEMP_SUFFIX
            or name.startswith(STATE_FILE + ".tmp")
            or (
                not before.had_checkpoint and (name == base + INDEX_SUFFIX or _shard_of(name, base))
            )
        ):
            out.append(name)
    return out


def remove_attempt(before: Before) -> list[str]:
    """Remove what the attempt wrote; returns the paths that could not be removed."""
    directory = fs.dirname(before.prefix)
    try:
        names = fs.listdir(directory)
    except _IO as exc:
        return [f"{directory} (could not be listed: {exc})"]
    paths = [fs.join(directory, n) for n in written_by_attempt(before, names)]
    temp = before.prefix + TEMP_SUFFIX
    if before.temp is not None and fs.basename(temp) in names:
        try:
            paths += [fs.join(temp, n) for n in fs.listdir(temp) if n not in before.temp]
        except _IO as exc:
            return [f"{temp} (could not be listed: {exc})"]
    failed = []
    for path in paths:
        try:
            safeio.remove_entry(path)
        except tf.errors.NotFoundError:
            pass
        except _IO as exc:
            failed.append(f"{path} ({exc})")
    if paths:
        logger.info("Removed what the failed save wrote: %s", [p for p in paths])
    return failed


def _names_checkpoint(directory: str, prefix: str) -> bool | None:
    """Whether the state file names `prefix` now (None: it could not be read)."""
    state = read_state(directory)
    if state.problem is not None:
        return None
    base = fs.basename(prefix)
    return any(fs.basename(p) == base for p in (state.latest or "", *state.all_paths))


def _newest_size(directory: str, latest: str | None) -> int | None:
    """Bytes of the newest checkpoint's files (what the next save needs), None if unknown.

    Its metadata file counts too: the next save writes one (docs/metadata.md).
    """
    if latest is None or fs.local_path(directory) is None:
        return None
    base = fs.basename(latest)
    try:
        names = fs.listdir(directory)
        return sum(
            fs.stat(fs.join(directory, n))[0]
            for n in names
            if n in (base + INDEX_SUFFIX, base + METADATA_SUFFIX) or _shard_of(n, base)
        )
    except _IO:
        return None


def disk_full_diagnosis(
    directory: str, prefix: str, needed: int | None, error: BaseException | None
) -> Diagnosis:
    """The diagnosis of a save (or a directory) without room for the next checkpoint."""
    free = storage.free_bytes(fs.local_path(directory) or directory)
    need = "unknown (no earlier checkpoint)" if needed is None else human_size(needed)
    have = "unknown" if free is None else human_size(free)
    return Diagnosis(
        Cause.DISK_FULL,
        f"No room for {fs.basename(prefix)}: it needs about {need} "
        f"(the newest checkpoint's size), {have} free.",
        directory,
        checkpoint=prefix,
        evidence=(
            f"bytes needed: {needed if needed is not None else 'unknown'} (the newest "
            f"checkpoint's size); bytes free: {free if free is not None else 'unknown'}.",
            *((f"{type(error).__name__}: {str(error).strip().splitlines()[0]}",) if error else ()),
        ),
        suggestions=(
            "Free space on that file system or point the manager at a larger one; "
            "TensorFlow writes the new checkpoint before it removes the oldest, so the "
            "directory needs room for one more checkpoint than max_to_keep.",
            "Nothing of this save was kept and the earlier checkpoints are untouched; the "
            "training loop may catch SaveError and save again later.",
        ),
        error=None if error is None else f"{type(error).__name__}: {error}".splitlines()[0],
    )


def _failure(
    cause: Cause, exc: BaseException, prefix: str, tries: int, kept: bool, failed: list[str]
) -> SaveError:
    directory = fs.dirname(prefix)
    if cause is Cause.DISK_FULL:
        diagnosis = disk_full_diagnosis(directory, prefix, None, exc)
    else:
        diagnosis = Diagnosis(
            Cause.STORAGE_UNAVAILABLE,
            f"The storage did not take {fs.basename(prefix)} after {tries} "
            f"tr{'y' if tries == 1 else 'ies'}.",
            directory,
            checkpoint=prefix,
            evidence=(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}",),
            suggestions=(
                "The state file and every earlier checkpoint are as they were, and "
                "save_counter is back where it was: catch SaveError, train on and save "
                "again later.",
                "More tries: SafeCheckpointManager(..., save_retry=safeckpt.StorageRetry("
                "attempts=5)).",
            ),
            error=f"{type(exc).__name__}: {exc}".splitlines()[0],
        )
    if kept:
        note = (
            f"{prefix} is complete and the state file may name it: it was kept, in the "
            "rotation; only recording it (or removing the oldest checkpoint) failed."
        )
        diagnosis = _with_evidence(diagnosis, note)
    if failed:
        diagnosis = _with_evidence(diagnosis, "Could not remove: " + "; ".join(failed))
    return SaveError(f"Nothing was saved: {diagnosis}" if not kept else str(diagnosis), diagnosis)


def _with_evidence(diagnosis: Diagnosis, line: str) -> Diagnosis:
    from dataclasses import replace

    return replace(diagnosis, evidence=(*diagnosis.evidence, line))


@dataclass(frozen=True)
class SaveJob:
    """One ``save()`` of the chief, as `save_retrying` runs it.

    Attributes:
        manager: The `SafeCheckpointManager`.
        number: The step the save will write (``save_counter + 1`` or explicit).
        retry: `StorageRetry` for transient errors, or None (one try).
        existing: Steps whose files exist.
        known: On remote storage, the leftovers listed at the manager's first use.
        count: ``save_counter`` when ``save()`` was called (before any renumbering), what a
            failed save puts back; None: as the attempt found it.
    """

    manager: Any
    number: int
    retry: StorageRetry | None
    existing: frozenset[int]
    known: frozenset[str]
    count: int | None = None


T = TypeVar("T")


def before_writing(retry: StorageRetry | None, directory: str, step: Callable[[], T]) -> T:
    """Run `step` (the lease, before TensorFlow writes) again while the storage fails.

    As `retry` says; after the last try `SaveError` (nothing was written).
    """
    tries = 1
    while True:
        try:
            return step()
        except _IO as exc:
            cause = cause_of(exc, Cause.UNKNOWN)
            if cause is not Cause.STORAGE_UNAVAILABLE:
                raise
            wait = retry.delay(tries) if retry is not None else None
            if wait is None:
                raise _failure(cause, exc, fs.join(directory, "(lease)"), tries, False, []) from exc
            logger.warning("Preparing the save failed (%s); trying again in %.1f s.", exc, wait)
            time.sleep(wait)
            tries += 1


def plan(
    manager: Any,
    checkpoint_number: Any,
    options: Any,
    retry: StorageRetry | None,
    existing: frozenset[int],
    known: frozenset[str],
) -> SaveJob | None:
    """The `SaveJob` of a chief's save, or None where TensorFlow's save runs as it is.

    Graph mode (the number is not known before TensorFlow's save) and asynchronous saves
    (their errors surface at the next save or ``sync()``, after this one returned).
    """
    if not tf.executing_eagerly() or getattr(
        options, "experimental_enable_async_checkpoint", False
    ):
        return None
    number = requested_number(adapter.checkpoint_of(manager).save_counter, checkpoint_number)
    if number is None:
        return None
    return SaveJob(manager, number, retry, existing, known)


def save_retrying(job: SaveJob, save: Callable[[Any], str | None], options: Any) -> str | None:
    """Run TensorFlow's `save` (called with the options to use) as the module docstring says.

    Eager, synchronous saves only (the caller checks); `save` is TensorFlow's
    ``CheckpointManager.save`` with everything but its options bound.

    Raises:
        SaveError: A transient error after the last try (cause ``storage_unavailable``) or a
            full disk (``disk_full``); the directory and the manager are as they were.
    """
    manager = job.manager
    counter = adapter.checkpoint_of(manager).save_counter
    count = int(counter.numpy()) if job.count is None else job.count
    state = adapter.save_state(manager)
    prefix = f"{adapter.checkpoint_prefix(manager)}-{job.number}"
    directory = fs.dirname(prefix)
    tries = 1
    while True:
        before = snapshot(prefix, job.existing, job.number, job.known)
        written: list[str] = []
        try:
            return save(adapter.with_write_callback(options, written.append))
        except _IO as exc:
            cause = cause_of(exc, Cause.UNKNOWN)
            if cause not in HANDLED:
                raise
            error: BaseException = exc
        if written:  # the files are complete: only the recording failed
            error, last, tries = _record_again(job, error, cause, tries)
            if last is None:
                return written[0]
            cause = last
            if _names_checkpoint(directory, written[0]) is not False:
                raise _failure(cause, error, prefix, tries, True, []) from error
        failed = remove_attempt(before)
        counter.assign(count)
        adapter.put_save_state(manager, state)
        wait = job.retry.delay(tries) if job.retry and cause is Cause.STORAGE_UNAVAILABLE else None
        if wait is None:
            if cause is Cause.DISK_FULL:
                needed = _newest_size(directory, state[1])
                diagnosis = disk_full_diagnosis(directory, prefix, needed, error)
                if failed:
                    diagnosis = _with_evidence(diagnosis, "Could not remove: " + "; ".join(failed))
                raise SaveError(f"Nothing was saved: {diagnosis}", diagnosis) from error
            raise _failure(cause, error, prefix, tries, False, failed) from error
        logger.warning(
            "Saving %s failed (%s: %s); removed what it wrote, trying again in %.1f s "
            "(try %d of %d).",
            prefix,
            cause.value,
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
            wait,
            tries + 1,
            job.retry.attempts if job.retry else 1,
        )
        time.sleep(wait)
        tries += 1


def _record_again(
    job: SaveJob, error: BaseException, cause: Cause, tries: int
) -> tuple[BaseException, Cause | None, int]:
    """Record a complete checkpoint again (state file, sweep, state file) while it fails.

    Returns the last error and its cause (None once recorded), and the tries made so far.
    """
    while True:
        wait = job.retry.delay(tries) if job.retry and cause is Cause.STORAGE_UNAVAILABLE else None
        if wait is None:
            return error, cause, tries
        logger.warning(
            "Recording the saved checkpoint failed (%s); trying again in %.1f s.", error, wait
        )
        time.sleep(wait)
        tries += 1
        try:
            adapter.record_and_sweep(job.manager)
        except _IO as exc:
            error, found = exc, cause_of(exc, Cause.UNKNOWN)
            if found not in HANDLED:
                return error, found, tries
            cause = found
        else:
            return error, None, tries
