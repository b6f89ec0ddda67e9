"""`diagnose`: the single most likely cause of a checkpoint problem, with evidence and fixes."""

from __future__ import annotations

from dataclasses import replace

from safeckpt._catalog.directory import describe_missing
from safeckpt._catalog.inventory import Inventory, scan
from safeckpt._causes import Cause
from safeckpt._diagnose.alternatives import with_alternatives
from safeckpt._diagnose.directory import diagnose_directory, unavailable
from safeckpt._diagnose.metadata import metadata_evidence
from safeckpt._diagnose.names import describe_files, name_mismatch, step_not_found
from safeckpt._diagnosis import Diagnosis, describe_exception
from safeckpt._errorbase import CheckpointDirectoryError
from safeckpt._format.layout import INDEX_SUFFIX, STATE_FILE, split_step, strip_file_suffix
from safeckpt._format.sniff import sniff
from safeckpt._format.verify import Progress, check_prefix
from safeckpt._info import CheckpointInfo
from safeckpt._io import fs, paths, safeio
from safeckpt._io.errors import io_errors
from safeckpt._public import public


@public
def diagnose(path: object, *, checkpoint_name: str | None = None, deep: bool = False) -> Diagnosis:
    """Diagnose a checkpoint location: a directory, a prefix, or any file a user might pass.

    Never raises for an unhealthy location: every problem becomes a `Diagnosis` whose
    ``cause`` is the one to fix first, with the rest in ``evidence``.

    Args:
        path: A checkpoint directory, a checkpoint prefix (``.../ckpt-3``), a checkpoint file
            (``.index``, ``.data-…``, the ``checkpoint`` state file), or anything else.
        checkpoint_name: The checkpoint name the caller expects (``"ckpt"`` for TF's default);
            by default the name the directory uses.
        deep: Verify the newest checkpoint's tensor checksums too.

    Raises:
        TypeError: `path` is not a str or os.PathLike.
    """
    try:
        resolved = paths.normalize_directory(path, "path")
    except CheckpointDirectoryError as exc:
        return _error_diagnosis(exc)
    try:
        exists = fs.exists(resolved)
        is_dir = exists and fs.isdir(resolved)
    except io_errors() as exc:
        return unavailable(resolved, exc)
    if not exists:
        refused = fs.access_error(resolved)
        if refused is not None:
            return _refused(resolved, refused)
    if is_dir:
        return diagnose_directory(resolved, checkpoint_name=checkpoint_name, deep=deep)
    try:
        if fs.exists(resolved + INDEX_SUFFIX):
            return _prefix(resolved, deep)
    except io_errors() as exc:
        return unavailable(resolved, exc)
    if exists:
        return _file(resolved)
    return _missing(resolved, checkpoint_name, deep)


def _refused(path: str, exc: PermissionError) -> Diagnosis:
    directory = fs.dirname(path)
    return Diagnosis(
        Cause.PERMISSION_DENIED,
        "This path cannot be looked up: a directory on the way may not be searched.",
        directory,
        None,
        (f"{path}: {describe_exception(exc)}",),
        (f"Check the permissions of its directories (they need x): ls -ld {directory!r}.",),
        error=describe_exception(exc),
    )


def _prefix(prefix: str, deep: bool) -> Diagnosis:
    result = check_prefix(prefix, deep=deep)
    more = metadata_evidence(prefix)  # who wrote it, its metrics (never a cause)
    result = replace(result, evidence=(*result.evidence, *more)) if more else result
    return result if result.ok else with_alternatives(result, prefix)


def _file(path: str) -> Diagnosis:
    directory, base = fs.dirname(path), fs.basename(path)
    special = safeio.special_kind(path)
    if special is not None:  # never opened: a FIFO would block, a device never end
        return Diagnosis(
            Cause.NOT_A_REGULAR_FILE,
            f"{base} is {special}, not a checkpoint file.",
            directory,
            None,
            (f"{path} is {special}.",),
            ("Pass a checkpoint directory or prefix.",),
        )
    if base == STATE_FILE:
        inventory = _scan_or_none(directory)
        latest = inventory.state_latest() if inventory else None
        target = latest.prefix if latest and latest.prefix else None
        evidence = [f"{path} is TensorFlow's text state file, which lists checkpoint prefixes."]
        suggestions = [f"Pass the checkpoint directory {directory!r} to SafeCheckpointManager."]
        if target:
            evidence.append(f"It names {target} as the latest checkpoint.")
            suggestions.insert(0, f"Restore the prefix it names: checkpoint.restore({target!r}).")
        return Diagnosis(
            Cause.FILE_NOT_PREFIX,
            f"{base} is the state file, not a checkpoint.",
            directory,
            target,
            tuple(evidence),
            tuple(suggestions),
        )
    prefix = strip_file_suffix(path)
    if prefix is not None:
        state = check_prefix(prefix)
        return Diagnosis(
            Cause.FILE_NOT_PREFIX,
            f"{base} is one of a checkpoint's files; TensorFlow expects the prefix.",
            directory,
            prefix,
            (
                f"{path} belongs to the checkpoint prefix {prefix}.",
                f"That checkpoint: {state.summary}",
            ),
            (f"Pass the prefix without the file suffix: {prefix!r}.",),
        )
    foreign = sniff(path)
    what, todo = foreign or (
        "not a TensorFlow checkpoint (no <prefix>.index next to it)",
        "pass the checkpoint prefix (the path without .index / .data-…), or its directory",
    )
    return Diagnosis(
        Cause.FOREIGN_FORMAT,
        f"{base} is {what}.",
        directory,
        None,
        (f"{path} is {what}.",),
        (todo[0].upper() + todo[1:] + ".",),
    )


