"""Verification of one checkpoint: quick (index and shard sizes) or deep (every CRC32C)."""

from __future__ import annotations

from collections.abc import Callable

from safeckpt import _paths
from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis, describe_exception
from safeckpt._errors import CheckpointDirectoryError
from safeckpt._index import IndexFormatError, read_index, verify_data
from safeckpt._layout import split_step
from safeckpt._sniff import sniff
from safeckpt._tf import tf

Progress = Callable[[int, int], None]

#: Order in which problems of one checkpoint are reported (the first is the cause).
_SEVERITY = (
    Cause.PERMISSION_DENIED,
    Cause.STORAGE_UNAVAILABLE,
    Cause.CORRUPT_INDEX,
    Cause.FOREIGN_FORMAT,
    Cause.MISSING_DATA_SHARD,
    Cause.TRUNCATED_DATA,
    Cause.CORRUPT_DATA,
)

_DATA_KINDS = {
    "missing_shard": Cause.MISSING_DATA_SHARD,
    "truncated": Cause.TRUNCATED_DATA,
    "checksum_mismatch": Cause.CORRUPT_DATA,
    "unreadable": Cause.PERMISSION_DENIED,
}


def shard_path(prefix: str, shard: int, count: int) -> str:
    """``<prefix>.data-0000k-of-0000n``."""
    return f"{prefix}.data-{shard:05d}-of-{count:05d}"


