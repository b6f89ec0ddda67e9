"""The checkpoint inventory of one directory: state file and listing, reconciled."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from safeckpt._causes import Cause
from safeckpt._format.index import FOOTER_SIZE, TABLE_MAGIC
from safeckpt._format.layout import (
    INDEX_SUFFIX,
    METADATA_SUFFIX,
    STATE_FILE,
    TEMP_SUFFIX,
    Listing,
    classify,
    split_step,
)
from safeckpt._format.metadata import read_metadata
from safeckpt._format.statefile import (
    Recorded,
    StateFile,
    read_state,
    resolve_recorded,
    snapshot_mtime,
)
from safeckpt._info import CheckpointInfo
from safeckpt._io import fs, paths, pool, safeio
from safeckpt._io.errors import NotFoundError, PermissionDeniedError, as_tensorflow, io_errors
from safeckpt._io.tf import tf
from safeckpt._public import public


@dataclass(frozen=True)
class Inventory:
    r"""Everything one listing and the state file say about a directory.

    Attributes:
        directory: The directory (absolute path or URI).
        state: The state file as read.
        checkpoints: Every checkpoint found, of every name, oldest to newest.
        recorded: Each path of the state file, resolved (see `resolve_recorded`).
        temp_dirs: ``<prefix>_temp`` directories left by interrupted saves.
        state_temps: ``checkpoint.tmp*`` files left by interrupted state writes.
        worker_temps: ``workertemp_*`` directories of multi-worker training.
        other: Names of entries that belong to no checkpoint.
        own: safeckpt's own ``.safeckpt-*`` files (writer leases and their temporaries).
        undecodable: Entry names that are not valid UTF-8, escaped (``caf\xe9.txt``): no
            checkpoint file can have one (TensorFlow cannot open it); reported, never fatal.
        orphan_metadata: Metadata files (``<base>.safeckpt.json``) whose checkpoint has no
            file left (a process killed between the rotation's delete of the checkpoint and
            of its metadata, or files removed by hand): never a checkpoint.
        metadata_temps: Temporaries of metadata writes a killed process never renamed.
    """

    directory: str
    state: StateFile
    checkpoints: tuple[CheckpointInfo, ...]
    recorded: tuple[Recorded, ...]
    temp_dirs: tuple[str, ...]
    state_temps: tuple[str, ...]
    worker_temps: tuple[str, ...]
    other: tuple[str, ...]
    own: tuple[str, ...] = ()
    undecodable: tuple[str, ...] = ()
    orphan_metadata: tuple[str, ...] = ()
    metadata_temps: tuple[str, ...] = ()
    _mtimes: dict[str, float | None] = field(default_factory=dict, compare=False, repr=False)
    _state_time: list[float | None] = field(default_factory=list, compare=False, repr=False)

    def family(self, name: str | None) -> list[CheckpointInfo]:
        """Checkpoints named `name` (all of them for None), oldest to newest."""
        return [c for c in self.checkpoints if name is None or c.name == name]

    def names(self) -> dict[str, int]:
        """Checkpoint names with at least one complete checkpoint, and how many."""
        counts: dict[str, int] = {}
        for info in self.checkpoints:
            if info.complete:
                counts[info.name] = counts.get(info.name, 0) + 1
        return counts

    def state_latest(self) -> Recorded | None:
        """The state file's ``model_checkpoint_path``, resolved, if it has one."""
        if self.state.latest is None:
            return None
        for rec in self.recorded:
            if rec.recorded == self.state.latest:
                return rec
        return None

    def state_mtime(self) -> float | None:
        """The modification time of the state file's text as read; None: unknown or absent.

        Locally it comes with the read; on a URI it is stat'ed once, when first asked, and
        kept only if the text has not changed meanwhile (`snapshot_mtime`).
        """
        if not self.state.exists:
            return None
        if not self._state_time:
            self._state_time.append(snapshot_mtime(self.state))
        return self._state_time[0]

    def state_changed(self) -> bool:
        """Whether the local state file was replaced or changed since it was read.

        Always False on URIs (a stat costs a request; the restore does not need it there).
        """
        state = self.state
        if fs.scheme_of(state.path) is not None or not state.exists or state.mtime is None:
            return False
        size, when = _stat(state.path) or (None, None)
        return when != state.mtime or state.raw is None or size != len(state.raw)

    def mtime_of(self, info: CheckpointInfo) -> float | None:
        """The newest modification time of `info`'s files: its ``mtime``, else stat'ed once.

        The inventory stats no file unless asked (see `scan`); the rule needs times only for
        the few checkpoints it compares with the state file.
        """
        if info.mtime is not None or not info.files:
            return info.mtime
        if info.prefix not in self._mtimes:
            self._mtimes[info.prefix] = _files_stat(self.directory, info.files)[1]
        return self._mtimes[info.prefix]

    def prefetch_mtimes(self, infos: list[CheckpointInfo]) -> None:
        """Stat the files of `infos` for `mtime_of` at once (in parallel on remote storage)."""
        todo = [c for c in infos if c.mtime is None and c.files and c.prefix not in self._mtimes]
        found = pool.map_io(self.directory, lambda c: _files_stat(self.directory, c.files), todo)
        for info, (_, when) in zip(todo, found, strict=True):
            self._mtimes[info.prefix] = when

    def stated(self, info: CheckpointInfo) -> CheckpointInfo:
        """`info` with its ``size_bytes`` and ``mtime`` (a stat of each of its files)."""
        return with_sizes(info)

    def with_stats(self) -> Inventory:
        """This inventory with every ``size_bytes`` and ``mtime`` (stats in parallel on URIs)."""
        infos = sorted(
            pool.map_io(self.directory, self.stated, self.checkpoints),
            key=lambda c: (-1 if c.step is None else c.step, c.mtime or 0.0, c.prefix),
        )
        return replace(self, checkpoints=tuple(infos), _mtimes={})

    def with_metrics(self) -> Inventory:
        """This inventory with the metrics of every checkpoint that has a metadata file.

        One read per such file (in parallel on remote storage); a damaged file gives None.
        """
        todo = [c for c in self.checkpoints if c.metadata_file is not None]
        found = pool.map_io(self.directory, lambda c: read_metadata(c.prefix), todo)
        metrics = {
            c.prefix: None if r.metadata is None else dict(r.metadata.metrics)
            for c, r in zip(todo, found, strict=True)
        }
        infos = tuple(
            replace(c, metrics=metrics[c.prefix]) if c.prefix in metrics else c
            for c in self.checkpoints
        )
        return replace(self, checkpoints=infos)

    def leftovers(self) -> list[str]:
        """Absolute paths of every leftover of interrupted saves and state writes."""
        return [fs.join(self.directory, n) for n in (*self.temp_dirs, *self.state_temps)]

    def default_name(self) -> str:
        """The checkpoint name meant when none is given.

        The name of the state file's latest checkpoint, else the most common name of complete
        checkpoints, else TensorFlow's default ``ckpt``.
        """
        latest = self.state_latest()
        if latest is not None and latest.prefix is not None:
            return split_step(fs.basename(latest.prefix))[0]
        counts = self.names()
        if counts:
            return Counter(counts).most_common(1)[0][0]
        return "ckpt"

    def existing_steps(self, name: str) -> frozenset[int]:
        """Steps of `name` whose files a save must not write over.

        Only the remains of a save that was interrupted before its index was complete (its
        ``_temp/`` is still there) and that a readable state file does not list are not
        protected: TensorFlow's next save of that number completes them.
        """
        garbled = self.state.exists and self.state.problem is not None
        return frozenset(
            c.step
            for c in self.family(name)
            if c.step is not None
            and any(not f.endswith("_temp/") for f in c.files)
            and (garbled or c.in_state_file or c.problems != (Cause.INCOMPLETE_SAVE,))
        )

    def has_checkpoints(self) -> bool:
        """Whether anything here is (or was) a checkpoint: an index file, or a state entry.

        What an interrupted first save leaves (data without an index, or an unfinished index
        next to its ``_temp/``; TensorFlow writes the index last) does not count: such a
        directory is still empty. An index without its data does count: that is damage.
        """
        return any(
            c.in_state_file
            or (
                c.problems != (Cause.INCOMPLETE_SAVE,)
                and any(f.endswith(INDEX_SUFFIX) for f in c.files)
            )
            for c in self.checkpoints
        )

    def state_notes(self, primary: CheckpointInfo) -> list[str]:
        """What a report says about how the state file led (or did not lead) to `primary`."""
        notes: list[str] = []
        state = self.state
        how = (
            f"{primary.basename} was found by listing the directory (TensorFlow would have "
            "started from scratch)"
        )
        if not state.exists:
            notes.append(f"The state file {state.path} is missing; {how}.")
        elif state.problem is not None:
            notes.append(f"The state file is unreadable ({state.error}); {how}.")
        latest = self.state_latest()
        if latest is not None and latest.reanchored and latest.prefix == primary.prefix:
            notes.append(
                f"The state file records {latest.recorded!r}, outside {self.directory}; "
                f"re-anchored to {primary.prefix}."
            )
        return notes


