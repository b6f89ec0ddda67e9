"""Verification of one checkpoint: quick (index, shard sizes, object graph) or deep (CRC32Cs)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

from safeckpt._causes import Cause
from safeckpt._diagnosis import MAX_EVIDENCE, Diagnosis, capped, describe_exception, human_size
from safeckpt._format import dtypes
from safeckpt._format.graph import (
    CheckpointGraph,
    ObjectGraphError,
    graph_entry,
    parse_object_graph,
    read_checkpoint_graph,
)
from safeckpt._format.index import BundleIndex, IndexFormatError, read_index
from safeckpt._format.layout import INDEX_SUFFIX, data_shard, shard_path
from safeckpt._format.shards import DataProblemKind, read_string_scalar, verify_data
from safeckpt._format.sniff import sniff
from safeckpt._io import fs, safeio
from safeckpt._io.errors import io_errors, not_found, out_of_range
from safeckpt._io.tf import tf
from safeckpt._io.translate import cause_of

Progress = Callable[[int, int], None]

#: Order in which problems of one checkpoint are reported (the first is the cause).
_SEVERITY = (
    Cause.PERMISSION_DENIED,
    Cause.STORAGE_UNAVAILABLE,
    Cause.NOT_A_REGULAR_FILE,
    Cause.MISSING_DATA_SHARD,
    Cause.TRUNCATED_DATA,
    Cause.CORRUPT_DATA,
    Cause.OBJECT_GRAPH_CORRUPT,
)

_DATA_KINDS: dict[DataProblemKind, Cause] = {
    "missing_shard": Cause.MISSING_DATA_SHARD,
    "truncated": Cause.TRUNCATED_DATA,
    "checksum_mismatch": Cause.CORRUPT_DATA,
    "unreadable": Cause.PERMISSION_DENIED,
    "unavailable": Cause.STORAGE_UNAVAILABLE,
    "not_a_regular_file": Cause.NOT_A_REGULAR_FILE,
}

#: Up to this many declared shards are stat'ed one by one; above it, the directory's listing
#: says which exist, so an index declaring a million shards costs one listing, not a million
#: stats (`num_shards` is only a number in the index).
_STAT_EACH = 64


def _is_directory(path: str) -> bool:
    try:
        local = fs.local_path(path)
        return os.path.isdir(local) if local is not None else bool(tf.io.gfile.isdir(path))
    except io_errors():
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
    failed. Locally only a regular file is opened (`safeckpt._io.safeio`).
    """
    try:
        with safeio.open_read(path) as handle:
            if need > 1:
                handle.seek(need - 1)
            return len(handle.read(1)) == 1 or need == 0
    except out_of_range():
        return False
    except io_errors() as exc:
        return exc


def _absent(path: str, missing: str = "does not exist") -> str:
    """Why nothing can be read at `path`: it is `missing`, or a link that leads nowhere."""
    if safeio.entry_kind(path) == "a symbolic link":
        return f"{path} is a symbolic link that leads nowhere (dangling or a loop)"
    return f"{path} {missing}"


class _Findings:
    """Problems by cause, at most `MAX_EVIDENCE` lines each (the rest counted)."""

    def __init__(self) -> None:
        self.lines: dict[Cause, list[str]] = {}
        self.more: dict[Cause, int] = {}

    def add(self, cause: Cause, line: str) -> None:
        lines = self.lines.setdefault(cause, [])
        if len(lines) < MAX_EVIDENCE:
            lines.append(line)
        else:
            self.more[cause] = self.more.get(cause, 0) + 1

    def add_many(self, cause: Cause, lines: list[str], count: int) -> None:
        """A few `lines` standing for `count` problems (the others only counted)."""
        for line in lines:
            self.add(cause, line)
        self.more[cause] = self.more.get(cause, 0) + count - len(lines)

    def evidence(self) -> list[str]:
        out: list[str] = []
        for cause in _SEVERITY:
            if cause in self.lines:
                lines = self.lines[cause]
                out += capped(iter(lines), len(lines) + self.more.get(cause, 0))
        return out


def _listed_shards(prefix: str, count: int) -> set[int]:
    """Shard numbers of `prefix` (declaring `count` shards) that the directory's listing holds.

    Raises:
        tf.errors.OpError, OSError: The directory could not be listed.
    """
    base = fs.basename(prefix)
    found = set()
    for name in fs.listdir(fs.dirname(prefix)):
        shard = data_shard(name)
        if shard is not None and shard[0] == base and shard[2] == count and shard[1] < count:
            found.add(shard[1])
    return found


