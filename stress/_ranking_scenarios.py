"""Scenario generation and execution for `stress.ranking`.

A scenario is plain JSON: ``{"family": ..., "config": {...}, "ops": [...]}``. Ops run in order
in a fresh directory ``<root>/run`` (``<root>/outside`` is a sibling); every op tolerates a
missing target, so any subset of a scenario's ops is again a scenario (for minimizing).
State-file lines may use ``{dir}`` (the run directory at that moment), ``{base}`` (its base
name) and ``{root}``. Each write records its prefix, step, value and the sha256 of its files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import tensorflow as tf

from stress._ranking_oracle import METADATA_SUFFIX, STATE, Written, prefixes_of

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


def sha(path: str) -> str:
    """The sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Run:
    """Executes a scenario's ops and records what was written."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.dir = os.path.join(root, "run")
        self.outside_dir = os.path.join(root, "outside")
        os.makedirs(self.dir)
        self.facts: dict[str, Written] = {}
        self.serial = 0
        self.moves = 0

    def apply(self, op: Op) -> None:
        """Run one op; a missing target makes it a no-op."""
        getattr(self, f"_op_{op['op']}")(op)

    def _files_of(self, directory: str, base: str) -> list[str]:
        return sorted(f for f in os.listdir(directory) if prefixes_of([f]) == {base})

    def _op_save(self, op: Op) -> None:
        self.serial += 1
        step, name, how = int(op["step"]), op.get("name", NAME), op["how"]
        value = 1000.0 * self.serial + step
        directory = self.outside_dir if op.get("outside") else self.dir
        os.makedirs(directory, exist_ok=True)
        ckpt = tf.train.Checkpoint(v=tf.Variable(value), step=tf.Variable(step, dtype=tf.int64))
        if how == "manager":  # recorded in the state file like any TF2 manager save
            ckpt.save_counter.assign(step - 1)
            manager = tf.train.CheckpointManager(
                ckpt, directory, max_to_keep=None, checkpoint_name=name
            )
            manager.save(checkpoint_number=step)
        elif how == "ckpt_save":  # records only itself, clobbering the state file
            ckpt.save_counter.assign(step - 1)
            ckpt.save(os.path.join(directory, name))
        else:  # "write": not recorded in the state file
            ckpt.save_counter.assign(step)
            ckpt.write(os.path.join(directory, f"{name}-{step}"))
        if not op.get("outside"):
            base = f"{name}-{step}"
            files = self._files_of(self.dir, base)
            hashes = {f: sha(os.path.join(self.dir, f)) for f in files}
            self.facts[base] = Written(step, value, hashes)

    def _op_state(self, op: Op) -> None:
        subs = {"{dir}": self.dir, "{base}": os.path.basename(self.dir), "{root}": self.root}
        text = "\n".join(op["lines"]) + "\n"
        for k, v in subs.items():
            text = text.replace(k, v)
        Path(self.dir, STATE).write_text(text)

    def _op_rm_state(self, op: Op) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.dir, STATE))

    def _op_age(self, op: Op) -> None:
        """Move the mtime of the state file or of a checkpoint's files by ``seconds``."""
        target = op["target"]
        files = [STATE] if target == STATE else self._files_of(self.dir, target)
        for f in files:
            path = os.path.join(self.dir, f)
            if os.path.isfile(path):
                t = os.stat(path).st_mtime_ns + int(op["seconds"] * 1e9)
                os.utime(path, ns=(t, t))

    def _op_move(self, op: Op) -> None:
        self.moves += 1
        new = os.path.join(self.root, f"moved{self.moves}")
        copy = shutil.copy2 if op["preserve_mtimes"] else shutil.copy
        shutil.copytree(self.dir, new, copy_function=copy)
        if not op["keep_old"]:
            shutil.rmtree(self.dir)
        self.dir = new

    def _op_metadata(self, op: Op) -> None:
        """Metadata files as an earlier safeckpt run leaves them (docs/metadata.md).

        One beside every checkpoint of the name in the run directory, and one ``orphan``
        whose checkpoint is gone (a kill between the rotation's two deletes).
        """
        bases = {b for b in prefixes_of(os.listdir(self.dir)) if b.startswith(NAME + "-")}
        for base in sorted(bases | {f"{NAME}-{op['orphan']}"}):
            if base == f"{NAME}-{op['orphan']}" and base in bases:
                continue
            writer = {"safeckpt": "0.0.1", "tensorflow": "2.16.2", "python": "3.10.0"}
            document = {
                "format": "safeckpt-metadata",
                "version": "1.0",
                "checkpoint": base,
                "step": int(base.rsplit("-", 1)[1]),
                "time": 1.0,
                "writer": {**writer, "host": "old", "pid": 1, "task": None},
                "variables": None,
                "metrics": {},
                "metadata": {},
                "keep_best": None,
            }
            text = json.dumps(document) + "\n"
            Path(self.dir, base + METADATA_SUFFIX).write_text(text)

    def _op_delete(self, op: Op) -> None:
        for f in self._files_of(self.dir, op["prefix"]):
            if f.endswith(".index") == (op["part"] == "index"):
                os.remove(os.path.join(self.dir, f))

    def _op_truncate(self, op: Op) -> None:
        for f in self._files_of(self.dir, op["prefix"]):
            if not f.endswith(".index"):
                path = os.path.join(self.dir, f)
                os.truncate(path, max(0, os.path.getsize(path) - int(op["by"])))


# ------------------------------------------------------------------------------------------
# Generation.


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