def _stat(path: str) -> tuple[int, float | None] | None:
    try:
        return fs.stat(path)
    except io_errors():
        return None


def _index_finished(directory: str, base: str) -> bool:
    """Whether ``<base>.index`` ends with the table footer's magic number (fully written)."""
    path = fs.join(directory, base + INDEX_SUFFIX)
    try:
        size = safeio.regular_size(path)  # locally a regular file only (never a FIFO)
        if size < FOOTER_SIZE:
            return False
        with safeio.open_read(path) as f:
            f.seek(size - 8)
            tail = f.read(8)
    except io_errors():
        return True  # unreadable: verification reports it
    return len(tail) == 8 and int.from_bytes(tail, "little") == TABLE_MAGIC


def _files_stat(directory: str, files: tuple[str, ...]) -> tuple[int | None, float | None]:
    """Total size and newest modification time of `files`: one stat each.

    The size is None when a file could not be stat'ed (unknown, not 0); the time is the
    newest of those that could, None when none could.
    """
    size: int | None = 0
    mtime = None
    for name in files:
        found = _stat(fs.join(directory, name.rstrip("/")))
        if found is None:
            size = None
            continue
        length, when = found
        size = None if size is None else size + length
        if when is not None and (mtime is None or when > mtime):
            mtime = when
    return size, mtime


