"""What a local checkpoint directory's storage means for the next save: room, and lifetime.

Two notes a manager logs once at construction (and ``safeckpt doctor`` prints): a directory
on storage that will not outlive the job (tmpfs/ramfs, a container's overlay root, the
system's temporary folder), and a file system with less free space than the next save needs
(the newest checkpoint's size: TensorFlow writes the new checkpoint before it sweeps the
oldest). Local directories only, standard library only (no TensorFlow).
"""

from __future__ import annotations

import contextlib
import logging
import os

from safeckpt._format.index import IndexFormatError, read_index
from safeckpt._format.layout import (
    INDEX_SUFFIX,
    METADATA_SUFFIX,
    data_shard,
    shard_path,
    split_step,
)
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


def newest_size(directory: str, name: str, latest: str | None = None) -> int | None:
    """Bytes of the files of the highest-numbered checkpoint `name` with an index, or None.

    Local directories only. Given `latest` (the prefix the state file names, which
    TensorFlow's constructor has read), that checkpoint is measured without listing the
    directory: its index (read for the number of shards), shards and metadata file. Else
    one listing and a stat per file of the newest.
    """
    local = fs.local_path(directory)
    if local is None:
        return None
    if latest is not None:
        return _size_of(os.path.join(local, os.path.basename(latest)))
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


def _size_of(prefix: str) -> int | None:
    """Bytes of a local checkpoint's index, data shards and metadata file, or None."""
    try:
        total = os.stat(prefix + INDEX_SUFFIX).st_size
        try:  # one shard, the common case: no need to read the index
            total += os.stat(shard_path(prefix, 0, 1)).st_size
        except FileNotFoundError:
            shards = read_index(prefix + INDEX_SUFFIX).num_shards
            total += sum(os.stat(shard_path(prefix, k, shards)).st_size for k in range(shards))
    except (OSError, IndexFormatError):
        return None
    with contextlib.suppress(OSError):  # none (plain TF, an older save): nothing to add
        total += os.stat(prefix + METADATA_SUFFIX).st_size  # the next save writes one too
    return total


def low_space_note(directory: str, name: str, latest: str | None = None) -> str | None:
    """A note when the local file system has less free space than the next save needs.

    `latest`: see `newest_size`.
    """
    needed = newest_size(directory, name, latest)
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


#: Directories whose storage was judged in this process (the ephemeral note, once each).
_WARNED: set[str] = set()


def warn_at_construction(
    directory: str, name: str, allow_ephemeral: bool, latest: str | None
) -> None:
    """Log the two notes for a manager that saves into `directory`.

    The ephemeral-storage one once per directory and process (the mount table is read once
    per directory). The low-space one measures the checkpoint the state file names
    (`latest`, read by TensorFlow's constructor): construction never lists the directory,
    so its cost does not grow with the number of checkpoints; without a recorded latest
    checkpoint there is nothing to measure.
    """
    if not ephemeral_allowed(allow_ephemeral) and directory not in _WARNED:
        _WARNED.add(directory)
        note = ephemeral_note(directory)
        if note is not None:
            logger.warning("Checkpoints here will not outlive the job: %s", note)
    if latest is None:
        return
    space = low_space_note(directory, name, latest)
    if space is not None:
        logger.warning("%s", space)
