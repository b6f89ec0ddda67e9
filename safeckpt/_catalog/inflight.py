"""Telling a save that is being written from the remains of one that was interrupted.

Another process may be saving while the directory is diagnosed: its ``<prefix>_temp/``, its
data without an index yet, its state-file temporary (``checkpoint.tmp*``), or its complete
checkpoint whose state write has not landed yet. Those are a save in progress, not damage, when
they are recent (`IN_PROGRESS_SECONDS`) and the state file does not list them. Older ones are
leftovers of an interrupted save, as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from safeckpt._catalog.inventory import Inventory
from safeckpt._causes import Cause
from safeckpt._format.layout import TEMP_SUFFIX
from safeckpt._info import CheckpointInfo
from safeckpt._io import fs
from safeckpt._io.errors import io_errors, not_found

#: How recent (seconds) the files of a save must be to count as being written. TensorFlow
#: writes a checkpoint's files one after the other; on remote storage an object appears only
#: once it is uploaded, so a large shard can keep a save silent for minutes.
IN_PROGRESS_SECONDS = 600.0

_UNFINISHED = ((Cause.INCOMPLETE_SAVE,), (Cause.MISSING_INDEX,))


@dataclass(frozen=True)
class InFlight:
    """The saves being written in a directory, as far as its files tell.

    Attributes:
        checkpoints: Checkpoints of a save in progress (no index yet, or not recorded yet).
        leftovers: Names of ``_temp`` folders and ``checkpoint.tmp*`` files of writes in
            progress (not leftovers of an interrupted save).
    """

    checkpoints: tuple[CheckpointInfo, ...] = ()
    leftovers: frozenset[str] = frozenset()

    def describe(self, directory: str) -> list[str]:
        """One line of evidence per save or state write in progress."""
        lines = [
            f"{info.basename} is being written (a save in progress: "
            f"{'its state write has not landed yet' if info.complete else 'no index yet'}); "
            "not a problem."
            for info in self.checkpoints
        ]
        lines.extend(
            f"{fs.join(directory, name)} belongs to a write in progress."
            for name in sorted(self.leftovers)
        )
        return lines


def _recent(when: float | None, now: float) -> bool:
    return when is not None and now - when <= IN_PROGRESS_SECONDS


def _moving(inventory: Inventory, info: CheckpointInfo, now: float) -> bool:
    """Whether `info`'s files are recent, or some of them are gone since the listing.

    A file that vanished between the listing and this stat (TensorFlow removes a save's
    ``_temp`` folder once the checkpoint is complete) says the save moved on.
    """
    newest: float | None = None
    for name in info.files:
        try:
            when = fs.stat(fs.join(inventory.directory, name.rstrip("/")))[1]
        except not_found():
            return True
        except io_errors():
            continue
        if when is not None and (newest is None or when > newest):
            newest = when
    return _recent(newest, now)


def _mtime(path: str) -> float | None:
    try:
        return fs.stat(path)[1]
    except io_errors():
        return None


def _recording_pending(inventory: Inventory, info: CheckpointInfo) -> bool:
    """Whether `info` is the one complete checkpoint of a save whose state write is next.

    The readable state file lists checkpoints of its name, all below its step, and no other
    unlisted complete checkpoint of that name is above them (several would be interrupted
    saves, or a copied run).
    """
    if not inventory.state.readable or info.step is None:
        return False
    family = inventory.family(info.name)
    listed = [c.step for c in family if c.in_state_file and c.step is not None]
    if not listed or max(listed) >= info.step:
        return False
    above = [
        c for c in family if c.complete and not c.in_state_file and (c.step or -1) > max(listed)
    ]
    return above == [info]


def in_flight(inventory: Inventory, now: float | None = None) -> InFlight:
    """The saves in progress in `inventory` (files stat'ed only where they may be one).

    A checkpoint counts when the state file does not list it, its newest file is recent, and
    either it has no index yet (or an unfinished one) next to its ``_temp`` folder or a
    recent ``checkpoint.tmp*``, or it is the one complete checkpoint above every step the
    state file lists for its name (its state write is the next thing the saver does).
    """
    now = time.time() if now is None else now
    directory = inventory.directory
    state_temps = {t for t in inventory.state_temps if _recent(_mtime(fs.join(directory, t)), now)}
    temps = {t[: -len(TEMP_SUFFIX)] for t in inventory.temp_dirs}
    found: list[CheckpointInfo] = []
    for info in inventory.checkpoints:
        if info.in_state_file:
            continue
        if info.complete:
            pending = _recording_pending(inventory, info)
        else:
            pending = info.problems in _UNFINISHED and (info.basename in temps or bool(state_temps))
        if pending and _moving(inventory, info, now):
            found.append(info)
    ours = {c.basename + TEMP_SUFFIX for c in found}
    leftovers = frozenset(t for t in inventory.temp_dirs if t in ours) | state_temps
    return InFlight(tuple(found), leftovers)
