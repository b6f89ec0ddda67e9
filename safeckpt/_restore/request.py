"""Turning an explicit ``restore(save_path)`` into the checkpoint prefix it means."""

from __future__ import annotations

import os

from safeckpt._catalog.inventory import scan
from safeckpt._catalog.ranking import rank
from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis
from safeckpt._format.layout import INDEX_SUFFIX, STATE_FILE, strip_file_suffix
from safeckpt._io import fs, paths
from safeckpt._io.errors import io_errors


def resolve_request(save_path: object, checkpoint_name: str, notes: list[str]) -> str:
    """Normalize an explicit `save_path` to a checkpoint prefix; each rewrite is noted.

    A ``.index``/``.data-…`` file name becomes its prefix, a directory its newest checkpoint,
    the ``checkpoint`` state file the checkpoint it names.

    Raises:
        TypeError, CheckpointDirectoryError: `save_path` is malformed.

    A directory or state file that names no checkpoint is returned as it is.
    """
    path = paths.normalize_directory(save_path, "save_path")
    try:
        if fs.exists(path + INDEX_SUFFIX):
            return path
        stripped = strip_file_suffix(path)
        if stripped is not None and fs.exists(stripped + INDEX_SUFFIX):
            notes.append(f"{path} is a checkpoint file; restoring its prefix {stripped}.")
            return stripped
        is_dir = fs.isdir(path)
        if fs.basename(path) == STATE_FILE and not is_dir and fs.exists(path):
            chosen = newest_or_none(fs.dirname(path), checkpoint_name)
            if chosen is None:
                return path
            notes.append(f"{path} is the state file; restoring the checkpoint it names, {chosen}.")
            return chosen
        if is_dir:
            chosen = newest_or_none(path, checkpoint_name)
            if chosen is None:
                return path
            notes.append(f"{path} is a directory; restoring its newest checkpoint, {chosen}.")
            return chosen
    except io_errors(IndexError, ValueError, UnicodeDecodeError):
        pass
    return path


def newest_or_none(directory: str, checkpoint_name: str) -> str | None:
    """The first candidate of the rule (see `rank`), else the newest complete checkpoint."""
    inventory = scan(directory)
    first = rank(inventory, checkpoint_name).first
    if first is not None:
        return first.prefix
    complete = [c for c in inventory.checkpoints if c.complete]
    return complete[-1].prefix if complete else None


def names_path(save_path: object, prefix: str | None) -> bool:
    """Whether `save_path` is a spelling of `prefix` (the manager's own latest checkpoint)."""
    if prefix is None or not isinstance(save_path, (str, os.PathLike)):
        return False
    if os.fspath(save_path) == prefix:
        return True
    try:
        return bool(paths.normalize_directory(save_path, "save_path") == prefix)
    except (TypeError, ValueError):
        return False


def not_found_cause(diagnosis: Diagnosis) -> Cause:
    return Cause.NO_CHECKPOINTS if diagnosis.cause is Cause.HEALTHY else diagnosis.cause
