"""Near misses: checkpoints close to where the user looked (typo'd or moved directories)."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

from safeckpt._format.layout import INDEX_SUFFIX, QUARANTINE_DIR, classify, split_step
from safeckpt._io import fs
from safeckpt._io.errors import io_errors

_MAX_LISTED = 64  # subdirectories listed per level while searching: keeps errors cheap


@dataclass(frozen=True)
class CheckpointDirSummary:
    """A directory that holds checkpoints: how many, and the newest."""

    directory: str
    count: int
    newest: str | None
    newest_mtime: float | None

    def describe(self) -> str:
        """``/x/checkpoints (3 checkpoints, newest ckpt-3 written 2026-...)``."""
        text = f"{self.directory} ({self.count} checkpoint{'s' if self.count != 1 else ''}"
        if self.newest:
            text += f", newest {self.newest}"
            if self.newest_mtime is not None:
                import datetime as _dt

                when = _dt.datetime.fromtimestamp(self.newest_mtime)
                text += f" written {when.isoformat(sep=' ', timespec='seconds')}"
        return text + ")"


def _listdir(path: str) -> list[str]:
    try:
        return fs.listdir(path)
    except io_errors(UnicodeError):
        return []


def summarize(directory: str, names: list[str] | None = None) -> CheckpointDirSummary | None:
    """Summarize the checkpoints in `directory`, or None when it holds none."""
    listing = classify(_listdir(directory) if names is None else names)
    complete = listing.complete_prefixes()
    if not complete:
        return None

    def order(base: str) -> tuple[int, str]:
        step = split_step(base)[1]
        return (-1 if step is None else step, base)

    newest = max(complete, key=order)
    try:
        mtime = fs.stat(fs.join(directory, newest + INDEX_SUFFIX))[1]
    except io_errors():
        mtime = None
    if not mtime:  # ram:// reports 0: unknown
        mtime = None
    return CheckpointDirSummary(directory, len(complete), newest, mtime)


def nearest_existing_ancestor(path: str) -> str | None:
    """The closest ancestor of `path` that exists, or None."""
    current = path
    for _ in range(64):
        parent = fs.dirname(current)
        if not parent or parent == current:
            return None
        try:
            if fs.isdir(parent):
                return parent
        except io_errors():
            return None
        current = parent
    return None


def similar_checkpoint_dirs(missing: str, limit: int = 3) -> list[CheckpointDirSummary]:
    """Directories with checkpoints whose path resembles `missing`, best first.

    Looks at the nearest existing ancestor of `missing` and up to two levels below it
    (and, when that ancestor is the parent, at the siblings of `missing`).
    """
    ancestor = nearest_existing_ancestor(missing)
    if ancestor is None:
        return []
    wanted = missing[len(ancestor) :].strip("/" + os.sep)
    scored: list[tuple[float, CheckpointDirSummary]] = []
    level = [(ancestor, "")]
    for _depth in range(2):
        next_level = []
        for directory, rel in level:
            for name in sorted(_listdir(directory))[:_MAX_LISTED]:
                if name == QUARANTINE_DIR:
                    continue  # damaged checkpoints moved aside: never a suggestion
                child = fs.join(directory, name)
                child_rel = f"{rel}/{name}" if rel else name
                names = _listdir(child)
                if not names:
                    continue
                summary = summarize(child, names)
                if summary is not None:
                    ratio = difflib.SequenceMatcher(None, wanted, child_rel).ratio()
                    last = difflib.SequenceMatcher(None, fs.basename(missing), name).ratio()
                    scored.append((max(ratio, last), summary))
                next_level.append((child, child_rel))
        level = next_level[:_MAX_LISTED]
    own = summarize(ancestor)
    if own is not None:
        scored.append((0.5, own))
    scored.sort(key=lambda item: -item[0])
    return [summary for score, summary in scored if score >= 0.5][:limit]