def with_sizes(info: CheckpointInfo) -> CheckpointInfo:
    """`info` with its ``size_bytes`` and ``mtime`` measured (one stat of each of its files)."""
    size, when = _files_stat(fs.dirname(info.prefix), info.files)
    return replace(info, size_bytes=size, mtime=when)


def measured_locally(infos: list[CheckpointInfo]) -> list[CheckpointInfo]:
    """Locally, `infos` with their sizes and times (one stat per file); on URIs as they are.

    A stat on remote storage is a request per file: ``safeckpt doctor --stat`` asks for them.
    """
    if not infos or fs.scheme_of(infos[0].prefix) is not None:
        return infos
    return [with_sizes(info) for info in infos]


def _order(info: CheckpointInfo) -> tuple[int, str]:
    return (-1 if info.step is None else info.step, info.prefix)


def _info(
    directory: str,
    base: str,
    files: list[str],
    problems: list[Cause],
    in_state: bool,
    metadata: frozenset[str] | set[str] = frozenset(),
) -> CheckpointInfo:
    name, step = split_step(base)
    return CheckpointInfo(
        prefix=fs.join(directory, base),
        name=name,
        step=step,
        files=tuple(sorted(files)),
        in_state_file=in_state,
        problems=tuple(dict.fromkeys(problems)),
        metadata_file=base + METADATA_SUFFIX if base in metadata else None,
    )