def _check_shards(prefix: str, index: BundleIndex, findings: _Findings, notes: list[str]) -> None:
    """Every data shard the index declares exists, is a regular file and is long enough."""
    count = index.num_shards
    needs = index.shard_needs()
    if count <= _STAT_EACH:
        shards: list[int] = list(range(count))
    else:
        try:
            listed = _listed_shards(prefix, count)
        except io_errors() as exc:
            findings.add(_storage_cause(exc), f"{fs.dirname(prefix)}: {describe_exception(exc)}")
            return
        absent = (k for k in range(count) if k not in listed)
        findings.add_many(
            Cause.MISSING_DATA_SHARD,
            [
                f"{shard_path(prefix, k, count)} is missing (shard {k + 1} of {count}, the "
                f"index needs {needs.get(k, 0)} bytes of it)."
                for k in itertools.islice(absent, MAX_EVIDENCE)
            ],
            count - len(listed),
        )
        shards = sorted(listed)
    local = fs.local_path(prefix) is not None
    for shard in shards:
        need = needs.get(shard, 0)
        path = shard_path(prefix, shard, count)
        try:
            size = safeio.regular_size(path)
        except not_found():
            findings.add(
                Cause.MISSING_DATA_SHARD,
                f"{_absent(path, 'is missing')} (shard {shard + 1} of {count}, the index "
                f"needs {need} bytes of it).",
            )
            continue
        except IsADirectoryError:
            findings.add(
                Cause.MISSING_DATA_SHARD,
                f"{path} is a directory, not a data file (shard {shard + 1} of {count}).",
            )
            continue
        except safeio.NotRegularFileError as exc:
            findings.add(
                Cause.NOT_A_REGULAR_FILE,
                f"{path} is {exc.kind}, not a regular file (shard {shard + 1} of {count}).",
            )
            continue
        except io_errors() as exc:
            findings.add(_storage_cause(exc), f"{path}: {describe_exception(exc)}")
            continue
        truncated = (
            f"{path} is {size} bytes but the index needs at least {need}"
            if local and need > size  # a fresh local size: no read past the end
            else None
        )
        reached = False if truncated else _last_byte(path, need)
        if isinstance(reached, BaseException):
            findings.add(_storage_cause(reached), f"{path}: {describe_exception(reached)}")
        elif not reached:
            findings.add(
                Cause.TRUNCATED_DATA,
                (truncated or f"{path} is {size} bytes but the index needs at least {need} "
                 f"(reading byte {need - 1} found the end of the file)") + ".",
            )  # fmt: skip
        elif size < need:  # the byte is there: the size was stale (a cache), not the file
            notes.append(f"{path}: its size said {size} bytes, but byte {need - 1} reads.")
        elif size > need:
            notes.append(f"{path} has {size - need} bytes more than the index describes.")


def _check_object_graph(prefix: str, index: BundleIndex, findings: _Findings) -> None:
    """The object graph (the one tensor a restore reads first) is intact and decodes."""
    entry = graph_entry(index)
    if entry is None:
        return
    path = shard_path(prefix, entry.shard_id, index.num_shards)
    try:
        if entry.dtype != dtypes.STRING or entry.is_slice_container:
            raise ObjectGraphError(f"{entry.name} is not a string tensor (dtype {entry.dtype})")
        parse_object_graph(index, entry, read_string_scalar(prefix, index, entry))
    except ObjectGraphError as exc:
        findings.add(Cause.OBJECT_GRAPH_CORRUPT, f"{path}: {exc}.")
    except EOFError as exc:
        findings.add(Cause.TRUNCATED_DATA, f"{path}: the object graph: {exc}.")
    except ValueError as exc:
        findings.add(Cause.CORRUPT_DATA, f"{path}: tensor {entry.name!r}: {exc}.")
    except not_found():
        findings.add(Cause.MISSING_DATA_SHARD, f"{path} is missing (it holds the object graph).")
    except safeio.NotRegularFileError as exc:
        findings.add(Cause.NOT_A_REGULAR_FILE, f"{path} is {exc.kind}, not a regular file.")
    except io_errors() as exc:
        findings.add(_storage_cause(exc), f"{path}: {describe_exception(exc)}")


