"""What a checkpoint's metadata file adds to a diagnosis: who wrote it, what it scored.

Evidence lines only (never a cause): a missing or damaged metadata file never makes a
checkpoint unusable. Reading is plain file I/O through `safeckpt._format.metadata`.
"""

from __future__ import annotations

from collections.abc import Sequence

from safeckpt._catalog.inventory import Inventory
from safeckpt._format.metadata import read_metadata
from safeckpt._io import fs

#: How many names a line lists before it says "and N more".
_SHOWN = 5


def _names(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:_SHOWN])
    more = len(paths) - _SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def metadata_evidence(prefix: str) -> list[str]:
    """Who wrote the checkpoint `prefix` and its metrics; or why its metadata is unusable.

    Empty when it has no metadata file (plain TensorFlow, an older safeckpt).
    """
    read = read_metadata(prefix)
    base = fs.basename(prefix)
    if read.problem is not None:
        return [f"{read.path} is damaged ({read.problem}); restores ignore it."]
    meta = read.metadata
    if meta is None:
        return []
    lines = [f"{base} was written by {meta.writer_text()}."]
    if meta.metrics:
        shown = ", ".join(f"{k}={v:g}" for k, v in sorted(meta.metrics.items()))
        lines.append(f"{base} recorded metrics: {shown}.")
    if meta.variables is not None:
        lines.append(
            f"{base} held {meta.variables.count} values at its save "
            f"(fingerprint {meta.variables.digest[:19]}…)."
        )
    return lines


def orphan_evidence(inventory: Inventory) -> list[str]:
    """One line per metadata file whose checkpoint has no file left."""
    return [
        f"{fs.join(inventory.directory, name)} describes a checkpoint whose files are gone "
        "(safe to remove; cleanup_temp=True or safeckpt repair does it)."
        for name in inventory.orphan_metadata
    ]


def mismatch_evidence(
    prefix: str, added: Sequence[str], removed: Sequence[str], reshaped: Sequence[str]
) -> list[str]:
    """What wrote a checkpoint that does not fit the program, and how the variables differ.

    `added`: the program's variables the checkpoint lacks; `removed`: values of the
    checkpoint the program lacks; `reshaped`: variables whose shape or dtype differs.
    Empty without a readable metadata file.
    """
    read = read_metadata(prefix)
    meta = read.metadata
    if meta is None:
        return []
    base = fs.basename(prefix)
    lines = [f"{base} was written by {meta.writer_text()}, at step {meta.step}."]
    if meta.variables is not None:
        lines.append(
            f"Its variables at the save: {meta.variables.count} values, fingerprint "
            f"{meta.variables.digest}."
        )
    for label, paths in (
        ("added since (in the program, not in the checkpoint)", added),
        ("removed since (in the checkpoint, not in the program)", removed),
        ("reshaped or retyped since", reshaped),
    ):
        if paths:
            lines.append(f"Variables {label}: {len(paths)}: {_names(list(paths))}.")
    return lines
