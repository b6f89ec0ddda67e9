"""`CheckpointInfo`: what the inventory knows about one checkpoint."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from safeckpt._causes import Cause
from safeckpt._public import public
from safeckpt._serialize import from_jsonable, to_jsonable


@public
@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint found in a directory (by the state file, the listing, or both).

    Attributes:
        prefix: The checkpoint prefix (absolute local path or URI), e.g. ``/runs/a/ckpt-3``.
        name: The prefix's base name without its ``-N`` step suffix, e.g. ``ckpt``.
        step: The ``N`` of ``name-N``, or None when the prefix has no step suffix.
        files: Base names of the files that belong to the checkpoint, sorted.
        size_bytes: Total size of those files, or None when not measured (or a file could
            not be stat'ed): never 0 for "unknown". `safeckpt.list_checkpoints` and
            ``safeckpt ls`` measure it; `safeckpt.diagnose` on a local directory too.
        mtime: Newest modification time of those files (seconds since the epoch), or None
            when not measured.
        in_state_file: Whether the ``checkpoint`` state file lists this prefix.
        problems: Causes found by the cheap inventory checks; empty means it looks complete.
        metadata_file: The base name of its metadata file (``<base>.safeckpt.json``) when
            the listing has one, else None (plain TensorFlow, an older safeckpt).
        metrics: The ``save(metrics=...)`` its metadata file records (`list_checkpoints`
            reads them); None when it has no readable metadata file or it was not read.
    """

    prefix: str
    name: str
    step: int | None
    files: tuple[str, ...] = ()
    size_bytes: int | None = None
    mtime: float | None = None
    in_state_file: bool = False
    problems: tuple[Cause, ...] = ()
    metadata_file: str | None = None
    metrics: dict[str, float] | None = field(default=None, hash=False)

    @property
    def complete(self) -> bool:
        """Whether the inventory found no problem with this checkpoint."""
        return not self.problems

    @property
    def basename(self) -> str:
        """The prefix's last path component, e.g. ``ckpt-3``."""
        return self.prefix.rstrip("/").rsplit("/", 1)[-1]

    def mtime_text(self) -> str:
        """The modification time as local ISO text (seconds), or ``""`` when not measured."""
        if self.mtime is None:
            return ""
        return _dt.datetime.fromtimestamp(self.mtime).isoformat(sep=" ", timespec="seconds")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dictionary of all fields."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointInfo:
        """Rebuild a `CheckpointInfo` from `to_dict` output."""
        return from_jsonable(cls, data)
