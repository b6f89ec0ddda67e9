"""The harness's oracle: plain functions of write-time facts. It never calls safeckpt.

A trainer records each step before its save starts, and checkpoint k holds ``v == k``; a
first writer hashes each checkpoint's files right after its save returns. What the
evaluators, the doctor and a second writer report is judged against those facts alone.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Judged:
    """What one process's sequence of decisions showed.

    Attributes:
        counts: ``decisions``, ``errors``, ``backwards`` (an older checkpoint than one it
            had), ``fresh after a checkpoint``, ``wrong values`` (not the values of the save
            named), ``never written`` (a step no save wrote), and one count per outcome.
        examples: One example of each kind of problem.
    """

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def note(self, kind: str, example: str) -> None:
        self.counts[kind] += 1
        self.examples.setdefault(kind, example)


#: The kinds of problem a sequence can show (each a violation for safeckpt).
PROBLEMS = ("errors", "backwards", "fresh after a checkpoint", "wrong values", "never written")


def judge_sequence(records: Iterable[tuple[Any, ...]], written: set[int]) -> Judged:
    """Judge one evaluator's decisions, in the order it made them.

    Each record is ``(step, value, how)`` (step None: nothing restored) or
    ``("error", text)``. A decision must never go back: never a lower step than one already
    had, never nothing after something. Values must be exactly those of the save the step
    names, and the step one a trainer wrote.
    """
    judged = Judged()
    best: int | None = None
    for index, record in enumerate(records):
        if record[0] == "error":
            judged.note("errors", f"#{index}: {record[1]}")
            continue
        step, value, how = record
        judged.counts["decisions"] += 1
        judged.counts[f"outcome {how}"] += 1
        if step is None:
            if best is not None:
                judged.note("fresh after a checkpoint", f"#{index}: nothing after ckpt-{best}")
            continue
        if best is not None and step < best:
            judged.note("backwards", f"#{index}: ckpt-{step} after ckpt-{best}")
        best = step if best is None else max(best, step)
        if value is not None and value != float(step):
            judged.note("wrong values", f"#{index}: ckpt-{step} gave v={value}")
        if step not in written:
            judged.note("never written", f"#{index}: ckpt-{step}")
    return judged


GONE = "gone"
"""What `file_hash_or_gone` records for a file another process deleted meanwhile."""


def file_hash(path: str) -> str:
    """The sha256 of a file."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def file_hash_or_gone(path: str) -> str:
    """The sha256 of a file, or `GONE` if it vanished (another writer may delete it at any time).

    With plain TF the other writer's rotation can delete a file between listing and reading.
    """
    try:
        return file_hash(path)
    except FileNotFoundError:
        return GONE


def first_writer_losses(
    directory: str, hashes: Mapping[int, Mapping[str, str]], kept: Iterable[str]
) -> list[str]:
    """Files of the first writer's kept checkpoints that are gone or changed since written.

    `hashes` is what the first writer recorded right after each save; `kept` the base
    names its manager still keeps (its ``max_to_keep`` rotation).
    """
    lost = []
    for base in kept:
        step = int(base.rsplit("-", 1)[1])
        for name, digest in sorted(hashes.get(step, {}).items()):
            now = file_hash_or_gone(os.path.join(directory, name))
            if now == GONE or digest == GONE:
                lost.append(f"{name} is gone")
            elif now != digest:
                lost.append(f"{name} was overwritten")
    return lost


def checkpoints_holding(directory: str, at_least: float) -> list[str]:
    """Checkpoints whose ``v`` is at least `at_least` (a second writer's values).

    Read with TensorFlow's own reader.
    """
    import tensorflow as tf

    found = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".index") or name.startswith("."):
            continue
        prefix = os.path.join(directory, name[: -len(".index")])
        try:
            reader = tf.train.load_checkpoint(prefix)
            key = next(k for k in reader.get_variable_to_shape_map() if k.startswith("v/"))
            if float(reader.get_tensor(key)) >= at_least:
                found.append(name[: -len(".index")])
        except Exception as exc:  # a checkpoint TensorFlow cannot read is reported too
            found.append(f"{name[: -len('.index')]} (unreadable: {type(exc).__name__})")
    return found
