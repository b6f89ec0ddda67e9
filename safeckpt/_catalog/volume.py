"""What a local checkpoint directory's storage means for the next save: room, and lifetime.

Two notes a manager logs once at construction (and ``safeckpt doctor`` prints): a directory
on storage that will not outlive the job (tmpfs/ramfs, a container's overlay root, the
system's temporary folder), and a file system with less free space than the next save needs
(the newest checkpoint's size: TensorFlow writes the new checkpoint before it sweeps the
oldest). Local directories only, standard library only (no TensorFlow).
"""

from __future__ import annotations

import logging
import os

from safeckpt._format.layout import INDEX_SUFFIX, METADATA_SUFFIX, data_shard, split_step
from safeckpt._io import fs, storage

logger = logging.getLogger("safeckpt")


def ephemeral_allowed(allow: bool) -> bool:
    """Whether the ephemeral-storage note is silenced (option, or the environment)."""
    return allow or os.environ.get(storage.QUIET_ENV, "").strip().lower() in ("1", "true", "yes")


def ephemeral_note(directory: str) -> str | None:
    """Why checkpoints in `directory` will not outlive the job, or None (also for URIs)."""
    local = fs.local_path(directory)
    if local is None:
        return None
    reason = storage.ephemeral_reason(local)
    if reason is None:
        return None
    return (
        f"{reason}. Keep checkpoints on persistent storage (a mounted volume, a network "
        f"file system, gs://); allow_ephemeral=True or {storage.QUIET_ENV}=1 silences this."
    )


def newest_size(directory: str, name: str) -> int | None:
    """Bytes of the files of the highest-numbered checkpoint `name` with an index, or None.

    Local directories only (one listing and a stat per file of that checkpoint).
    """
    local = fs.local_path(directory)
    if local is None:
        return None
    try:
        names = os.listdir(local)
    except OSError:
        return None
    steps = {}
    for entry in names:
        if entry.endswith(INDEX_SUFFIX):
            base, step = split_step(entry[: -len(INDEX_SUFFIX)])
            if base == name and step is not None:
                steps[step] = entry[: -len(INDEX_SUFFIX)]
    if not steps:
        return None
    prefix = steps[max(steps)]
    total = 0
    for entry in names:
        shard = data_shard(entry)
        own = entry in (prefix + INDEX_SUFFIX, prefix + METADATA_SUFFIX)  # the next save's too
        if own or (shard is not None and shard[0] == prefix):
            try:
                total += os.stat(os.path.join(local, entry)).st_size
            except OSError:
                return None
    return total


def low_space_note(directory: str, name: str) -> str | None:
    """A note when the local file system has less free space than the next save needs."""
    needed = newest_size(directory, name)
    local = fs.local_path(directory)
    free = None if local is None else storage.free_bytes(local)
    if needed is None or free is None or free >= needed:
        return None
    return (
        f"{directory} has {free} bytes free, less than the {needed} bytes of its newest "
        f"checkpoint of {name!r}: TensorFlow writes the next checkpoint before it removes the "
        "oldest, so the next save will fail with a full disk (SaveError, cause disk_full). "
        "Free space or move the checkpoints."
    )


_WARNED: set[str] = set()


def warn_at_construction(directory: str, name: str, allow_ephemeral: bool) -> None:
    """Log the two notes for a manager that saves into `directory`.

    The ephemeral-storage one once per directory and process.
    """
    note = None if ephemeral_allowed(allow_ephemeral) else ephemeral_note(directory)
    if note is not None and directory not in _WARNED:
        _WARNED.add(directory)
        logger.warning("Checkpoints here will not outlive the job: %s", note)
    space = low_space_note(directory, name)
    if space is not None:
        logger.warning("%s", space)