def check_prefix(prefix: str, *, deep: bool = False, progress: Progress | None = None) -> Diagnosis:
    """Verify the checkpoint at a normalized `prefix` whose ``.index`` file is expected.

    Quick: the index (every block's CRC32C, every value possible), every data shard it
    declares (a regular file, long enough), and the object graph (its CRC32C, and that it
    decodes). Deep: also every tensor's CRC32C.

    Returns a diagnosis without candidates or suggestions about other checkpoints (see
    `verify` for the complete one). The prefix must name an index file that exists;
    otherwise the cause is `Cause.MISSING_INDEX`.
    """
    directory = fs.dirname(prefix)
    base = fs.basename(prefix)
    index_path = prefix + INDEX_SUFFIX

    def result(
        cause: Cause, summary: str, evidence: list[str], error: str | None = None
    ) -> Diagnosis:
        return Diagnosis(cause, summary, directory, prefix, tuple(evidence), (), (), error)

    try:
        index = read_index(index_path)
    except not_found():
        return result(
            Cause.MISSING_INDEX, f"{base} has no index file.", [_absent(index_path) + "."]
        )
    except IndexFormatError as exc:
        if exc.reason == "unreadable" and _is_directory(index_path):
            return result(
                Cause.MISSING_INDEX,
                f"{base}.index is a directory, not an index file.",
                [f"{index_path} is a directory."],
                str(exc),
            )
        if exc.reason == "not_a_regular_file":
            return result(
                Cause.NOT_A_REGULAR_FILE,
                f"{base}.index is not a regular file.",
                [f"{index_path}: {exc.detail}, not a regular file."],
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
    findings = _Findings()
    evidence: list[str] = []
    _check_shards(prefix, index, findings, evidence)
    if not findings.lines:
        _check_object_graph(prefix, index, findings)
    if deep and not findings.lines:
        for bad in verify_data(prefix, index, progress=progress):
            findings.add(
                _DATA_KINDS[bad.kind], f"{bad.shard_file}: tensor {bad.key_name!r}: {bad.detail}"
            )
    if findings.lines:
        cause = next(c for c in _SEVERITY if c in findings.lines)
        summaries = {
            Cause.PERMISSION_DENIED: f"Files of {base} cannot be read.",
            Cause.STORAGE_UNAVAILABLE: f"Files of {base} could not be read from the storage.",
            Cause.NOT_A_REGULAR_FILE: f"A file of {base} is not a regular file.",
            Cause.MISSING_DATA_SHARD: f"{base} is incomplete: a data shard is missing.",
            Cause.TRUNCATED_DATA: f"{base} is truncated: a data shard is shorter than needed.",
            Cause.CORRUPT_DATA: f"{base} is corrupt: tensor checksums do not match.",
            Cause.OBJECT_GRAPH_CORRUPT: f"{base} has an object graph that does not decode.",
        }
        return result(cause, summaries[cause], findings.evidence() + evidence)
    total = sum(index.shard_needs().values())
    tensors = sum(1 for e in index.entries if not e.is_slice_container)
    level = "deep check: every tensor's CRC32C matches" if deep else "quick check"
    summary = (
        f"{base} is complete: {tensors} tensors, {human_size(total)} in "
        f"{index.num_shards} shard{'s' if index.num_shards != 1 else ''} ({level})."
    )
    if graph_entry(index) is None:
        evidence.append(
            f"{index_path} has no object graph: a TF1 name-based checkpoint "
            "(tf.train.Checkpoint restores it by variable names only)."
        )
    return result(Cause.HEALTHY, summary, evidence)


#: What `read_checkpoint_graph` raises for a checkpoint it cannot read.
def graph_errors() -> tuple[type[BaseException], ...]:
    """What reading a checkpoint's object graph raises (TensorFlow's errors once imported)."""
    return (IndexFormatError, ValueError, EOFError, *io_errors())


def graph_or_diagnosis(prefix: str) -> CheckpointGraph | Diagnosis:
    """The checkpoint's values and object graph, or the diagnosis of why they cannot be read.

    Read by safeckpt's own parser only: nothing safeckpt's verification rejects reaches
    TensorFlow's reader. The diagnosis is a quick `check_prefix`'s (the object graph is part
    of it). When that passes, the graph's paths were too long (`object_graph_corrupt`), or
    the storage failed once.
    """
    try:
        return read_checkpoint_graph(prefix)
    except graph_errors() as exc:
        found = check_prefix(prefix)
        if not found.ok:
            return found
        broken = isinstance(exc, ObjectGraphError)
        return Diagnosis(
            Cause.OBJECT_GRAPH_CORRUPT if broken else _storage_cause(exc),
            f"The object graph of {fs.basename(prefix)} could not be read.",
            fs.dirname(prefix),
            prefix,
            (f"{prefix}: {describe_exception(exc)}",)
            + (() if broken else ("It verifies now: the storage failed once.",)),
            error=describe_exception(exc),
        )
