"""Turning an explicit ``restore(save_path)`` into the checkpoint prefix it means."""

from __future__ import annotations

import os
from dataclasses import dataclass

from safeckpt._catalog.inventory import scan
from safeckpt._catalog.ranking import rank
from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis
from safeckpt._format.layout import INDEX_SUFFIX, STATE_FILE, strip_file_suffix
from safeckpt._io import fs, paths
from safeckpt._io.errors import io_errors


@dataclass(frozen=True)
class ExplicitRequest:
    """An explicit ``restore(save_path)``, normalized once.

    Attributes:
        prefix: The checkpoint prefix the path means.
        notes: How the path was read, one note per rewrite (a file name taken as its
            prefix, a directory as its newest checkpoint, ...).
    """

    prefix: str
    notes: tuple[str, ...] = ()


def read_request(
    save_path: object, latest: str | None, checkpoint_name: str
) -> ExplicitRequest | None:
    """What ``restore(save_path)`` asks for: None for "the newest usable checkpoint".

    That is ``save_path=None``, or a spelling of the manager's own `latest` checkpoint; any
    other path is an explicit request (`resolve_request`). The path is normalized once.

    A directory or state file that names no checkpoint is requested as it is (its restore
    then fails with a diagnosis).

    Raises:
        TypeError, CheckpointDirectoryError: `save_path` is malformed.
    """
    if save_path is None:
        return None
    if isinstance(save_path, (str, os.PathLike)) and os.fspath(save_path) == latest:
        return None
    path = paths.normalize_directory(save_path, "save_path")
    if path == latest:
        return None
    return _explicit(path, checkpoint_name)


def resolve_request(save_path: object, checkpoint_name: str) -> ExplicitRequest:
    """Normalize an explicit `save_path` to a checkpoint prefix; each rewrite is noted.

    A ``.index``/``.data-…`` file name becomes its prefix, a directory its newest checkpoint,
    the ``checkpoint`` state file the checkpoint it names.

    A directory or state file that names no checkpoint is returned as it is.

    Raises:
        TypeError, CheckpointDirectoryError: `save_path` is malformed.
    """
    return _explicit(paths.normalize_directory(save_path, "save_path"), checkpoint_name)


def _explicit(path: str, checkpoint_name: str) -> ExplicitRequest:
    try:
        if fs.exists(path + INDEX_SUFFIX):
            return ExplicitRequest(path)
        stripped = strip_file_suffix(path)
        if stripped is not None and fs.exists(stripped + INDEX_SUFFIX):
            note = f"{path} is a checkpoint file; restoring its prefix {stripped}."
            return ExplicitRequest(stripped, (note,))
        is_dir = fs.isdir(path)
        if fs.basename(path) == STATE_FILE and not is_dir and fs.exists(path):
            chosen = newest_or_none(fs.dirname(path), checkpoint_name)
            if chosen is not None:
                note = f"{path} is the state file; restoring the checkpoint it names, {chosen}."
                return ExplicitRequest(chosen, (note,))
        elif is_dir:
            chosen = newest_or_none(path, checkpoint_name)
            if chosen is not None:
                note = f"{path} is a directory; restoring its newest checkpoint, {chosen}."
                return ExplicitRequest(chosen, (note,))
    except io_errors(IndexError, ValueError, UnicodeDecodeError):
        pass
    return ExplicitRequest(path)


def newest_or_none(directory: str, checkpoint_name: str) -> str | None:
    """The first candidate of the rule (see `rank`), else the newest complete checkpoint."""
    inventory = scan(directory)
    first = rank(inventory, checkpoint_name).first
    if first is not None:
        return first.prefix
    complete = [c for c in inventory.checkpoints if c.complete]
    return complete[-1].prefix if complete else None


def not_found_cause(diagnosis: Diagnosis) -> Cause:
    return Cause.NO_CHECKPOINTS if diagnosis.cause is Cause.HEALTHY else diagnosis.cause