def listed_problem(inventory: Inventory, info: CheckpointInfo) -> Diagnosis:
    """The diagnosis of a checkpoint the listing already shows incomplete (no file is read)."""
    base = info.basename
    cause = info.problems[0]
    what = {
        Cause.INCOMPLETE_SAVE: f"{base} is an interrupted save that never completed.",
        Cause.MISSING_INDEX: f"{base} has data files but no index file.",
        Cause.STATE_FILE_STALE: f"{base} is listed in the state file but its files are gone.",
    }.get(cause, f"{base} is damaged.")
    return Diagnosis(cause, what, inventory.directory, info.prefix, describe_files(inventory, info))


def _scan_or_none(directory: str) -> Inventory | None:
    try:
        return scan(directory)
    except io_errors():
        return None


def _missing(path: str, checkpoint_name: str | None, deep: bool) -> Diagnosis:
    directory, base = fs.dirname(path), fs.basename(path)
    try:
        parent_ok = fs.isdir(directory)
    except io_errors() as exc:
        return unavailable(path, exc)
    if not parent_ok:
        evidence, suggestions = describe_missing(path)
        return Diagnosis(
            Cause.DIRECTORY_MISSING,
            "Neither this path nor its directory exists.",
            path,
            None,
            tuple(evidence),
            tuple(suggestions),
        )
    inventory = _scan_or_none(directory)
    if inventory is None:
        return diagnose_directory(directory, checkpoint_name=checkpoint_name, deep=deep)
    name, step = split_step(base)
    mine = next((c for c in inventory.checkpoints if c.prefix == path), None)
    if mine is not None and mine.problems:
        return with_alternatives(listed_problem(inventory, mine), path)
    family = [c for c in inventory.family(name) if c.complete]
    if family:
        return step_not_found(inventory, path, name, step, family)
    others = inventory.names()
    if others:
        return name_mismatch(inventory, name, step, others, path)
    if step is None:
        # Not a checkpoint prefix: a directory that does not exist (often a typo).
        evidence, suggestions = describe_missing(path)
        return Diagnosis(
            Cause.DIRECTORY_MISSING,
            "This path does not exist.",
            path,
            None,
            tuple(evidence),
            tuple(suggestions),
        )
    result = diagnose_directory(directory, checkpoint_name=checkpoint_name, deep=deep)
    return replace(result, checkpoint=path, evidence=(f"{path} does not exist.", *result.evidence))


@public
def verify(prefix: object, *, deep: bool = False, progress: Progress | None = None) -> Diagnosis:
    """Verify one checkpoint without restoring it.

    Quick (default): parse ``<prefix>.index`` (checking its block checksums) and check that
    every data shard it needs exists, is readable and is at least as long as the index
    requires. Deep: additionally stream every tensor's bytes and compare their CRC32C with
    the index.

    Args:
        prefix: The checkpoint prefix, e.g. ``/runs/a/ckpt-3`` (or any path a user might
            pass; anything that is not a prefix gets a diagnosis saying what it is).
        deep: Also check every tensor's CRC32C.
        progress: Called with ``(bytes_done, bytes_total)`` during a deep check.

    Returns:
        A `Diagnosis`; ``diagnosis.ok`` is True when the checkpoint verified.
    """
    try:
        path = paths.normalize_directory(prefix, "prefix")
    except CheckpointDirectoryError as exc:
        return _error_diagnosis(exc)
    try:
        # An index that is a link leading nowhere is there too (checked: `missing_index`).
        has_index = safeio.lexists(path + INDEX_SUFFIX)
    except io_errors() as exc:
        return Diagnosis(
            Cause.STORAGE_UNAVAILABLE,
            "The storage could not be reached.",
            fs.dirname(path),
            path,
            (f"{path}.index: {describe_exception(exc)}",),
            error=describe_exception(exc),
        )
    if not has_index:
        return diagnose(path, deep=deep)
    diagnosis = check_prefix(path, deep=deep, progress=progress)
    if diagnosis.ok:
        return diagnosis
    return with_alternatives(diagnosis, path)


def _error_diagnosis(exc: CheckpointDirectoryError) -> Diagnosis:
    if exc.diagnosis is not None:
        return exc.diagnosis
    return Diagnosis(Cause.UNKNOWN, str(exc).splitlines()[0], exc.directory)  # pragma: no cover
