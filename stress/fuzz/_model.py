"""The model under test and the pristine checkpoints every case starts from.

Every variable's value identifies the checkpoint it came from (see `Model.identify`); the
pristine directory records each original file's sha256, size and tensor layout, which is
what the oracle (`stress.fuzz._oracle`) judges the damaged copies by.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from safeckpt._format.index import read_index  # reading our own, known-good files

NAME = "ckpt"
STEPS = (1, 2, 3, 4, 5)
DATA = ".data-00000-of-00001"
INDEX = ".index"
STATE = "checkpoint"
FAMILY_RE = re.compile(rf"^{NAME}-(\d+)$")
_FALLBACK_TF = ("previous_valid", "fresh_init")


@dataclass(frozen=True)
class Config:
    """One way of constructing the manager under test."""

    fallback: str  # "default" or "pv+fi"
    verify: str  # "deep" or "quick"

    @property
    def label(self) -> str:
        """Short name used in tables and JSON."""
        return f"{self.verify}/{self.fallback}"

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `SafeCheckpointManager`."""
        out: dict[str, Any] = {"verify": self.verify}
        if self.fallback == "pv+fi":
            out["fallback"] = _FALLBACK_TF
        return out


CONFIGS = (
    Config("default", "deep"),
    Config("pv+fi", "deep"),
    Config("default", "quick"),
    Config("pv+fi", "quick"),
)
BASELINE = (Config("tf", "none"),)


# ------------------------------------------------------------------------------------------
# The model: every variable's value identifies the checkpoint it came from.


def _values(k: int) -> dict[str, Any]:
    """The values of checkpoint ``k`` (``k == -1``: the initial values of a fresh model)."""
    return {
        "w": np.full((4,), float(k), np.float32),
        "step": np.int64(k),
        "tag": b"init" if k < 0 else f"run-a/step-{k:03d}".encode(),
        "kernel": np.full((3, 2), float(k), np.float32)
        + np.arange(6, dtype=np.float32).reshape(3, 2),
        "bias": np.array([k, -k], np.float32),
    }


def late_value(k: int) -> np.ndarray:
    return np.full((2,), -1.0 if k < 0 else 100.0 * k, np.float64)


class _Inner(tf.Module):  # type: ignore[misc]
    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__()
        self.kernel = tf.Variable(values["kernel"])
        self.bias = tf.Variable(values["bias"])


class Model(tf.Module):  # type: ignore[misc]
    """Nested modules, so that the object graph has more than one level."""

    def __init__(self, k: int, *, late: bool) -> None:
        super().__init__()
        values = _values(k)
        self.w = tf.Variable(values["w"])
        self.step = tf.Variable(values["step"], dtype=tf.int64)
        self.tag = tf.Variable(values["tag"], dtype=tf.string)
        self.inner = _Inner(values)
        if late:
            self.late = tf.Variable(late_value(k))

    def assign(self, k: int) -> None:
        """Set every variable to checkpoint ``k``'s values."""
        values = _values(k)
        self.w.assign(values["w"])
        self.step.assign(values["step"])
        self.tag.assign(values["tag"])
        self.inner.kernel.assign(values["kernel"])
        self.inner.bias.assign(values["bias"])
        self.late.assign(late_value(k))

    def identify(self) -> int | str:
        """The checkpoint whose values every variable holds, ``"init"``, or ``"mixed:..."``."""
        step = int(self.step.numpy())
        k = step if step in STEPS else -1
        want = _values(k)
        got = {
            "w": self.w.numpy(),
            "step": self.step.numpy(),
            "tag": self.tag.numpy(),
            "kernel": self.inner.kernel.numpy(),
            "bias": self.inner.bias.numpy(),
        }
        bad = [n for n, v in want.items() if not np.array_equal(np.asarray(got[n]), v)]
        if step not in STEPS and step != -1:
            bad.insert(0, f"step={step}")
        if bad:
            return "mixed:" + ",".join(bad)
        return "init" if k < 0 else k


def tf_checkpoint(model: Model) -> Any:
    return tf.train.Checkpoint(model=model)


# ------------------------------------------------------------------------------------------
# The pristine directory.


@dataclass(frozen=True)
class Original:
    """One checkpoint as TensorFlow wrote it."""

    step: int
    index_sha: str
    data_sha: str
    index_size: int
    data_size: int
    tensors: tuple[tuple[str, int, int], ...]  # (key, offset, size) of the variables
    graph: tuple[int, int]  # (offset, size) of the object graph tensor
    mtime: float


@dataclass(frozen=True)
class Pristine:
    """The directory every case starts from."""

    directory: str
    originals: dict[int, Original]
    states: dict[int, bytes]  # the state file as TF wrote it right after save k
    state_mtimes: dict[int, float]
    by_sha: dict[str, tuple[int, str]]  # sha256 -> (k, "index" | "data")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_pristine(root: str) -> Pristine:
    """Write ``ckpt-1..5`` with plain TensorFlow into ``<root>/pristine``."""
    directory = os.path.join(root, "pristine")
    model = Model(0, late=True)
    manager = tf.train.CheckpointManager(tf_checkpoint(model), directory, max_to_keep=None)
    t0 = time.time() - 3600.0
    states: dict[int, bytes] = {}
    state_mtimes: dict[int, float] = {}
    for k in STEPS:
        model.assign(k)
        manager.save()
        states[k] = Path(directory, STATE).read_bytes()
        state_mtimes[k] = t0 + 60 * k + 30
    originals: dict[int, Original] = {}
    by_sha: dict[str, tuple[int, str]] = {}
    for k in STEPS:
        base = os.path.join(directory, f"{NAME}-{k}")
        index_bytes = Path(base + INDEX).read_bytes()
        data_bytes = Path(base + DATA).read_bytes()
        tensors, graph = [], (0, 0)
        for entry in read_index(base + INDEX).entries:
            if entry.key == b"_CHECKPOINTABLE_OBJECT_GRAPH":
                graph = (entry.offset, entry.size)
            elif entry.size:
                tensors.append((entry.name, entry.offset, entry.size))
        originals[k] = Original(
            k,
            sha(index_bytes),
            sha(data_bytes),
            len(index_bytes),
            len(data_bytes),
            tuple(tensors),
            graph,
            t0 + 60 * k,
        )
        by_sha[sha(index_bytes)] = (k, "index")
        by_sha[sha(data_bytes)] = (k, "data")
        for suffix in (INDEX, DATA):
            os.utime(base + suffix, (t0 + 60 * k, t0 + 60 * k))
    os.utime(os.path.join(directory, STATE), (state_mtimes[5], state_mtimes[5]))
    return Pristine(directory, originals, states, state_mtimes, by_sha)
