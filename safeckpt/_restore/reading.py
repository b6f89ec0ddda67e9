"""Reading one checkpoint into the program, for the restore engine (`safeckpt._restore.engine`).

First the match (before anything is assigned), then TensorFlow's restore.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis
from safeckpt._errors import restore_error
from safeckpt._format.verify import graph_or_diagnosis
from safeckpt._restore.candidates import create_save_counter
from safeckpt._restore.match import Match, compare, diagnose_match
from safeckpt._settings import MatchMode

logger = logging.getLogger("safeckpt")


def match_or_raise(
    checkpoint: Any, prefix: str, mode: MatchMode, attempts: Sequence[Diagnosis]
) -> Match | Diagnosis | None:
    """Match the program against `prefix` before anything is assigned; raise if it fails.

    Returns the diagnosis when safeckpt's parser cannot read the index or the object graph
    (also with ``verify="none"``: such a checkpoint is never handed to TensorFlow's reader),
    and None when there is no index at all (TensorFlow's restore decides).
    """
    create_save_counter(checkpoint)
    graph = graph_or_diagnosis(prefix)
    if isinstance(graph, Diagnosis):
        return None if graph.cause is Cause.MISSING_INDEX else graph
    match = compare(checkpoint, graph)
    found = diagnose_match(match, prefix, mode)
    if found is not None:
        raise restore_error(
            found, attempts, f"Cannot restore {prefix}: it does not fit the program.\n{found}"
        )
    if match.name_based:
        logger.warning(
            "%s is a TF1 name-based checkpoint: its %d variables are restored by name.",
            prefix,
            match.matched,
        )
    return match


def tf_restore(
    checkpoint: Any, prefix: str, options: Any, mode: MatchMode, match: Match | None
) -> Any:
    """TensorFlow's restore of `prefix`; returns its load status."""
    status = checkpoint.restore(prefix, options=options)
    if mode is MatchMode.PARTIAL:
        status.expect_partial()
    elif match is not None and match.unused:
        # One line instead of TensorFlow's warning per value at garbage collection.
        logger.info(
            "%s: %d value(s) in the checkpoint are not used by the program (e.g. %s).",
            prefix,
            len(match.unused),
            ", ".join(match.unused[:3]),
        )
        status.expect_partial()
    return status
