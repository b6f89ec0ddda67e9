"""The end of a ``fit``: delete the backups `BackupAndRestore` wrote, and nothing else."""

from __future__ import annotations

import os

from safeckpt._catalog.inventory import scan
from safeckpt._catalog.lease import lease_name
from safeckpt._format.layout import METADATA_SUFFIX, TEMP_SUFFIX, split_step
from safeckpt._io import fs, safeio
from safeckpt._io.tf import tf

#: Base name of the backups: ``<backup_dir>/backup-<N>.index`` and ``.data-*``.
CHECKPOINT_NAME = "backup"


def delete_backups(directory: str) -> list[str]:
    """Delete the backups `BackupAndRestore` writes in `directory`, and nothing else.

    Removes every ``backup-<N>`` checkpoint (complete or damaged), its metadata file and its
    ``_temp`` leftover,
    the writer lease of ``backup`` (``.safeckpt-writer-backup``), the ``checkpoint`` state
    file when it lists only backups, its ``checkpoint.tmp*``
    leftovers then, and finally `directory` itself if it is then empty (local paths only).

    Returns:
        The paths removed.
    """
    if not tf.io.gfile.exists(directory):
        return []
    inventory = scan(directory)
    doomed = [
        fs.join(directory, name)
        for info in inventory.family(CHECKPOINT_NAME)
        for name in (*info.files, *([info.metadata_file] if info.metadata_file else []))
    ]
    doomed += [  # metadata files without their checkpoint, and killed metadata writes
        fs.join(directory, name)
        for name in (*inventory.orphan_metadata, *inventory.metadata_temps)
        if split_step(name.split(METADATA_SUFFIX, 1)[0])[0] == CHECKPOINT_NAME
    ]
    doomed += [
        fs.join(directory, name)
        for name in inventory.temp_dirs
        if split_step(name.removesuffix(TEMP_SUFFIX))[0] == CHECKPOINT_NAME
    ]
    lease = lease_name(CHECKPOINT_NAME)
    doomed += [
        fs.join(directory, name)
        for name in inventory.own
        if name == lease or name.startswith(lease + ".tmp-")
    ]
    state = inventory.state
    recorded = (*state.all_paths, *([state.latest] if state.latest else []))
    if (
        state.exists
        and state.problem is None
        and all(split_step(fs.basename(path))[0] == CHECKPOINT_NAME for path in recorded)
    ):
        doomed.append(state.path)
        doomed += [fs.join(directory, name) for name in inventory.state_temps]
    removed = []
    for path in doomed:
        try:
            safeio.remove_entry(path)  # a link as a link: never what it points to
        except (tf.errors.NotFoundError, FileNotFoundError):
            continue
        removed.append(path)
    if fs.scheme_of(directory) is None:
        try:
            os.rmdir(directory)  # fails (and keeps it) unless it is empty
        except OSError:
            pass
        else:
            removed.append(directory)
    return removed
