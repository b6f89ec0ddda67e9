"""Rewriting the ``checkpoint`` state file from the checkpoints that verify.

The new state file is written under a unique temporary name, created exclusively, and renamed
over the old one; the backup is a new file too (`safeckpt._io.safeio`): nothing is ever written
through an existing file, link or hard link.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from dataclasses import dataclass
from typing import Any

from safeckpt._catalog.inventory import scan
from safeckpt._format.layout import METADATA_SUFFIX, STATE_FILE, split_step
from safeckpt._format.protos import state_text
from safeckpt._format.verify import check_prefix
from safeckpt._io import fs, safeio
from safeckpt._io.errors import io_errors, not_found
from safeckpt._serialize import from_jsonable, to_jsonable

logger = logging.getLogger("safeckpt")


@dataclass(frozen=True)
class Skipped:
    """A checkpoint `repair` leaves out of the state file, and why."""

    prefix: str
    reason: str


@dataclass(frozen=True)
class RepairPlan:
    """What `repair` would write (or wrote).

    Attributes:
        directory: The checkpoint directory.
        name: The checkpoint name whose checkpoints are recorded.
        latest: The prefix that becomes ``model_checkpoint_path`` (None: nothing to record).
        recorded: Prefixes recorded, oldest first.
        timestamps: The timestamp recorded with each of them.
        skipped: The checkpoints left out because they did not verify.
        old_state: The previous state file's text (None when there was none or unreadable).
        new_state: The state file's new text (None: nothing to record).
        backup: Where the previous state file was copied (set once applied).
        changed: Whether the new state differs from the old one.
        orphan_metadata: Metadata files of the name whose checkpoint has no file left
            (``<name>-N.safeckpt.json``); applying the plan removes them.
    """

    directory: str
    name: str
    latest: str | None
    recorded: tuple[str, ...]
    timestamps: tuple[float, ...]
    skipped: tuple[Skipped, ...]
    old_state: str | None
    new_state: str | None
    backup: str | None = None
    changed: bool = True
    orphan_metadata: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dictionary of every field."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RepairPlan:
        """Rebuild a plan from `to_dict` output."""
        return from_jsonable(cls, data)


def plan_repair(directory: str, checkpoint_name: str | None = None) -> RepairPlan:
    """Work out the state file that lists exactly the checkpoints that verify (quick).

    Paths are written relative to the directory; timestamps are kept from the old state file
    when it had them, else taken from the files' modification times.
    """
    inventory = scan(directory, stats=True)
    name = checkpoint_name or inventory.default_name()
    old_times: dict[str, float] = {}
    state = inventory.state
    for recorded, stamp in zip(state.all_paths, state.timestamps, strict=False):
        if math.isfinite(stamp):  # 1e999 reads as inf: the file's time is used instead
            old_times[fs.basename(recorded.replace("\\", "/"))] = stamp
    good: list[str] = []
    stamps: list[float] = []
    skipped: list[Skipped] = []
    for info in inventory.family(name):
        verdict = check_prefix(info.prefix) if info.complete else None
        if verdict is None or not verdict.ok:
            reason = verdict.summary if verdict else ", ".join(p.value for p in info.problems)
            skipped.append(Skipped(info.prefix, reason))
            continue
        good.append(info.prefix)
        stamps.append(old_times.get(info.basename, info.mtime or 0.0))
    old_text = _read_text(fs.join(directory, STATE_FILE))
    orphans = tuple(
        n for n in inventory.orphan_metadata if split_step(n[: -len(METADATA_SUFFIX)])[0] == name
    )
    if not good:
        return RepairPlan(
            directory, name, None, (), (), tuple(skipped), old_text, None, changed=False,
            orphan_metadata=orphans,
        )  # fmt: skip
    # What TensorFlow's manager writes (paths relative to the directory), byte for byte.
    names = [fs.basename(path) for path in good]
    new_text = state_text(names[-1], names, stamps, min(stamps) - 1.0)
    return RepairPlan(
        directory,
        name,
        good[-1],
        tuple(good),
        tuple(stamps),
        tuple(skipped),
        old_text,
        new_text,
        changed=new_text != old_text,
        orphan_metadata=orphans,
    )


def _read_text(path: str) -> str | None:
    try:
        return safeio.read_bytes(path).decode("utf-8", errors="replace")
    except io_errors():  # missing, a directory, a FIFO, unreadable
        return None


def apply_repair(plan: RepairPlan) -> RepairPlan:
    """Write the planned state file, keeping the old one as ``checkpoint.bak-<timestamp>``.

    Never deletes or changes checkpoint files, and never writes through an existing file or
    link (see the module's docstring); removes the plan's orphan metadata files (a failure
    is logged). Does nothing else when the plan records nothing or changes nothing.

    Raises:
        NotRegularFileError: The state file is a FIFO, socket or device (nothing written).
        IsADirectoryError: The state file is a directory (nothing written).
        tf.errors.OpError, OSError: Writing failed.
    """
    from dataclasses import replace

    for name in plan.orphan_metadata:
        try:
            safeio.remove_entry(fs.join(plan.directory, name))
        except not_found():
            pass
        except io_errors() as exc:
            logger.warning("Could not remove %s: %s", name, exc)
    if plan.new_state is None or not plan.changed:
        return plan
    state_path = fs.join(plan.directory, STATE_FILE)
    backup = None
    try:
        old = safeio.read_bytes(state_path)
    except not_found():
        old = None
    if old is not None:
        backup = _new_backup(plan.directory, old)
    safeio.replace_file(state_path, plan.new_state.encode("utf-8"))
    return replace(plan, backup=backup)


def _new_backup(directory: str, data: bytes) -> str:
    """Write `data` into a new ``checkpoint.bak-<timestamp>[-N]`` file; returns its path."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        suffix = f"-{attempt}" if attempt else ""
        backup = fs.join(directory, f"{STATE_FILE}.bak-{stamp}{suffix}")
        try:
            safeio.write_new(backup, data)
        except FileExistsError:
            continue
        return backup
    raise FileExistsError(f"{directory}: 100 backups of the state file named {stamp} exist")
