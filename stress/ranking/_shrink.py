"""Shrinking a `stress.ranking` scenario that violates the rule: ops removed one at a time."""

from __future__ import annotations

from stress.ranking._case import Scenario
from stress.ranking._run import replay


def minimize(scenario: Scenario, kind: str, workdir: str | None = None) -> Scenario:
    """Drop ops one at a time (last first) while ``kind`` is still violated."""
    best = dict(scenario)
    changed = True
    while changed:
        changed = False
        for i in reversed(range(len(best["ops"]))):
            trial = {**best, "ops": best["ops"][:i] + best["ops"][i + 1 :]}
            if any(k == kind for k, _ in replay(trial, workdir)):
                best, changed = trial, True
    return best
