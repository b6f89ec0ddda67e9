"""Reconciling TensorFlow's recorded state with the directory, by the one rule."""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass

from safeckpt._catalog.inventory import Inventory
from safeckpt._catalog.ranking import rank
from safeckpt._format.statefile import resolve_recorded
from safeckpt._io import tf as adapter

logger = logging.getLogger("safeckpt")


@dataclass(frozen=True)
class Reconciled:
    """What a manager's state becomes at construction.

    Attributes:
        rotation: The ``max_to_keep`` rotation, oldest first by the rule: TensorFlow's entries
            that are candidates of the manager's name (never files that are gone, outside the
            directory, or of another name), plus interrupted saves newer than the state file.
        latest: The rule's first candidate (what `latest_checkpoint` returns), or None.
        listed: Every prefix the state file lists (housekeeping never removes their files).
    """

    rotation: collections.OrderedDict[str, float]
    latest: str | None
    listed: frozenset[str]


def reconcile(
    inventory: Inventory, name: str, recorded: collections.OrderedDict[str, float]
) -> Reconciled:
    """The state a manager named `name` should have, from its `recorded` rotation."""
    ranking = rank(inventory, name)
    ours = [c for c in reversed(ranking.candidates) if c.name == name]
    local = {c.basename for c in inventory.checkpoints}
    timestamps: dict[str, float] = {}
    for path, timestamp in recorded.items():
        prefix = resolve_recorded(inventory.directory, path, local).prefix
        if prefix is not None and any(c.prefix == prefix for c in ours):
            timestamps[prefix] = timestamp
        else:
            logger.info(
                "The state file lists %s, which is not a checkpoint named %r in %s; it is "
                "kept out of the max_to_keep rotation.",
                path,
                name,
                inventory.directory,
            )
    for info in ranking.interrupted:
        timestamps[info.prefix] = inventory.mtime_of(info) or adapter.now()
    for note in (*inventory.state.oddities, *ranking.notes):
        logger.info("%s: %s", inventory.state.path, note)
    return Reconciled(
        collections.OrderedDict(
            (c.prefix, timestamps[c.prefix]) for c in ours if c.prefix in timestamps
        ),
        ranking.first.prefix if ranking.first is not None else None,
        frozenset(c.prefix for c in inventory.checkpoints if c.in_state_file),
    )
