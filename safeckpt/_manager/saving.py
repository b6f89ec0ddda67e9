"""What a save must do before TensorFlow writes: the lease, the number, refusing a doomed save."""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable
from typing import Any

from safeckpt._catalog.inventory import scan
from safeckpt._catalog.lease import Verdict, WriterLease
from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis
from safeckpt._errors import ReadOnlyError, SaveError
from safeckpt._format.layout import STATE_FILE, TEMP_SUFFIX
from safeckpt._io import fs, safeio
from safeckpt._io.tf import tf
from safeckpt._multiworker.context import (
    WorkerContext,
    make_write_directory,
    remove_write_directory,
)

logger = logging.getLogger("safeckpt")


def requested_number(counter: Any, checkpoint_number: Any) -> int | None:
    """The number TensorFlow will give the save (``save_counter + 1`` unless explicit).

    None when it cannot be read (call it in eager mode only).
    """
    try:
        if checkpoint_number is None:
            return int(counter.numpy()) + 1
        return int(getattr(checkpoint_number, "numpy", lambda: checkpoint_number)())
    except (TypeError, ValueError, AttributeError):
        return None


def expected_prefix(checkpoint: Any, prefix: str, checkpoint_number: Any) -> str | None:
    """The prefix TensorFlow's save is about to write (eager mode; else None).

    Call it after `prepare_save`, which may have raised the counter.
    """
    if not tf.executing_eagerly():
        return None
    number = requested_number(checkpoint.save_counter, checkpoint_number)
    return None if number is None else f"{prefix}-{number}"


def renumber_above(
    prefix: str, number: int | None, explicit: bool, existing: frozenset[int]
) -> int | None:
    """The step TensorFlow's counter must be raised to so that no save writes over files.

    Returns None when the save may go ahead as numbered: its number names no existing
    checkpoint, or the user asked for it explicitly (honoured, with a warning).
    """
    if number is None or number not in existing:
        return None
    if explicit:
        logger.warning(
            "save(checkpoint_number=%d) writes over the existing %s-%d, as asked.",
            number,
            prefix,
            number,
        )
        return None
    highest = max(existing)
    logger.warning(
        "The next save would write over the existing %s-%d; numbering it %d instead "
        "(above the highest existing step).",
        prefix,
        number,
        highest + 1,
    )
    return highest


def raise_counter(counter: Any, step: int) -> None:
    """Raise ``save_counter`` to `step` (never lower it), eagerly or in the default session."""
    if tf.executing_eagerly():
        if step > int(counter.numpy()):
            counter.assign(step)
        return
    session = tf.compat.v1.get_default_session()  # graph mode (tf.compat.v1)
    if session is not None and step > int(session.run(counter)):
        session.run(counter.assign(step))


def special_state(directory: str) -> str | None:
    """What the state file is when it is a FIFO, socket or device (logged), else None.

    TensorFlow's constructor must not read it: it would block on a FIFO, read a device for
    ever (see `safeckpt._io.tf.init_manager`).
    """
    kind = safeio.special_kind(fs.join(directory, STATE_FILE))
    if kind is not None:
        logger.warning(
            "The checkpoint state file in %s is %s; TensorFlow is not let read it. "
            "restore() works; save() raises SaveError.",
            directory,
            kind,
        )
    return kind


def refuse_if_state_unwritable(directory: str) -> bool:
    """Raise `SaveError` when the state file is a directory, FIFO, socket or device.

    False once it no longer is. TensorFlow would write the checkpoint's files and then fail
    to record them over a directory (a bare ``FailedPreconditionError``), leaving an
    unlisted checkpoint behind, or replace a FIFO or device it was not asked to delete.
    """
    state = fs.join(directory, STATE_FILE)
    kind = "a directory" if fs.isdir(state) else safeio.special_kind(state)
    if kind is None:
        return False
    diagnosis = Diagnosis(
        Cause.NOT_A_DIRECTORY if kind == "a directory" else Cause.NOT_A_REGULAR_FILE,
        f"The state file {state} is {kind}, so no save could be recorded.",
        directory,
        evidence=(f"{state} is {kind} (TensorFlow writes its checkpoint list there).",),
        suggestions=(
            f"Move {state} elsewhere; the checkpoints next to it stay usable, "
            "and restore() works meanwhile.",
        ),
    )
    raise SaveError(f"Nothing was saved: {diagnosis}", diagnosis)


def refuse_unusable_temp(checkpoint: Any, prefix: str, checkpoint_number: Any) -> None:
    """Raise `SaveError` when the save's ``<prefix>-<N>_temp`` is there but no real directory.

    TensorFlow writes the save's parts into that directory: through a symbolic link it
    would write outside the checkpoint directory, and into a file, FIFO or socket it fails
    (a bare ``FailedPreconditionError``). A real directory (left by an interrupted save) is
    TensorFlow's to reuse. Only in eager mode, where the number is known.
    """
    if not tf.executing_eagerly():
        return
    number = requested_number(checkpoint.save_counter, checkpoint_number)
    temp = f"{prefix}-{number}{TEMP_SUFFIX}"
    kind = None if number is None else safeio.entry_kind(temp)
    if kind in (None, "a directory"):
        return
    diagnosis = Diagnosis(
        Cause.NOT_A_DIRECTORY,
        f"{fs.basename(temp)} is {kind}, where TensorFlow writes the parts of this save.",
        fs.dirname(prefix),
        evidence=(f"{temp} is {kind}, not a directory.",),
        suggestions=(f"Remove {temp} (a leftover); then save again.",),
    )
    raise SaveError(f"Nothing was saved: {diagnosis}", diagnosis)


