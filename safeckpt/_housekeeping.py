"""Opt-in housekeeping: quarantine damaged checkpoints, remove leftovers of interrupted saves.

Nothing here runs unless the user asked for it (``quarantine=True``, ``cleanup_temp=True``).
Quarantine moves files (never deletes them); cleanup removes only leftovers that are older
than the newest complete checkpoint, so an in-flight (async) save is never touched.
"""

from __future__ import annotations

import logging
import time

from safeckpt import _paths
from safeckpt._causes import Cause
from safeckpt._info import CheckpointInfo
from safeckpt._inventory import Inventory
from safeckpt._layout import QUARANTINE_DIR, split_step, strip_file_suffix
from safeckpt._tf import tf

logger = logging.getLogger("safeckpt")


def quarantine(info: CheckpointInfo, directory: str) -> list[str]:
    """Move the files of `info` into ``<directory>/quarantine/``; returns the new paths.

    File names are kept, so ``checkpoint.restore("<directory>/quarantine/ckpt-5")`` still
    works for inspection. When the quarantine already holds a checkpoint of that name, the
    files go into ``quarantine/<name>.<timestamp>/`` instead. Files that cannot be moved
    are left in place (and logged).
    """
    target = _paths.join(directory, QUARANTINE_DIR)
    if any(tf.io.gfile.exists(_paths.join(target, name.rstrip("/"))) for name in info.files):
        target = _paths.join(target, f"{info.basename}.{time.time_ns()}")
    tf.io.gfile.makedirs(target)
    moved: list[str] = []
    for name in info.files:
        name = name.rstrip("/")
        source = _paths.join(directory, name)
        destination = _paths.join(target, name)
        try:
            tf.io.gfile.rename(source, destination, overwrite=False)
        except (tf.errors.OpError, OSError) as exc:
            logger.warning("Could not move %s into %s: %s", source, target, exc)
            continue
        moved.append(destination)
    if moved:
        logger.warning("Moved the damaged checkpoint %s into %s.", info.prefix, target)
    return moved


def _mtime(path: str) -> float | None:
    try:
        return _paths.stat(path)[1]
    except (tf.errors.OpError, OSError):
        return None


def remove(path: str) -> bool:
    """Delete a file or a directory tree; False (and a WARNING) when that fails."""
    try:
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
    except (tf.errors.OpError, OSError) as exc:
        logger.warning("Could not remove %s: %s", path, exc)
        return False
    return True


def cleanup_temp(
    inventory: Inventory,
    checkpoint_name: str,
    finished: str | None = None,
    protected: frozenset[str] = frozenset(),
) -> list[str]:
    """Remove leftovers of interrupted saves older than the newest complete checkpoint.

    Leftovers are ``<checkpoint_name>-N_temp/`` directories, ``checkpoint.tmp*`` files, and
    the files of saves that never finished and that the state file does not list (data
    shards without an index, or with an index that was never completely written).
    ``finished`` is the prefix of a synchronous save that has just returned: its ``_temp``
    directory can only hold what an earlier, interrupted save of the same number left
    behind (which kept TensorFlow from removing it), whatever its time stamp. Files of a
    checkpoint in `protected` (what the state file listed when the manager was created) are
    never removed. Returns the removed paths. Without a complete checkpoint nothing is
    removed.
    """
    complete = [c for c in inventory.family(checkpoint_name) if c.complete]
    if not complete:
        return []
    times = [c.mtime for c in complete if c.mtime is not None]
    newest = max(times) if times else None
    top = max((c.step for c in complete if c.step is not None), default=None)
    removed: list[str] = []
    temps = [t for t in inventory.temp_dirs if split_step(t[: -len("_temp")])[0] == checkpoint_name]
    orphans = [
        name
        for c in inventory.family(checkpoint_name)
        if c.problems in ((Cause.MISSING_INDEX,), (Cause.INCOMPLETE_SAVE,))
        and not c.in_state_file
        and c.prefix not in protected
        for name in c.files
        if not name.endswith("_temp/")
    ]
    done = _paths.basename(finished) + "_temp" if finished is not None else None
    for name in (*temps, *inventory.state_temps, *orphans):
        path = _paths.join(inventory.directory, name)
        when = _mtime(path)
        if name == done:
            pass
        elif when is not None and newest is not None:
            if when >= newest:
                continue
        else:  # no times (ram://): only a <name>-N_temp below the newest complete step
            base = name[: -len("_temp")] if name in temps else strip_file_suffix(name) or ""
            step = split_step(base)[1] if name not in inventory.state_temps else None
            if step is None or top is None or step >= top:
                continue
        if remove(path):
            removed.append(path)
    if removed:
        logger.info("Removed %d leftover(s) of interrupted saves: %s", len(removed), removed)
    return removed
