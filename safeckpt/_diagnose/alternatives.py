"""Naming the checkpoints to use instead of a damaged one."""

from __future__ import annotations

from dataclasses import replace

from safeckpt._catalog.inventory import scan
from safeckpt._diagnosis import Diagnosis
from safeckpt._format.layout import QUARANTINE_DIR, split_step
from safeckpt._format.verify import check_prefix
from safeckpt._io import fs
from safeckpt._io.errors import io_errors


def alternatives(prefix: str, limit: int = 3) -> list[str]:
    """Other checkpoints of the same name in the same directory that pass a quick check.

    Newest (highest step) first; used to suggest what to restore instead.
    """
    directory = fs.dirname(prefix)
    name, _step = split_step(fs.basename(prefix))
    try:
        inventory = scan(directory)
    except io_errors():
        return []
    found: list[str] = []
    for info in reversed(inventory.family(name)):
        if info.prefix == prefix or not info.complete:
            continue
        if check_prefix(info.prefix).ok:
            found.append(info.prefix)
        if len(found) >= limit:
            break
    return found


def with_alternatives(
    diagnosis: Diagnosis, prefix: str, others: list[str] | None = None
) -> Diagnosis:
    """Add suggestions naming the checkpoints to use instead of a damaged `prefix`.

    `others` are those checkpoints when the caller has found them already (`alternatives`).
    """
    others = alternatives(prefix) if others is None else [o for o in others if o != prefix]
    suggestions = list(diagnosis.suggestions)
    if others:
        suggestions.append(
            f"Restore the previous complete checkpoint instead: checkpoint.restore({others[0]!r})."
        )
    else:
        suggestions.append("No other complete checkpoint of this name exists in the directory.")
    suggestions.append(
        f"Keep the damaged files for inspection but out of the way: move {prefix}.* into "
        f"{fs.join(fs.dirname(prefix), QUARANTINE_DIR)}/."
    )
    return replace(diagnosis, suggestions=tuple(suggestions))
