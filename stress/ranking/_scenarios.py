"""Scenario generation for `stress.ranking`: the ops of one scenario of each family.

A scenario is plain JSON: ``{"family": ..., "config": {...}, "ops": [...]}``; its ops are
run by `stress.ranking._build.Run`. Every op tolerates a missing target, so any subset of a
scenario's ops is again a scenario (for minimizing). State-file lines may use ``{dir}`` (the
run directory at that moment), ``{base}`` (its base name) and ``{root}``.
"""

from __future__ import annotations

import random
from typing import Any

from stress.ranking._oracle import STATE

NAME = "ckpt"
OTHER = "best"
FAMILIES = (
    "state_listing",
    "path_spellings",
    "two_names",
    "mixed_writers",
    "step_patterns",
    "moved_runs",
    "damage",
)
Op = dict[str, Any]


def q(path: str) -> str:
    """A string literal in protobuf text format."""
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def state_lines(
    rng: random.Random, latest: list[str], paths: list[str], timestamps: str = "all"
) -> list[str]:
    """A hand-written state file: one or more ``model_checkpoint_path`` lines (last wins)."""
    lines = [f"all_model_checkpoint_paths: {q(p)}" for p in paths]
    n = {"all": len(paths), "none": 0, "fewer": rng.randrange(len(paths))} if paths else {}
    lines += [
        f"all_model_checkpoint_timestamps: {1.7e9 + i:.1f}" for i in range(n.get(timestamps, 0))
    ]
    for i, p in enumerate(latest):
        at = 0 if i < len(latest) - 1 else rng.randint(0, len(lines))
        lines.insert(at, f"model_checkpoint_path: {q(p)}")
    return lines


def steps_pattern(rng: random.Random) -> list[int]:
    """Step numbers of a run."""
    return rng.choice(
        [
            [3, 10, 100],
            [99, 100, 101],
            [1, 2, 3],
            [8, 9, 10, 11],
            [1, 2, 3, 4, 5],
            [5, 2, 7, 3],
            sorted(rng.sample(range(1, 40), rng.randint(1, 5))),
        ]
    )


def _saves(steps: list[int], how: str = "manager", name: str = NAME) -> list[Op]:
    return [{"op": "save", "how": how, "name": name, "step": s} for s in steps]


def gen_state_listing(rng: random.Random) -> list[Op]:
    """A hand-edited state file: a subset, shuffled or in string order, any latest."""
    steps = steps_pattern(rng)
    names = [f"{NAME}-{s}" for s in steps]
    subset = rng.sample(names, rng.randint(0, len(names)))
    if rng.random() < 0.5:
        rng.shuffle(subset)
    else:
        subset.sort()  # string order: ckpt-10 before ckpt-9
    latest = [rng.choice(names) for _ in range(rng.choice([1, 1, 2]))]
    ts = rng.choice(["all", "none", "fewer"])
    return [*_saves(steps), {"op": "state", "lines": state_lines(rng, latest, subset, ts)}]


SPELLINGS = (
    "{b}",
    "./{b}",
    "{dir}/{b}",
    "{dir}//{b}",
    "{dir}/./{b}",
    "../{base}/{b}",
    "/home/other/run/{b}",
    "C:\\Users\\other\\run\\{b}",
    "gs://bucket/run/{b}",
)


def spell(rng: random.Random, base: str) -> str:
    """One of the ways a state file can name ``<dir>/<base>``."""
    return rng.choice(SPELLINGS).replace("{b}", base)


def gen_path_spellings(rng: random.Random) -> list[Op]:
    """Every spelling of in-directory paths, plus foreign and outside entries."""
    steps = steps_pattern(rng)
    outside = max(steps) + rng.choice([1, 5, 50])
    ops = [*_saves(steps), {"op": "save", "how": "write", "step": outside, "outside": True}]
    pool = [spell(rng, f"{NAME}-{s}") for s in steps]
    pool += [f"../outside/{NAME}-{outside}", f"/home/other/run/{NAME}-{outside}"]
    paths = rng.sample(pool, rng.randint(1, len(pool)))
    latest = [rng.choice(pool)]
    ts = rng.choice(["all", "all", "none"])
    return [*ops, {"op": "state", "lines": state_lines(rng, latest, paths, ts)}]


