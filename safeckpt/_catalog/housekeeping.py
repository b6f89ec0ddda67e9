"""Opt-in housekeeping: quarantine damaged checkpoints, remove leftovers of interrupted saves.

Nothing here runs unless the user asked for it (``quarantine=True``, ``cleanup_temp=True``).
Quarantine moves files (never deletes them); cleanup removes only leftovers that are older
than the newest complete checkpoint, so an in-flight (async) save is never touched. Both act
on the entries themselves through `safeckpt._io.safeio`: a link is moved or removed as a link,
never followed out of the directory, and the quarantine must be a real directory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from safeckpt._catalog.inventory import Inventory, scan
from safeckpt._catalog.lease import lease_name
from safeckpt._causes import Cause
from safeckpt._format.layout import (
    METADATA_SUFFIX,
    METADATA_TEMP_INFIX,
    QUARANTINE_DIR,
    TEMP_SUFFIX,
    split_step,
    strip_file_suffix,
)
from safeckpt._info import CheckpointInfo
from safeckpt._io import fs, safeio
from safeckpt._io.errors import io_errors

logger = logging.getLogger("safeckpt")


def quarantine(info: CheckpointInfo, directory: str) -> list[str]:
    """Move the files of `info` into ``<directory>/quarantine/``; returns the new paths.

    File names are kept, so ``checkpoint.restore("<directory>/quarantine/ckpt-5")`` still
    works for inspection; its metadata file moves with it. When the quarantine already
    holds a checkpoint of that name, the files go into ``quarantine/<name>.<timestamp>/``
    instead. Files that cannot be moved are left in place (and logged); so is everything
    when ``quarantine`` is not a real directory inside `directory` (a link to elsewhere, a
    file).
    """
    target = fs.join(directory, QUARANTINE_DIR)
    try:
        safeio.real_directory(target)
        if any(safeio.lexists(fs.join(target, name.rstrip("/"))) for name in info.files):
            target = safeio.real_directory(fs.join(target, f"{info.basename}.{time.time_ns()}"))
    except io_errors() as exc:
        logger.warning("Not moving %s into quarantine: %s", info.prefix, exc)
        return []
    moved: list[str] = []
    metadata = () if info.metadata_file is None else (info.metadata_file,)
    for name in (*info.files, *metadata):  # the metadata file last: it follows its checkpoint
        name = name.rstrip("/")
        source = fs.join(directory, name)
        destination = fs.join(target, name)
        try:
            safeio.move_entry(source, destination)
        except io_errors() as exc:
            logger.warning("Could not move %s into %s: %s", source, target, exc)
            continue
        moved.append(destination)
    if moved:
        logger.warning("Moved the damaged checkpoint %s into %s.", info.prefix, target)
    return moved


def quarantine_all(infos: Sequence[CheckpointInfo], directory: str) -> list[str]:
    """`quarantine` each checkpoint; returns the base names of those whose files moved."""
    return [info.basename for info in infos if quarantine(info, directory)]


def remove(path: str) -> bool:
    """Delete a file, a link (as a link) or a directory tree; False (and a WARNING) on failure."""
    try:
        safeio.remove_entry(path)
    except io_errors() as exc:
        logger.warning("Could not remove %s: %s", path, exc)
        return False
    return True


LeftoverRule = Literal[
    "temp_dir", "state_temp", "unfinished_save", "lease_temp", "orphan_metadata", "metadata_temp"
]


@dataclass(frozen=True)
class Leftover:
    """A file or directory `cleanup_temp` removes, and the rule that chose it.

    Attributes:
        name: Its name in the directory.
        rule: ``"temp_dir"`` (``<name>-N_temp/``), ``"state_temp"`` (``checkpoint.tmp*``),
            ``"unfinished_save"`` (data or an unfinished index of a save that never
            completed and that the state file does not list, or what a sweep killed between
            its deletes left, with its metadata file) or ``"lease_temp"`` (a new
            writer lease of this name that a killed process never renamed into place),
            ``"orphan_metadata"`` (``<name>-N.safeckpt.json`` whose checkpoint has no file
            left) or ``"metadata_temp"`` (a metadata write of this name a killed process
            never renamed into place).
    """

    name: str
    rule: LeftoverRule


def leftover_candidates(
    inventory: Inventory, checkpoint_name: str, protected: frozenset[str] = frozenset()
) -> list[Leftover]:
    """Everything that may be a leftover of an interrupted save, before the age rule."""
    temps = [
        Leftover(t, "temp_dir")
        for t in inventory.temp_dirs
        if split_step(t[: -len(TEMP_SUFFIX)])[0] == checkpoint_name
    ]
    states = [Leftover(t, "state_temp") for t in inventory.state_temps]
    lease = lease_name(checkpoint_name) + ".tmp-"
    states += [Leftover(n, "lease_temp") for n in inventory.own if n.startswith(lease)]
    orphans = [
        Leftover(name, "unfinished_save")
        for c in inventory.family(checkpoint_name)
        if c.problems in ((Cause.MISSING_INDEX,), (Cause.INCOMPLETE_SAVE,))
        and not c.in_state_file
        and c.prefix not in protected
        for name in (*c.files, *([c.metadata_file] if c.metadata_file else []))
        if not name.endswith(TEMP_SUFFIX + "/")
    ]
    metadata = [
        Leftover(n, "orphan_metadata")
        for n in inventory.orphan_metadata
        if split_step(n[: -len(METADATA_SUFFIX)])[0] == checkpoint_name
    ]
    metadata += [
        Leftover(n, "metadata_temp")
        for n in inventory.metadata_temps
        if split_step(n.split(METADATA_TEMP_INFIX, 1)[0])[0] == checkpoint_name
    ]
    return [*temps, *states, *orphans, *metadata]


def _leftover_base(item: Leftover) -> str:
    """The checkpoint base name a leftover belongs to (``ckpt-4``), or ``""``."""
    if item.rule == "temp_dir":
        return item.name[: -len(TEMP_SUFFIX)]
    if item.name.endswith(METADATA_SUFFIX):  # an orphan, or beside an unfinished save
        return item.name[: -len(METADATA_SUFFIX)]
    if item.rule == "metadata_temp":
        return item.name.split(METADATA_TEMP_INFIX, 1)[0]
    return strip_file_suffix(item.name) or ""


def choose_leftovers(
    inventory: Inventory,
    checkpoint_name: str,
    mtimes: Mapping[str, float | None],
    *,
    finished: str | None = None,
    protected: frozenset[str] = frozenset(),
) -> list[Leftover]:
    """The leftovers to remove: a pure function of the inventory and the leftovers' times.

    A candidate (`leftover_candidates`) is removed when it is older than the newest complete
    checkpoint of `checkpoint_name` (never a newer one: it may be an asynchronous save in
    flight). Where the filesystem reports no times (``ram://``), only candidates with a
    step below the newest complete step are. ``finished`` is the prefix of a synchronous
    save that has just returned: its ``_temp/`` can only hold what an earlier, interrupted
    save of the same number left behind, whatever its time. Without a complete checkpoint
    nothing is removed.

    Args:
        inventory: The directory's inventory.
        checkpoint_name: The manager's checkpoint name.
        mtimes: The modification time of each candidate, by name (None when unknown).
        finished: The prefix of the save that has just returned, if synchronous.
        protected: Prefixes the state file listed when the manager was created.
    """
    complete = [c for c in inventory.family(checkpoint_name) if c.complete]
    if not complete:
        return []
    times = [c.mtime for c in complete if c.mtime is not None]
    newest = max(times) if times else None
    top = max((c.step for c in complete if c.step is not None), default=None)
    done = fs.basename(finished) + TEMP_SUFFIX if finished is not None else None
    chosen = []
    for item in leftover_candidates(inventory, checkpoint_name, protected):
        when = mtimes.get(item.name)
        if item.name == done:
            chosen.append(item)
        elif when is not None and newest is not None:
            if when < newest:
                chosen.append(item)
        elif item.rule != "state_temp" and item.rule != "lease_temp" and top is not None:
            base = _leftover_base(item)
            step = split_step(base)[1]
            if step is not None and step < top:
                chosen.append(item)
    return chosen


def cleanup_after_save(
    directory: str, checkpoint_name: str, finished: str | None, protected: frozenset[str]
) -> None:
    """`cleanup_temp` after a save; a failure to clean up is logged, never raised."""
    try:
        cleanup_temp(scan(directory), checkpoint_name, finished=finished, protected=protected)
    except io_errors() as exc:
        logger.warning("Could not clean up leftovers in %s: %s", directory, exc)


def cleanup_temp(
    inventory: Inventory,
    checkpoint_name: str,
    finished: str | None = None,
    protected: frozenset[str] = frozenset(),
) -> list[str]:
    """Remove what `choose_leftovers` chooses; returns the removed paths."""
    candidates = leftover_candidates(inventory, checkpoint_name, protected)
    if not candidates:
        return []
    inventory = inventory.with_stats()  # the age rule compares times (only with leftovers)
    # The entries' own times (a link's, not its target's).
    mtimes = {c.name: safeio.lstat_mtime(fs.join(inventory.directory, c.name)) for c in candidates}
    removed: list[str] = []
    for item in choose_leftovers(
        inventory, checkpoint_name, mtimes, finished=finished, protected=protected
    ):
        path = fs.join(inventory.directory, item.name)
        if remove(path):
            removed.append(path)
    if removed:
        logger.info("Removed %d leftover(s) of interrupted saves: %s", len(removed), removed)
    return removed