def human_size(size: int) -> str:
    """``1234567`` gives ``"1.2 MB"`` (decimal units)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def _is_directory(path: str) -> bool:
    try:
        return bool(tf.io.gfile.isdir(path))
    except (tf.errors.OpError, OSError):
        return False


def _readable(path: str) -> str | None:
    """None when one byte of `path` can be read, else the error."""
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            handle.read(1)
    except (tf.errors.OpError, OSError) as exc:
        return describe_exception(exc)
    return None


def check_prefix(prefix: str, *, deep: bool = False, progress: Progress | None = None) -> Diagnosis:
    """Verify the checkpoint at a normalized `prefix` whose ``.index`` file is expected.

    Returns a diagnosis without candidates or suggestions about other checkpoints (see
    `verify` for the complete one). The prefix must name an index file that exists;
    otherwise the cause is `Cause.MISSING_INDEX`.
    """
    directory = _paths.dirname(prefix)
    base = _paths.basename(prefix)
    index_path = prefix + ".index"

    def result(
        cause: Cause, summary: str, evidence: list[str], error: str | None = None
    ) -> Diagnosis:
        return Diagnosis(cause, summary, directory, prefix, tuple(evidence), (), (), error)

    try:
        index = read_index(index_path)
    except tf.errors.NotFoundError:
        return result(
            Cause.MISSING_INDEX, f"{base} has no index file.", [f"{index_path} does not exist."]
        )
    except IndexFormatError as exc:
        if exc.reason == "unreadable" and _is_directory(index_path):
            return result(
                Cause.MISSING_INDEX,
                f"{base}.index is a directory, not an index file.",
                [f"{index_path} is a directory."],
                str(exc),
            )
        if exc.reason == "unreadable":
            cause = (
                Cause.PERMISSION_DENIED if "ermission" in str(exc) else Cause.STORAGE_UNAVAILABLE
            )
            return result(cause, f"The index of {base} cannot be read.", [str(exc)], str(exc))
        foreign = sniff(index_path)
        if foreign is not None:
            return result(
                Cause.FOREIGN_FORMAT,
                f"{base}.index is {foreign[0]}.",
                [f"{index_path} is {foreign[0]}."],
            )
        return result(
            Cause.CORRUPT_INDEX, f"The index of {base} is damaged ({exc.reason}).", [str(exc)]
        )
    found: dict[Cause, list[str]] = {}
    evidence: list[str] = []
    required = index.required_shard_sizes()
    for shard, need in sorted(required.items()):
        path = shard_path(prefix, shard, index.num_shards)
        try:
            stat = tf.io.gfile.stat(path)
            size = int(stat.length)
        except tf.errors.NotFoundError:
            found.setdefault(Cause.MISSING_DATA_SHARD, []).append(
                f"{path} is missing (shard {shard + 1} of {index.num_shards}, "
                f"the index needs {need} bytes of it)."
            )
            continue
        except (tf.errors.OpError, OSError) as exc:
            found.setdefault(Cause.PERMISSION_DENIED, []).append(
                f"{path}: {describe_exception(exc)}"
            )
            continue
        if stat.is_directory:
            found.setdefault(Cause.MISSING_DATA_SHARD, []).append(
                f"{path} is a directory, not a data file (shard {shard + 1} of {index.num_shards})."
            )
            continue
        if size < need:
            found.setdefault(Cause.TRUNCATED_DATA, []).append(
                f"{path} is {size} bytes but the index needs at least {need} "
                f"({need - size} bytes missing)."
            )
        elif size > need:
            evidence.append(f"{path} has {size - need} bytes more than the index describes.")
        if size >= need and (problem := _readable(path)) is not None:
            found.setdefault(Cause.PERMISSION_DENIED, []).append(f"{path}: {problem}")
    if deep and not found:
        for bad in verify_data(prefix, index, progress=progress):
            kind = _DATA_KINDS.get(bad.kind)
            if kind is None:
                evidence.append(f"{bad.shard_file}: {bad.key_name}: {bad.detail}")
                continue
            found.setdefault(kind, []).append(
                f"{bad.shard_file}: tensor {bad.key_name!r}: {bad.detail}"
            )
    if found:
        cause = next(c for c in _SEVERITY if c in found)
        summaries = {
            Cause.PERMISSION_DENIED: f"Files of {base} cannot be read.",
            Cause.MISSING_DATA_SHARD: f"{base} is incomplete: a data shard is missing.",
            Cause.TRUNCATED_DATA: f"{base} is truncated: a data shard is shorter than needed.",
            Cause.CORRUPT_DATA: f"{base} is corrupt: tensor checksums do not match.",
        }
        lines = [line for c in _SEVERITY if c in found for line in found[c]]
        return result(cause, summaries[cause], lines + evidence)
    total = sum(required.values())
    tensors = sum(1 for e in index.entries if not e.is_slice_container)
    level = "deep check: every tensor's CRC32C matches" if deep else "quick check"
    summary = (
        f"{base} is complete: {tensors} tensors, {human_size(total)} in "
        f"{index.num_shards} shard{'s' if index.num_shards != 1 else ''} ({level})."
    )
    if not any(e.key == b"_CHECKPOINTABLE_OBJECT_GRAPH" for e in index.entries):
        evidence.append(
            f"{index_path} has no object graph: a TF1 name-based checkpoint "
            "(tf.train.Checkpoint restores it by variable names only)."
        )
    return result(Cause.HEALTHY, summary, evidence)


def alternatives(prefix: str, limit: int = 3) -> list[str]:
    """Other checkpoints of the same name in the same directory that pass a quick check.

    Newest (highest step) first; used to suggest what to restore instead.
    """
    from safeckpt._inventory import scan

    directory = _paths.dirname(prefix)
    name, _step = split_step(_paths.basename(prefix))
    try:
        inventory = scan(directory)
    except (tf.errors.OpError, OSError):
        return []
    found: list[str] = []
    for info in reversed(inventory.family(name)):
        if info.prefix == prefix or not info.complete:
            continue
        if check_prefix(info.prefix).ok:
            found.append(info.prefix)
        if len(found) >= limit:
            break
    return found


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
        path = _paths.normalize_directory(prefix, "prefix")
    except CheckpointDirectoryError as exc:
        return _error_diagnosis(exc)
    try:
        has_index = tf.io.gfile.exists(path + ".index")
    except (tf.errors.OpError, OSError) as exc:
        return Diagnosis(
            Cause.STORAGE_UNAVAILABLE,
            "The storage could not be reached.",
            _paths.dirname(path),
            path,
            (f"{path}.index: {describe_exception(exc)}",),
            error=describe_exception(exc),
        )
    if not has_index:
        from safeckpt._diagnose import diagnose

        return diagnose(path, deep=deep)
    diagnosis = check_prefix(path, deep=deep, progress=progress)
    if diagnosis.ok:
        return diagnosis
    return with_alternatives(diagnosis, path)


def with_alternatives(diagnosis: Diagnosis, prefix: str) -> Diagnosis:
    """Add suggestions naming the checkpoints to use instead of a damaged `prefix`."""
    from dataclasses import replace

    others = alternatives(prefix)
    suggestions = list(diagnosis.suggestions)
    if others:
        suggestions.append(
            f"Restore the previous complete checkpoint instead: checkpoint.restore({others[0]!r})."
        )
    else:
        suggestions.append("No other complete checkpoint of this name exists in the directory.")
    suggestions.append(
        f"Keep the damaged files for inspection but out of the way: move {prefix}.* into "
        f"{_paths.join(_paths.dirname(prefix), 'quarantine')}/."
    )
    return replace(diagnosis, suggestions=tuple(suggestions))


def _error_diagnosis(exc: CheckpointDirectoryError) -> Diagnosis:
    if exc.diagnosis is not None:
        return exc.diagnosis
    return Diagnosis(Cause.UNKNOWN, str(exc).splitlines()[0], exc.directory)  # pragma: no cover
