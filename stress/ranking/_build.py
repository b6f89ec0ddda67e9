"""Building a scenario's directory for `stress.ranking`: its ops, run in order.

Ops run in a fresh directory ``<root>/run`` (``<root>/outside`` is a sibling), writing
checkpoints with plain TensorFlow and editing files the way users do; a missing target makes
an op a no-op. Each write records its prefix, step, value and the sha256 of its files
(`stress.ranking._oracle.Written`), the facts the oracle decides from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

import tensorflow as tf

from stress.ranking._oracle import METADATA_SUFFIX, STATE, Written, prefixes_of
from stress.ranking._scenarios import NAME, Op


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
