"""The seeded schedule of a `stress.crash` run: which point each kill aims at, and cleanup."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from stress.crash._child import PYTHON_POINTS
from stress.crash._inject import POINTS, RANDOM


def schedule(kills: int, seed: int, strace: bool) -> list[str]:
    """Kill points for `kills` trials: every other one random, the others deterministic.

    The deterministic points come in rounds, each round every point once in a new random
    order, so that every point meets every position in a chain (the first kill of a chain
    hits a run whose first save is in progress).
    """
    rng = random.Random(seed)
    points = [p for p in POINTS if strace or p in PYTHON_POINTS]
    out: list[str] = []
    round_: list[str] = []
    for i in range(kills):
        if i % 2:
            out.append(RANDOM)
            continue
        if not round_:
            round_ = points[:]
            rng.shuffle(round_)
        out.append(round_.pop())
    return out


def cleanup_flags(plan: Sequence[str], seed: int) -> list[bool]:
    """``cleanup_temp`` of each resuming process: alternating per kill point."""
    rng = random.Random(seed + 1)
    phase: dict[str, bool] = {}
    seen: Counter[str] = Counter()
    flags = []
    for point in plan:
        phase.setdefault(point, rng.random() < 0.5)
        flags.append(phase[point] != (seen[point] % 2 == 1))
        seen[point] += 1
    return flags