def scan(directory: str, *, stats: bool = False) -> Inventory:
    """Build the inventory of `directory` from one listing and the state file.

    Completeness comes from the file names alone (an index and every data shard its name
    declares). Only an unfinished index next to a ``<prefix>_temp/`` is read (its last 8
    bytes). No file is stat'ed unless `stats` is true, so the cost is one listing and the
    state file whatever the number of checkpoints; `Inventory.mtime_of` stats on demand.

    Args:
        directory: The directory (normalized).
        stats: Fill every checkpoint's ``size_bytes`` and ``mtime`` (`Inventory.with_stats`).

    Raises:
        tf.errors.OpError: The directory could not be listed.
    """
    # The state file first: a save is recorded there after its files are written, so a
    # listing taken afterwards holds every checkpoint this state file can name.
    state = read_state(directory)
    entries = fs.list_entries(directory)
    listing: Listing = classify(entries.names)
    local = set(listing.prefixes)
    recorded = tuple(resolve_recorded(directory, r, local) for r in state.recorded())
    in_state = {fs.basename(r.prefix) for r in recorded if r.prefix is not None}
    temp_bases = {t[: -len(TEMP_SUFFIX)] for t in listing.temp_dirs}
    metadata = set(listing.metadata)
    infos: list[CheckpointInfo] = []
    for base, files in listing.prefixes.items():
        problems: list[Cause] = []
        if files.shards and not files.index:
            problems.append(Cause.INCOMPLETE_SAVE if base in temp_bases else Cause.MISSING_INDEX)
        elif files.index and base in temp_bases and not _index_finished(directory, base):
            # Killed while MergeV2Checkpoints wrote the index (in place, the last file).
            problems.append(Cause.INCOMPLETE_SAVE)
        elif files.index and (files.missing_shards or not files.shards):
            # TensorFlow writes at least one data shard, even for a checkpoint of no tensors.
            problems.append(Cause.MISSING_DATA_SHARD)
        elif not files.index and not files.shards:
            continue  # only a TF1 .meta graph file: not a checkpoint by itself
        infos.append(_info(directory, base, files.files, problems, base in in_state, metadata))
    for base in sorted(temp_bases - local):
        temp = [base + "_temp/"]
        infos.append(_info(directory, base, temp, [Cause.INCOMPLETE_SAVE], base in in_state))
    for base in sorted(in_state - local - temp_bases):
        if base in listing.other:  # a TF1 V1-format checkpoint: one file named like the prefix
            infos.append(_info(directory, base, [base], [], True, metadata))
        else:
            infos.append(_info(directory, base, [], [Cause.STATE_FILE_STALE], True))
    infos.sort(key=_order)
    inventory = Inventory(
        directory=directory,
        state=state,
        checkpoints=tuple(infos),
        recorded=recorded,
        temp_dirs=tuple(listing.temp_dirs),
        state_temps=tuple(listing.state_temps),
        worker_temps=tuple(listing.worker_temps),
        other=tuple(n for n in listing.other if n not in in_state),
        own=tuple(listing.own),
        undecodable=tuple(entries.undecodable),
        orphan_metadata=tuple(b + METADATA_SUFFIX for b in listing.metadata if b not in local),
        metadata_temps=tuple(listing.metadata_temps),
    )
    return inventory.with_stats() if stats else inventory


@public
def list_checkpoints(
    directory: object, *, checkpoint_name: str | None = None
) -> list[CheckpointInfo]:
    """Every checkpoint in `directory`, oldest to newest.

    The union of the ``checkpoint`` state file and one listing of the directory (no
    recursion). Each `CheckpointInfo` says whether the state file lists it and which
    problems the cheap checks found (an empty ``problems`` means it looks complete; run
    `safeckpt.verify` to check its contents), and the metrics its metadata file records
    (one read per metadata file).

    Args:
        directory: A local path or URI (normalized like `SafeCheckpointManager` does).
        checkpoint_name: Only checkpoints with this base name (e.g. ``"ckpt"``); all by default.

    Raises:
        CheckpointDirectoryError: The path is malformed.
        tf.errors.PermissionDeniedError: The directory may not be listed or searched.
        tf.errors.OpError: The directory does not exist or cannot be listed.
    """
    path = paths.normalize_directory(directory)
    if checkpoint_name is not None:
        paths.normalize_checkpoint_name(checkpoint_name)
    try:
        inventory = scan(path, stats=True).with_metrics()
    except (NotFoundError, PermissionDeniedError) as exc:
        raise as_tensorflow(exc) from exc  # documented as TensorFlow's, as before
    refused = fs.access_error(fs.join(path, STATE_FILE))  # listable, but not searchable
    if refused is not None:
        raise tf.errors.PermissionDeniedError(None, None, f"{path}: {refused.strerror}")
    return inventory.family(checkpoint_name)
