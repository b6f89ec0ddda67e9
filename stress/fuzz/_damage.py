"""The damage kinds, and drawing a seeded case from them.

`KINDS` names every kind with its weight and generator; `make_case` draws case ``index`` of
``seed`` from ``random.Random(f"{seed}:{index}")`` alone, so any case can be replayed by
itself, and `replay_case` applies a saved list of damages again.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence

from stress.fuzz import _damage_files as files
from stress.fuzz import _damage_state as state
from stress.fuzz._case import CaseDir, Damage, Generator
from stress.fuzz._model import DATA, INDEX, STEPS, Pristine
from testing.privileges import is_root

#: Damage kinds: name -> (weight, generator, needs a non-root user).
KINDS: dict[str, tuple[float, Generator, bool]] = {
    "truncate_index": (4, files.truncate(INDEX, "truncate_index"), False),
    "truncate_data": (5, files.truncate(DATA, "truncate_data"), False),
    "extend_index": (2, files.extend(INDEX, "extend_index"), False),
    "extend_data": (3, files.extend(DATA, "extend_data"), False),
    "flip_data": (8, files.flip_data, False),
    "flip_graph": (5, files.flip_graph, False),
    "flip_index": (6, files.flip_index, False),
    "zero_data": (2, files.zero_data, False),
    "swap_data": (2, files.swap_data, False),
    "delete_index": (3, files.delete([INDEX], "delete_index"), False),
    "delete_data": (3, files.delete([DATA], "delete_data"), False),
    "delete_checkpoint": (3, files.delete([INDEX, DATA], "delete_checkpoint"), False),
    "state_delete": (3, state.delete, False),
    "state_garble": (3, state.rewrite("state_garble", state.garble), False),
    "state_truncated": (2, state.rewrite("state_truncated", state.truncated), False),
    "state_empty": (2, state.rewrite("state_empty", state.empty), False),
    "state_binary": (2, state.rewrite("state_binary", state.binary), False),
    "state_stale": (3, state.rewrite("state_stale", state.stale), False),
    "state_dangling": (2, state.rewrite("state_dangling", state.dangling), False),
    "state_abs_paths": (2, state.rewrite("state_abs_paths", state.paths("abs")), False),
    "state_foreign_paths": (
        2,
        state.rewrite("state_foreign_paths", state.paths("foreign")),
        False,
    ),
    "state_windows_paths": (
        2,
        state.rewrite("state_windows_paths", state.paths("windows")),
        False,
    ),
    "state_is_dir": (1, state.is_dir, False),
    "state_tmp": (1, state.tmp, False),
    "rename_family": (2, files.rename_family, False),
    "rename_step": (2, files.rename_step(over=False), False),
    "rename_over": (1, files.rename_step(over=True), False),
    "rename_half": (1, files.rename_half, False),
    "file_to_dir": (2, files.file_to_dir, False),
    "temp_leftover": (3, files.temp, False),
    "chmod_file": (4, files.chmod_file, True),
    "chmod_dir": (1, files.chmod_dir, True),
}


#: Kinds that damage one checkpoint's files (used to damage every checkpoint at once).
FILE_KINDS = frozenset(
    {
        "truncate_index",
        "truncate_data",
        "extend_index",
        "flip_data",
        "flip_graph",
        "flip_index",
        "zero_data",
        "swap_data",
        "delete_index",
        "delete_data",
        "delete_checkpoint",
        "file_to_dir",
        "rename_family",
        "chmod_file",
    }
)
#: Share of cases that damage every checkpoint.
EVERY_CHECKPOINT_RATE = 0.2


def draw_damages(
    rng: random.Random, case: CaseDir, kinds: Sequence[str], count: int
) -> list[Damage]:
    """Draw and apply `count` damages of the given kinds; returns them in order."""
    weights = [KINDS[k][0] for k in kinds]
    out: list[Damage] = []
    tries = 0
    while len(out) < count and tries < 50:
        tries += 1
        kind = rng.choices(list(kinds), weights=weights)[0]
        damage = KINDS[kind][1](rng, case)
        if damage is None:
            continue
        case.apply(damage)
        out.append(damage)
    return out


def available_kinds(kinds: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The kinds this process can apply, and the skipped ones with the reason."""
    wanted = list(kinds) if kinds else list(KINDS)
    unknown = [k for k in wanted if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown damage kinds {unknown}; known: {', '.join(KINDS)}")
    skipped = {
        k: "running as root (file modes do not apply)" for k in wanted if is_root() and KINDS[k][2]
    }
    return [k for k in wanted if k not in skipped], skipped


def make_case(
    pristine: Pristine, root: str, seed: int, index: int, kinds: Sequence[str]
) -> tuple[CaseDir, list[Damage], int | None]:
    """Copy the pristine directory and damage it as case `index` of `seed` does."""
    rng = random.Random(f"{seed}:{index}")
    case = CaseDir(pristine, os.path.join(root, f"case-{index}", "run"))
    max_to_keep = rng.choice([None, 5])
    damages: list[Damage] = []
    per_file = [k for k in kinds if k in FILE_KINDS]
    if per_file and rng.random() < EVERY_CHECKPOINT_RATE:
        # Damage every checkpoint (one file damage each, some of which may be benign), so
        # that cases with no intact checkpoint, fresh starts and raises are well covered.
        for step in STEPS:
            case.force_step = step
            damages += draw_damages(rng, case, per_file, 1)
        case.force_step = None
        damages += draw_damages(rng, case, kinds, rng.choice((0, 0, 1, 2)))
    else:
        count = rng.choices((1, 2, 3, 4), weights=(35, 30, 20, 15))[0]
        damages = draw_damages(rng, case, kinds, count)
    return case, damages, max_to_keep


def replay_case(
    pristine: Pristine, root: str, damages: Sequence[Damage], name: str = "replay"
) -> CaseDir:
    """A fresh copy with exactly `damages` applied."""
    case = CaseDir(pristine, os.path.join(root, name, "run"))
    for damage in damages:
        case.apply(damage)
    return case
