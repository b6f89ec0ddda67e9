"""Shrinking a failing case to a minimal reproduction, and replaying a saved one.

`minimize` replays case ``index`` of ``seed`` and greedily drops damages, then operations,
while its first violation persists; `replay` re-runs the damages `minimize` saved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from stress.fuzz._case import Damage, Op
from stress.fuzz._damage import available_kinds, make_case, replay_case
from stress.fuzz._model import CONFIGS, Config, build_pristine
from stress.fuzz._oracle import Result, Truth
from stress.fuzz._run import evaluate, quiet, scratch_dir
from testing.privileges import user_name


def _shrink(items: list[Any], fails: Callable[[list[Any]], bool]) -> list[Any]:
    """Greedily drop items while `fails` stays true (to a fixpoint)."""
    changed = True
    while changed and len(items) > 1:
        changed = False
        for i in range(len(items)):
            subset = items[:i] + items[i + 1 :]
            if fails(subset):
                items, changed = subset, True
                break
    return items


def minimize(
    seed: int,
    index: int,
    *,
    kinds: Sequence[str] | None = None,
    configs: Sequence[Config] = CONFIGS,
) -> dict[str, Any]:
    """Replay case `index` of `seed` and shrink it to a minimal reproduction.

    Damages, then the operations of each damage, are dropped while the case's first violation
    (same configuration, same kind) persists. Returns the minimal case as a dictionary;
    ``damages`` can be replayed with `replay` (``--replay``).
    """
    quiet()
    usable, _skipped = available_kinds(kinds)
    with scratch_dir(None) as root:
        pristine = build_pristine(root)
        case, damages, max_to_keep = make_case(pristine, root, seed, index, usable)
        try:
            results = evaluate(case, configs, max_to_keep)[1]
        finally:
            case.remove()
        target = next(((r.config, v[0]) for r in results for v in r.violations), None)
        base = {"seed": seed, "case": index, "max_to_keep": max_to_keep, "user": user_name()}
        if target is None:
            return {**base, "violation": None, "damages": [d.to_dict() for d in damages]}
        config = next(c for c in configs if c.label == target[0])
        counter = iter(range(1 << 30))

        def check(subset: list[Damage]) -> Result:
            trial = replay_case(pristine, root, subset, f"min-{next(counter)}")
            try:
                return evaluate(trial, [config], max_to_keep)[1][0]
            finally:
                trial.remove()

        def fails(subset: list[Damage]) -> bool:
            return any(v[0] == target[1] for v in check(subset).violations)

        current = _shrink(list(damages), fails)
        for i in range(len(current)):

            def ops_fail(ops: list[Op], i: int = i) -> bool:
                damage = dataclasses.replace(current[i], ops=tuple(ops))
                return fails([*current[:i], damage, *current[i + 1 :]])

            ops = _shrink(list(current[i].ops), ops_fail)
            current[i] = dataclasses.replace(current[i], ops=tuple(ops))
        final = check(current)
        return {
            **base,
            "config": config.label,
            "violation": target[1],
            "detail": next((v[1] for v in final.violations if v[0] == target[1]), ""),
            "outcome": final.outcome,
            "original_damages": [f"{d.kind}: {d.detail}" for d in damages],
            "steps": [op.describe() for d in current for op in d.ops],
            "damages": [d.to_dict() for d in current],
        }


def replay(
    found: dict[str, Any], configs: Sequence[Config] = CONFIGS
) -> tuple[Truth, list[Result]]:
    """Re-run a case saved by `minimize` (its ``damages``) with every configuration."""
    quiet()
    damages = [Damage.from_dict(d) for d in found["damages"]]
    with scratch_dir(None) as root:
        pristine = build_pristine(root)
        case = replay_case(pristine, root, damages)
        try:
            return evaluate(case, configs, found.get("max_to_keep"))
        finally:
            case.remove()