def gen_two_names(rng: random.Random) -> list[Op]:
    """``ckpt`` and ``best`` managers saving alternately, plus an unrecorded ``write``."""
    ops: list[Op] = []
    steps = sorted(rng.sample(range(1, 30), rng.randint(2, 6)))
    only_best = rng.random() < 0.25
    for s in steps:
        if not only_best:
            ops += _saves([s])
        if rng.random() < 0.5 or only_best:
            ops += _saves([s], name=OTHER)
    if rng.random() < 0.6 and not only_best:
        ops += _saves([rng.choice([max(steps) + 1, rng.randint(1, max(steps))])], how="write")
    return ops


def gen_mixed_writers(rng: random.Random) -> list[Op]:
    """``Checkpoint.save``/``write`` mixed with manager saves."""
    steps = steps_pattern(rng)
    if rng.random() < 0.5:
        steps = [*steps, max(steps) + rng.randint(1, 3)]
    return [
        {"op": "save", "how": rng.choice(["manager", "manager", "ckpt_save", "write"]), "step": s}
        for s in steps
    ]


def gen_step_patterns(rng: random.Random) -> list[Op]:
    """3/10/100, 99/100/101, non-monotonic saves and rewinds."""
    if rng.random() < 0.5:
        top = rng.randint(3, 6)
        again = rng.randint(1, top - 1)
        return _saves([*range(1, top + 1), again])  # the state then names `again` as latest
    return _saves(steps_pattern(rng))


def gen_moved_runs(rng: random.Random) -> list[Op]:
    """Copied and moved runs, TF1-style absolute paths, moved mtimes, interrupted saves."""
    steps = steps_pattern(rng)
    ops = _saves(steps)
    names = [f"{NAME}-{s}" for s in steps]
    if rng.random() < 0.4:  # TF1 style: absolute paths of the old location
        latest = [f"{{dir}}/{names[-1]}"]
        ops.append(
            {"op": "state", "lines": state_lines(rng, latest, [f"{{dir}}/{n}" for n in names])}
        )
    if rng.random() < 0.8:
        keep, preserve = rng.random() < 0.5, rng.random() < 0.5
        ops.append({"op": "move", "preserve_mtimes": preserve, "keep_old": keep})
    if rng.random() < 0.5:  # a save interrupted before its state write
        ops += _saves([max(steps) + rng.randint(1, 3)], how="write")
    for _ in range(rng.randint(0, 2)):
        target = rng.choice([STATE, *(f"{NAME}-{s}" for s in steps)])
        ops.append({"op": "age", "target": target, "seconds": -rng.choice([1, 60, 3600])})
    return ops


def gen_damage(rng: random.Random) -> list[Op]:
    """A little damage: a deleted index or shard, a truncated shard, a broken state file."""
    steps = steps_pattern(rng)
    ops = _saves(steps)
    names = [f"{NAME}-{s}" for s in steps]
    victims = names if rng.random() < 0.15 else rng.sample(names, rng.randint(1, len(names)))
    for n in victims:
        kind = rng.choice(["index", "data", "truncate"])
        if kind == "truncate":
            ops.append({"op": "truncate", "prefix": n, "by": rng.randint(1, 8)})
        else:
            ops.append({"op": "delete", "prefix": n, "part": kind})
    state = rng.choice(["keep", "keep", "garbled", "paths_only", "missing"])
    if state == "garbled":
        ops.append({"op": "state", "lines": ['model_checkpoint_path: "ckpt-', "}{ \x01"]})
    elif state == "paths_only":
        ops.append({"op": "state", "lines": [f"all_model_checkpoint_paths: {q(n)}" for n in names]})
    elif state == "missing":
        ops.append({"op": "rm_state"})
    return ops


GENERATORS = {f: globals()[f"gen_{f}"] for f in FAMILIES}


def generate(rng: random.Random, family: str) -> list[Op]:
    """The ops of one scenario of ``family``, then metadata files beside its checkpoints.

    The metadata op draws nothing from `rng`, so the families' scenarios stay as they were.
    """
    ops: list[Op] = GENERATORS[family](rng)
    return [*ops, {"op": "metadata", "orphan": 999}]