def _undecodable(prefix: str, number: int) -> str | None:
    r"""A name TensorFlow's save of `number` fails on, shown escaped, or None.

    After writing, TensorFlow sums the sizes of ``glob("<prefix>-<N>*")`` through its C++
    API, which takes only UTF-8 names: a stray ``ckpt-4\xe9.txt`` makes the save of
    ``ckpt-4`` raise a bare `TypeError` before the state file is written.
    """
    local = fs.local_path(prefix)
    if local is None:  # object stores: names are UTF-8
        return None
    for name in glob.glob(glob.escape(f"{local}-{number}") + "*"):
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return fs.escaped(name)
    return None


def avoid_undecodable_names(
    checkpoint: Any, prefix: str, checkpoint_number: Any, existing: frozenset[int]
) -> None:
    """Number the save past the steps whose files' names TensorFlow's save fails on.

    Never onto an `existing` step.

    Raises:
        SaveError: An explicit `checkpoint_number` names such a step (nothing written).
    """
    if not tf.executing_eagerly():
        return
    counter = checkpoint.save_counter
    number = requested_number(counter, checkpoint_number)
    found = None if number is None else _undecodable(prefix, number)
    if number is None or found is None:
        return
    if checkpoint_number is not None:
        diagnosis = Diagnosis(
            Cause.UNKNOWN,
            f"{found} is not UTF-8: TensorFlow's save of {fs.basename(prefix)}-{number} fails "
            "on it after writing.",
            fs.dirname(prefix),
            evidence=(f"{found}: the name is not valid UTF-8.",),
            suggestions=(f"Rename or remove {found}, or save under another number.",),
        )
        raise SaveError(f"Nothing was saved: {diagnosis}", diagnosis)
    skip = number
    while skip in existing or _undecodable(prefix, skip) is not None:  # each has its files
        skip += 1
    logger.warning(
        "%s is not UTF-8, and TensorFlow's save of %s-%d would fail on it; numbering the save "
        "%d instead.",
        found,
        prefix,
        number,
        skip,
    )
    raise_counter(counter, skip - 1)


def avoid_overwrite(
    checkpoint: Any, prefix: str, checkpoint_number: Any, existing: frozenset[int]
) -> None:
    """Before a save: raise ``save_counter`` when TensorFlow's number names existing files.

    Only in eager mode: reading ``save_counter`` in graph mode would create it in the graph.
    """
    if not tf.executing_eagerly():
        return
    counter = checkpoint.save_counter
    number = requested_number(counter, checkpoint_number)
    above = renumber_above(prefix, number, checkpoint_number is not None, existing)
    if above is not None:
        raise_counter(counter, above)


def read_only_error(directory: str) -> ReadOnlyError:
    """The error of `save()` on a manager constructed with ``read_only=True``."""
    return ReadOnlyError(
        f"This SafeCheckpointManager for {directory} was created with read_only=True, so "
        "save() writes nothing. Create it with read_only=False to save checkpoints."
    )


def prepare_save(
    checkpoint: Any,
    prefix: str,
    checkpoint_number: Any,
    existing: frozenset[int],
    lease: WriterLease | None,
    *,
    chief: bool,
) -> frozenset[int]:
    """What a save does before TensorFlow writes: the lease, the number, the checks.

    Judges the writer lease (raising `ConcurrentWriterError` for another live writer), and
    after taking one over lists the directory again: the other writer may have saved since
    this manager listed it. Then raises ``save_counter`` over existing files
    (`avoid_overwrite`) and past steps whose files' names TensorFlow's save fails on, checks
    that the chief's ``<prefix>-<N>_temp`` is a real directory if it is there, and last writes
    the lease with the step about to be saved.

    Returns:
        The steps whose files exist, as now known.

    Raises:
        ConcurrentWriterError: Another live writer holds the lease.
        SaveError: The chief's ``<prefix>-<N>_temp`` is there but no real directory, or an
            explicit `checkpoint_number` names files TensorFlow's save fails on.
    """
    decision = lease.check() if lease is not None else None
    if decision is not None and decision.verdict is Verdict.TAKE_OVER:
        name = fs.basename(prefix)
        existing = existing | scan(fs.dirname(prefix)).existing_steps(name)
    if existing:
        avoid_overwrite(checkpoint, prefix, checkpoint_number, existing)
    if chief:
        avoid_undecodable_names(checkpoint, prefix, checkpoint_number, existing)
        refuse_unusable_temp(checkpoint, prefix, checkpoint_number)
    if lease is not None and decision is not None:
        number = None
        if tf.executing_eagerly():
            number = requested_number(checkpoint.save_counter, checkpoint_number)
        lease.write(decision, number)
    return existing


def save_as_worker(
    directory: str,
    context: WorkerContext,
    save: Callable[[], str | None],
    sync: Callable[[], None],
    relocate: Callable[[str], None],
) -> str | None:
    """Save as a non-chief worker: into its workertemp directory, then delete that.

    TensorFlow's save (`save`) runs unchanged, with its collectives, on the manager's own
    state moved into the temporary directory (`relocate`, the manager's: only
    `SafeCheckpointManager` changes its state): its sweep can only delete files there. The
    state is moved back afterwards, so `checkpoints` and `latest_checkpoint` name the chief's
    files, as on the chief. `directory` is the manager's (normalized) one; `sync` waits for
    an asynchronous save to finish in there.
    """
    temp = make_write_directory(directory, context)
    relocate(temp)
    try:
        result = save()
    finally:
        try:
            sync()
        finally:
            relocate(directory)
            remove_write_directory(directory, context)
    return None if result is None else fs.join(directory, fs.basename(result))
