"""Verification of one checkpoint: quick (index and shard sizes) or deep (every CRC32C)."""

from __future__ import annotations

from collections.abc import Callable

from safeckpt import _fs
from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis, describe_exception
from safeckpt._index import IndexFormatError, read_index
from safeckpt._layout import INDEX_SUFFIX
from safeckpt._shards import DataProblemKind, verify_data
from safeckpt._sniff import sniff
from safeckpt._tf import tf
from safeckpt._translate import cause_of

Progress = Callable[[int, int], None]

#: Order in which problems of one checkpoint are reported (the first is the cause).
_SEVERITY = (
    Cause.PERMISSION_DENIED,
    Cause.STORAGE_UNAVAILABLE,
    Cause.MISSING_DATA_SHARD,
    Cause.TRUNCATED_DATA,
    Cause.CORRUPT_DATA,
)

_DATA_KINDS: dict[DataProblemKind, Cause] = {
    "missing_shard": Cause.MISSING_DATA_SHARD,
    "truncated": Cause.TRUNCATED_DATA,
    "checksum_mismatch": Cause.CORRUPT_DATA,
    "unreadable": Cause.PERMISSION_DENIED,
    "unavailable": Cause.STORAGE_UNAVAILABLE,
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


def _storage_cause(exc: BaseException) -> Cause:
    """A read error's cause: refused (`PERMISSION_DENIED`) or anything else the storage did."""
    denied = cause_of(exc) is Cause.PERMISSION_DENIED
    return Cause.PERMISSION_DENIED if denied else Cause.STORAGE_UNAVAILABLE


def _last_byte(path: str, need: int) -> bool | BaseException:
    """Read the last byte the index needs from `path` (the first when it needs none).

    Reading proves what a size cannot: the file is readable, and its bytes reach ``need``
    whatever a stale size says (TensorFlow's GCS client caches sizes for 5 seconds, so a file
    another writer replaced can show its old size). True when the byte is there, False when
    the file ends before it (proven by the storage's answer), the exception when reading
    failed.
    """
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            if need > 1:
                handle.seek(need - 1)
            return len(handle.read(1)) == 1 or need == 0
    except tf.errors.OutOfRangeError:
        return False
    except (tf.errors.OpError, OSError) as exc:
        return exc


def check_prefix(prefix: str, *, deep: bool = False, progress: Progress | None = None) -> Diagnosis:
    """Verify the checkpoint at a normalized `prefix` whose ``.index`` file is expected.

    Returns a diagnosis without candidates or suggestions about other checkpoints (see
    `verify` for the complete one). The prefix must name an index file that exists;
    otherwise the cause is `Cause.MISSING_INDEX`.
    """
    directory = _fs.dirname(prefix)
    base = _fs.basename(prefix)
    index_path = prefix + INDEX_SUFFIX

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
            cause = _storage_cause(exc)
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
            found.setdefault(_storage_cause(exc), []).append(f"{path}: {describe_exception(exc)}")
            continue
        if stat.is_directory:
            found.setdefault(Cause.MISSING_DATA_SHARD, []).append(
                f"{path} is a directory, not a data file (shard {shard + 1} of {index.num_shards})."
            )
            continue
        reached = _last_byte(path, need)
        if isinstance(reached, BaseException):
            found.setdefault(_storage_cause(reached), []).append(
                f"{path}: {describe_exception(reached)}"
            )
        elif not reached:
            found.setdefault(Cause.TRUNCATED_DATA, []).append(
                f"{path} is {size} bytes but the index needs at least {need} "
                f"(reading byte {need - 1} found the end of the file)."
            )
        elif size < need:  # the byte is there: the size was stale (a cache), not the file
            evidence.append(f"{path}: its size said {size} bytes, but byte {need - 1} reads.")
        elif size > need:
            evidence.append(f"{path} has {size - need} bytes more than the index describes.")
    if deep and not found:
        for bad in verify_data(prefix, index, progress=progress):
            found.setdefault(_DATA_KINDS[bad.kind], []).append(
                f"{bad.shard_file}: tensor {bad.key_name!r}: {bad.detail}"
            )
    if found:
        cause = next(c for c in _SEVERITY if c in found)
        summaries = {
            Cause.PERMISSION_DENIED: f"Files of {base} cannot be read.",
            Cause.STORAGE_UNAVAILABLE: f"Files of {base} could not be read from the storage.",
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
