"""Seeded corruption fuzzer for `SafeCheckpointManager.restore`.

Run from the repository root::

    python -m stress.fuzz --cases 2000 [--seed N] [--json PATH]
    python -m stress.fuzz --seed N --only 17 [--as-nobody]  # replay one case, verbosely
    python -m stress.fuzz --seed N --only 17 --minimize --json min.json   # shrink it
    python -m stress.fuzz --replay min.json                   # re-run a shrunk case
    python -m stress.fuzz --cases 300 --baseline             # plain tf.train.CheckpointManager

The exit status is 1 when any case violates the oracle (0 with ``--baseline``).

A pristine directory is written once with TensorFlow's own `tf.train.CheckpointManager`:
``ckpt-1`` .. ``ckpt-5`` of a small model (several variables in nested modules, a string
variable, an object graph), checkpoint ``k`` holding values derived from ``k``. Each file gets
a modification time on a timeline (``ckpt-k`` at ``T0 + 60k``, the state file right after the
save it records), as if saves were a minute apart. Every case copies it and applies 1-4
random damages (see `KINDS`; a fifth of the cases damage every checkpoint, plus up to two
more) drawn from a per-case generator (``random.Random(f"{seed}:{case}")``, so any case can
be replayed alone). Then, for each of the four configurations in `CONFIGS` (verify
``deep``/``quick`` x fallback default/``("previous_valid", "fresh_init")``), it creates a
fresh model and a `SafeCheckpointManager`, calls ``restore()``, and creates one more
variable afterwards (``model.late``, restored by TensorFlow's deferred restoration, like
an optimizer slot built at the first step).

Oracle (independent of safeckpt's own logic)
--------------------------------------------
* A checkpoint is *intact* when ``<name>.index`` and ``<name>.data-00000-of-00001`` are
  regular files this process can read, byte-identical (sha256) to the index and data file of
  the **same** original checkpoint ``k``, and ``<name>`` is ``ckpt-<j>``. Its *content* is
  ``k``, its *step* is ``j``. Without renames ``j == k``.
* Renamed prefixes (decision): a checkpoint moved to another name family (``model-4``,
  ``ckpt-4.bak``, ``ckpt_4``, a subdirectory) no longer exists for a manager named
  ``ckpt``. One moved to another step (``ckpt-4`` -> ``ckpt-9``, or over ``ckpt-2``) is an
  intact checkpoint whose age is ambiguous: its name says step ``j``, its bytes say it was
  the ``k``-th save. So *newest intact* is a set: every intact checkpoint that no other
  intact one beats on both counts (higher step **and** later content). Without renames this
  is exactly the highest intact step. A garbled, stale, truncated, dangling or foreign state
  file must not change the answer, with one exception: a readable state file written *after*
  every intact checkpoint whose ``model_checkpoint_path`` names a checkpoint of the
  directory is how users roll back, and TensorFlow resumes from it; restoring that
  checkpoint is accepted too (counted as "restored the older checkpoint a newer state file
  names"). A state file older than the checkpoints (its writes were lost, or a stale copy
  kept its time) never changes the answer.
* Restoring a checkpoint that is not byte-identical is accepted only if the restored values
  are exactly those of the original its index and data came from (e.g. appended bytes after
  the data, a flip in index padding that no checksum covers) and it is not beaten by an
  intact one; such cases are counted as "benign damage accepted".

Checks, for every case and configuration (a failure is a *violation*):
    * only `safeckpt.SafeCheckpointError`s escape, each with a ``.diagnosis``;
    * no fresh start (``Outcome.INITIALIZED``) while an intact checkpoint exists;
    * a raise only when no intact checkpoint exists (or the directory itself was made
      unreadable/unwritable);
    * the restored checkpoint is a newest intact one (see above) and every variable holds
      exactly its values; after a fresh start every variable holds its initial value;
    * ``model.late`` (deferred restoration) gets the restored checkpoint's value, or its
      initial value after a fresh start; creating it raises nothing (with ``verify="deep"``);
    * ``manager.latest_checkpoint`` names the restored checkpoint, the load status passes
      ``assert_existing_objects_matched()``, and the directory is unchanged by the restore.

With ``verify="quick"`` damage inside tensor data reaches TensorFlow; the summary counts how
often TensorFlow's own checksum caught it during ``restore()`` (and what the fallback then
did), and how often it slipped past ``restore()`` entirely and surfaced when ``model.late``
was created (a documented limitation of quick verification, counted, not a violation).

Permission damage needs a non-root user (root bypasses file modes). As root it is skipped and
reported; the CLI then runs ``--unprivileged-cases`` extra cases (default: a tenth) in a child
process that drops to the user ``nobody``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from safeckpt import Outcome, SafeCheckpointError, SafeCheckpointManager

NAME = "ckpt"
STEPS = (1, 2, 3, 4, 5)
DATA = ".data-00000-of-00001"
INDEX = ".index"
STATE = "checkpoint"
_FAMILY_RE = re.compile(rf"^{NAME}-(\d+)$")
_FALLBACK_TF = ("previous_valid", "fresh_init")


def is_root() -> bool:
    """Whether this process runs as root now (asked each time: privileges can be dropped)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


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


def _late_value(k: int) -> np.ndarray:
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
            self.late = tf.Variable(_late_value(k))

    def assign(self, k: int) -> None:
        """Set every variable to checkpoint ``k``'s values."""
        values = _values(k)
        self.w.assign(values["w"])
        self.step.assign(values["step"])
        self.tag.assign(values["tag"])
        self.inner.kernel.assign(values["kernel"])
        self.inner.bias.assign(values["bias"])
        self.late.assign(_late_value(k))

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


def _checkpoint(model: Model) -> Any:
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


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_pristine(root: str) -> Pristine:
    """Write ``ckpt-1..5`` with plain TensorFlow into ``<root>/pristine``."""
    from safeckpt._index import read_index  # reading our own, known-good files

    directory = os.path.join(root, "pristine")
    model = Model(0, late=True)
    manager = tf.train.CheckpointManager(_checkpoint(model), directory, max_to_keep=None)
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
            _sha(index_bytes),
            _sha(data_bytes),
            len(index_bytes),
            len(data_bytes),
            tuple(tensors),
            graph,
            t0 + 60 * k,
        )
        by_sha[_sha(index_bytes)] = (k, "index")
        by_sha[_sha(data_bytes)] = (k, "data")
        for suffix in (INDEX, DATA):
            os.utime(base + suffix, (t0 + 60 * k, t0 + 60 * k))
    os.utime(os.path.join(directory, STATE), (state_mtimes[5], state_mtimes[5]))
    return Pristine(directory, originals, states, state_mtimes, by_sha)


# ------------------------------------------------------------------------------------------
# Damage: replayable low-level operations grouped into labelled damages.


@dataclass(frozen=True)
class Op:
    """One file-system operation, relative to the case directory (replayable).

    ``action`` is one of write, truncate, append, xor, delete, rename, copy, mkdir, chmod.
    ``data`` holds bytes for write/append (``{DIR}`` is replaced by the case directory),
    ``num`` the length/offset/mode, ``mask`` the xor mask, ``dst`` the target, ``mtime`` the
    modification time to set afterwards (None: leave the current time).
    """

    action: str
    path: str
    data: bytes = b""
    num: int = 0
    mask: int = 0
    dst: str = ""
    mtime: float | None = None

    def describe(self) -> str:
        """Human-readable, for repro reports."""
        a = self.action
        if a == "write":
            return f"write {self.path} <- {self.data[:80]!r}{'...' if len(self.data) > 80 else ''}"
        if a == "truncate":
            return f"truncate {self.path} to {self.num} bytes"
        if a == "append":
            return f"append {len(self.data)} bytes to {self.path}"
        if a == "xor":
            return f"xor byte {self.num} of {self.path} with {self.mask:#04x}"
        if a in ("rename", "copy"):
            return f"{a} {self.path} -> {self.dst}"
        if a == "chmod":
            return f"chmod {self.num:o} {self.path}"
        return f"{a} {self.path}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        out = dataclasses.asdict(self)
        out["data"] = base64.b64encode(self.data).decode()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Op:
        """Inverse of `to_dict`."""
        return cls(**{**d, "data": base64.b64decode(d["data"])})


@dataclass(frozen=True)
class Damage:
    """A labelled group of operations (one damage kind applied once)."""

    kind: str
    detail: str
    ops: tuple[Op, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        return {"kind": self.kind, "detail": self.detail, "ops": [o.to_dict() for o in self.ops]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Damage:
        """Inverse of `to_dict`."""
        return cls(d["kind"], d["detail"], tuple(Op.from_dict(o) for o in d["ops"]))


class CaseDir:
    """A damaged copy of the pristine directory, tracking where file contents came from."""

    def __init__(self, pristine: Pristine, path: str) -> None:
        self.pristine = pristine
        self.path = os.path.abspath(path)
        shutil.copytree(pristine.directory, path)
        # relative file path -> original checkpoint k whose index/data bytes it derives from
        self.origin: dict[str, int] = {}
        for k in STEPS:
            self.origin[f"{NAME}-{k}{INDEX}"] = k
            self.origin[f"{NAME}-{k}{DATA}"] = k
        self.touched: dict[str, list[str]] = {}  # relative path -> damage kinds applied
        self.dir_permission = False  # the directory's own mode was changed
        self.force_step: int | None = None  # damage this checkpoint (the "every one" mode)
        self.applied: list[Damage] = []

    def abs(self, rel: str) -> str:
        """Absolute path of a relative name (``.`` is the directory)."""
        return self.path if rel == "." else os.path.join(self.path, rel)

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` exists (without following permissions into errors)."""
        return os.path.lexists(self.abs(rel))

    def is_file(self, rel: str) -> bool:
        """Whether ``rel`` is a regular file."""
        try:
            return stat.S_ISREG(os.lstat(self.abs(rel)).st_mode)
        except OSError:
            return False

    def size(self, rel: str) -> int:
        """File size, 0 when it cannot be determined."""
        try:
            return os.lstat(self.abs(rel)).st_size
        except OSError:
            return 0

    def listing(self) -> list[str]:
        """Names in the directory (empty when it cannot be listed)."""
        try:
            return sorted(os.listdir(self.path))
        except OSError:
            return []

    def apply(self, damage: Damage) -> None:
        """Apply every operation of `damage`; an operation whose target is gone is skipped."""
        for op in damage.ops:
            with contextlib.suppress(OSError):
                self._apply(op, damage.kind)
        self.applied.append(damage)

    def _apply(self, op: Op, kind: str) -> None:
        path = self.abs(op.path)
        a = op.action
        if a == "write":
            data = op.data.replace(b"{DIR}", self.path.encode())
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            with open(path, "wb") as handle:
                handle.write(data)
            self.origin.pop(op.path, None)
        elif a == "truncate":
            os.truncate(path, op.num)
        elif a == "append":
            with open(path, "ab") as handle:
                handle.write(op.data)
        elif a == "xor":
            with open(path, "r+b") as handle:
                handle.seek(op.num)
                byte = handle.read(1)
                if not byte:
                    return
                handle.seek(op.num)
                handle.write(bytes([byte[0] ^ op.mask]))
        elif a == "delete":
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            self._forget(op.path)
        elif a == "rename":
            dst = self.abs(op.dst)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.rename(path, dst)
            moved = self.origin.pop(op.path, None)
            self.origin.pop(op.dst, None)
            if moved is not None:
                self.origin[op.dst] = moved
            self.touched[op.dst] = self.touched.pop(op.path, [])
        elif a == "copy":
            dst = self.abs(op.dst)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(path, dst)
            self.origin.pop(op.dst, None)
            if op.path in self.origin:
                self.origin[op.dst] = self.origin[op.path]
        elif a == "mkdir":
            os.makedirs(path, exist_ok=True)
            self.origin.pop(op.path, None)
        elif a == "chmod":
            os.chmod(path, op.num)
            if op.path == ".":
                self.dir_permission = True
        else:  # pragma: no cover - generator bug
            raise ValueError(f"unknown action {a}")
        if op.path != ".":
            self.touched.setdefault(op.dst if a in ("rename", "copy") else op.path, []).append(kind)
        if op.mtime is not None and os.path.exists(path):
            os.utime(path, (op.mtime, op.mtime))

    def _forget(self, rel: str) -> None:
        for key in [k for k in self.origin if k == rel or k.startswith(rel + "/")]:
            del self.origin[key]

    def restore_permissions(self) -> None:
        """Make everything accessible again so that the case can be removed."""
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o755)
        for root, dirs, files in os.walk(self.path):
            for name in dirs:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(root, name), 0o755)
            for name in files:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(root, name), 0o644)

    def remove(self) -> None:
        """Delete the case directory."""
        self.restore_permissions()
        shutil.rmtree(self.path, ignore_errors=True)


# Generators ---------------------------------------------------------------------------------

Generator = Callable[[random.Random, CaseDir], "Damage | None"]


def _pick_step(rng: random.Random, case: CaseDir) -> int:
    if case.force_step is not None:
        return case.force_step
    return rng.choices(STEPS, weights=(12, 13, 15, 25, 35))[0]


def _family_prefixes(case: CaseDir) -> list[str]:
    """Base names ``ckpt-N`` that have an index or data file in the directory."""
    found = set()
    for name in case.listing():
        for suffix in (INDEX, DATA):
            if name.endswith(suffix) and _FAMILY_RE.match(name[: -len(suffix)]):
                found.add(name[: -len(suffix)])
    return sorted(found)


def _target_file(rng: random.Random, case: CaseDir, suffix: str) -> str | None:
    """``ckpt-k<suffix>`` for a random k, preferring the newest; else any existing one."""
    want = f"{NAME}-{_pick_step(rng, case)}{suffix}"
    if case.is_file(want):
        return want
    others = [p + suffix for p in _family_prefixes(case) if case.is_file(p + suffix)]
    return rng.choice(others) if others else None


def _rand_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def _truncate(suffix: str, kind: str) -> Generator:
    def gen(rng: random.Random, case: CaseDir) -> Damage | None:
        target = _target_file(rng, case, suffix)
        if target is None or case.size(target) == 0:
            return None
        size = case.size(target)
        length = rng.choice([0, size - 1, rng.randrange(size)])
        return Damage(
            kind,
            f"{target}: {size} -> {length} bytes",
            (Op("truncate", target, num=length),),
        )

    return gen


def _extend(suffix: str, kind: str) -> Generator:
    def gen(rng: random.Random, case: CaseDir) -> Damage | None:
        target = _target_file(rng, case, suffix)
        if target is None:
            return None
        n = rng.choice([1, 8, rng.randint(1, 200)])
        data = bytes(n) if rng.random() < 0.3 else _rand_bytes(rng, n)
        return Damage(
            kind,
            f"{target}: +{n} bytes",
            (Op("append", target, data=data),),
        )

    return gen


def _flip(rng: random.Random, case: CaseDir, target: str, lo: int, hi: int) -> Op | None:
    size = case.size(target)
    hi = min(hi, size)
    if hi <= lo:
        return None
    mask = 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randint(1, 255)
    return Op("xor", target, num=rng.randrange(lo, hi), mask=mask)


def _flip_data(rng: random.Random, case: CaseDir) -> Damage | None:
    target = _target_file(rng, case, DATA)
    if target is None:
        return None
    original = case.pristine.originals[STEPS[-1]]
    key, offset, size = rng.choice(original.tensors)
    op = _flip(rng, case, target, offset, offset + size)
    return None if op is None else Damage("flip_data", f"{target}: tensor {key}", (op,))


def _flip_graph(rng: random.Random, case: CaseDir) -> Damage | None:
    target = _target_file(rng, case, DATA)
    if target is None:
        return None
    offset, size = case.pristine.originals[STEPS[-1]].graph
    op = _flip(rng, case, target, offset, offset + size)
    return None if op is None else Damage("flip_graph", f"{target}: object graph", (op,))


def _flip_index(rng: random.Random, case: CaseDir) -> Damage | None:
    target = _target_file(rng, case, INDEX)
    if target is None:
        return None
    size = case.size(target)
    lo = max(0, size - 48) if rng.random() < 0.25 else 0  # sometimes the footer
    op = _flip(rng, case, target, lo, size)
    return None if op is None else Damage("flip_index", f"{target}: byte {op.num}", (op,))


def _zero_data(rng: random.Random, case: CaseDir) -> Damage | None:
    target = _target_file(rng, case, DATA)
    if target is None:
        return None
    return Damage(
        "zero_data",
        f"{target}: same size, all zeros (power loss)",
        (Op("write", target, data=bytes(case.size(target))),),
    )


def _swap_data(rng: random.Random, case: CaseDir) -> Damage | None:
    target = _target_file(rng, case, DATA)
    if target is None:
        return None
    sources = [p + DATA for p in _family_prefixes(case) if case.is_file(p + DATA)]
    sources = [s for s in sources if s != target]
    if not sources:
        return None
    source = rng.choice(sources)
    return Damage(
        "swap_data",
        f"{target} replaced by a copy of {source} (same size)",
        (Op("copy", source, dst=target),),
    )


def _delete(suffixes: Sequence[str], kind: str) -> Generator:
    def gen(rng: random.Random, case: CaseDir) -> Damage | None:
        prefixes = _family_prefixes(case)
        if not prefixes:
            return None
        want = f"{NAME}-{_pick_step(rng, case)}"
        base = want if want in prefixes else rng.choice(prefixes)
        ops = tuple(Op("delete", base + s) for s in suffixes if case.exists(base + s))
        return Damage(kind, f"{base}: delete {'+'.join(suffixes)}", ops) if ops else None

    return gen


def _state_damage(
    kind: str, make: Callable[[random.Random, Pristine], tuple[bytes, str, float | None]]
) -> Generator:
    def gen(rng: random.Random, case: CaseDir) -> Damage | None:
        content, detail, mtime = make(rng, case.pristine)
        ops = []
        if case.exists(STATE) and not case.is_file(STATE):
            ops.append(Op("delete", STATE))
        ops.append(Op("write", STATE, data=content, mtime=mtime))
        return Damage(kind, detail, tuple(ops))

    return gen


def _garble(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    text = bytearray(p.states[5])
    how = rng.choice(["chars", "junk", "random"])
    if how == "chars":
        for _ in range(rng.randint(1, 4)):
            text[rng.randrange(len(text))] = rng.choice(b'abcxyz019_-:"{} \n/.')
        return bytes(text), "random characters changed", None
    if how == "junk":
        pos = rng.randrange(len(text))
        junk = bytes(rng.choice(b'abcdefghijklmnopqrstuvwxyz0123456789 :{}"\n') for _ in range(20))
        return bytes(text[:pos]) + junk + bytes(text[pos:]), "junk inserted", None
    n = rng.randint(1, 300)
    junk = bytes(rng.choice(b'abcdefghijklmnopqrstuvwxyz0123456789 :{}"\n.-_/') for _ in range(n))
    return junk, "random printable text", None


def _truncated_state(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    text = p.states[5]
    n = rng.randrange(1, len(text))
    return text[:n], f"cut to {n} of {len(text)} bytes", None


def _empty_state(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    content = rng.choice([b"", b"\n", b"   \n\n"])
    return content, f"{len(content)} bytes of whitespace", None


def _binary_state(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    n = rng.randint(1, 300)
    data = bytearray(_rand_bytes(rng, n))
    data[rng.randrange(n)] = 0xFF  # never valid UTF-8
    if rng.random() < 0.3:  # valid text with a binary tail (a torn write)
        return p.states[5][: rng.randrange(len(p.states[5]))] + bytes(data), "text + binary", None
    return bytes(data), "binary bytes", None


def _stale_state(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    m = rng.randint(1, 4)
    if rng.random() < 0.5:
        return p.states[m], f"the state after save {m}, written then", p.state_mtimes[m]
    return p.states[m], f"the state after save {m}, copied back now", None


def _dangling_state(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    extra = rng.sample([6, 7, 9, 12], rng.randint(1, 2))
    lines = [f'model_checkpoint_path: "{NAME}-{max(extra)}"']
    lines += [f'all_model_checkpoint_paths: "{NAME}-{k}"' for k in [*STEPS, *sorted(extra)]]
    names = ", ".join(f"{NAME}-{k}" for k in sorted(extra))
    return ("\n".join(lines) + "\n").encode(), f"also lists {names} (never written)", None


def _paths_state(kind: str) -> Callable[[random.Random, Pristine], tuple[bytes, str, float | None]]:
    def make(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
        if kind == "abs":
            base = "{DIR}/"
        elif kind == "foreign":
            base = rng.choice(
                ["/mnt/old-run/train/", "gs://bucket/run/", "../elsewhere/", "/tmp/x/"]
            )
        else:
            base = rng.choice(
                ["C:\\\\runs\\\\exp1\\\\", "D:/train/", "\\\\\\\\server\\\\share\\\\"]
            )
        text = p.states[5].decode()
        if rng.random() < 0.3:  # only model_checkpoint_path
            text = text.replace('model_checkpoint_path: "', f'model_checkpoint_path: "{base}', 1)
        else:
            text = text.replace(f'"{NAME}-', f'"{base}{NAME}-')
        return text.encode(), f"paths prefixed with {base!r}", p.state_mtimes[5]

    return make


def _state_delete(rng: random.Random, case: CaseDir) -> Damage | None:
    if not case.exists(STATE):
        return None
    return Damage("state_delete", "checkpoint state file deleted", (Op("delete", STATE),))


def _state_is_dir(rng: random.Random, case: CaseDir) -> Damage | None:
    ops = [Op("delete", STATE)] if case.exists(STATE) else []
    ops.append(Op("mkdir", STATE))
    if rng.random() < 0.5:
        ops.append(Op("write", f"{STATE}/{STATE}", data=case.pristine.states[5]))
    return Damage("state_is_dir", "the state file is a directory", tuple(ops))


def _state_tmp(rng: random.Random, case: CaseDir) -> Damage | None:
    name = f"{STATE}.tmp{rng.getrandbits(128):032x}"
    text = case.pristine.states[rng.choice(STEPS)]
    if rng.random() < 0.5:
        text = text[: rng.randrange(len(text))]
    return Damage("state_tmp", f"leftover {name}", (Op("write", name, data=text),))


_OTHER_STEPS = (0, 6, 7, 9, 12, 15)


def _rename_family(rng: random.Random, case: CaseDir) -> Damage | None:
    prefixes = _family_prefixes(case)
    if not prefixes:
        return None
    want = f"{NAME}-{_pick_step(rng, case)}"
    base = want if want in prefixes else rng.choice(prefixes)
    k = base.split("-", 1)[1]
    new = rng.choice([f"model-{k}", f"{base}.bak", f"{NAME}_{k}", f"old/{base}", f"{base}-old"])
    ops = tuple(Op("rename", base + s, dst=new + s) for s in (INDEX, DATA) if case.exists(base + s))
    return Damage("rename_family", f"{base} -> {new}", ops) if ops else None


def _rename_step(over: bool) -> Generator:
    def gen(rng: random.Random, case: CaseDir) -> Damage | None:
        prefixes = _family_prefixes(case)
        if not prefixes:
            return None
        want = f"{NAME}-{_pick_step(rng, case)}"
        base = want if want in prefixes else rng.choice(prefixes)
        if over:
            targets = [p for p in prefixes if p != base]
        else:
            targets = [f"{NAME}-{j}" for j in _OTHER_STEPS if f"{NAME}-{j}" not in prefixes]
        if not targets:
            return None
        new = rng.choice(targets)
        ops = tuple(
            Op("rename", base + s, dst=new + s)
            for s in (INDEX, DATA)
            if case.exists(base + s) or case.exists(new + s)
        )
        kind = "rename_over" if over else "rename_step"
        return Damage(kind, f"{base} -> {new}", ops) if ops else None

    return gen


def _rename_half(rng: random.Random, case: CaseDir) -> Damage | None:
    prefixes = _family_prefixes(case)
    if not prefixes:
        return None
    want = f"{NAME}-{_pick_step(rng, case)}"
    base = want if want in prefixes else rng.choice(prefixes)
    suffix = rng.choice([INDEX, DATA])
    if not case.exists(base + suffix):
        return None
    new = rng.choice([f"{NAME}-{j}" for j in (*STEPS, *_OTHER_STEPS) if f"{NAME}-{j}" != base])
    return Damage(
        "rename_half",
        f"only {base}{suffix} -> {new}{suffix}",
        (Op("rename", base + suffix, dst=new + suffix),),
    )


def _file_to_dir(rng: random.Random, case: CaseDir) -> Damage | None:
    target = _target_file(rng, case, rng.choice([INDEX, DATA]))
    if target is None:
        return None
    ops = [Op("delete", target), Op("mkdir", target)]
    if rng.random() < 0.5:
        ops.append(Op("write", f"{target}/part-0", data=b"x"))
    return Damage("file_to_dir", f"{target} is a directory", tuple(ops))


def _temp(rng: random.Random, case: CaseDir) -> Damage | None:
    how = rng.choice(["partial", "parts", "data_no_index", "stale_temp", "orphan_data"])
    src = f"{NAME}-5"
    new = f"{NAME}-6" if how != "stale_temp" else f"{NAME}-{_pick_step(rng, case)}"
    temp = f"{new}_temp"
    part = f"{temp}/part-00000-of-00001"
    tempstate = f".tempstate{rng.getrandbits(63)}"
    ops: list[Op] = [Op("mkdir", temp)]
    if how == "partial":  # killed while writing the data (K2)
        n = rng.randint(0, case.pristine.originals[5].data_size)
        ops.append(Op("write", part + DATA + tempstate, data=_rand_bytes(rng, n)))
    elif how == "parts":  # killed before the merge (K4)
        ops += [Op("copy", src + DATA, dst=part + DATA), Op("copy", src + INDEX, dst=part + INDEX)]
    elif how == "data_no_index":  # killed while writing the final index (K5)
        ops += [Op("copy", src + DATA, dst=new + DATA), Op("copy", src + INDEX, dst=part + INDEX)]
        if rng.random() < 0.5:
            ops.append(Op("write", new + INDEX, data=b""))
    elif how == "stale_temp":  # a resumed save could not remove it
        ops.append(Op("write", part + DATA + tempstate, data=_rand_bytes(rng, 10)))
    else:  # a data shard without index or temp dir (sweep interrupted, K10)
        ops = [Op("copy", src + DATA, dst=new + DATA)]
    return Damage("temp_leftover", f"{how}: {temp}", tuple(ops))


def _chmod_file(rng: random.Random, case: CaseDir) -> Damage | None:
    target = STATE if rng.random() < 0.25 else _target_file(rng, case, rng.choice([INDEX, DATA]))
    if target is None or not case.exists(target):
        return None
    mode = rng.choice([0o000, 0o200])
    return Damage("chmod_file", f"chmod {mode:o} {target}", (Op("chmod", target, num=mode),))


def _chmod_dir(rng: random.Random, case: CaseDir) -> Damage | None:
    mode = rng.choice([0o300, 0o500, 0o000, 0o100])
    return Damage("chmod_dir", f"chmod {mode:o} on the directory", (Op("chmod", ".", num=mode),))


#: Damage kinds: name -> (weight, generator, needs a non-root user).
KINDS: dict[str, tuple[float, Generator, bool]] = {
    "truncate_index": (4, _truncate(INDEX, "truncate_index"), False),
    "truncate_data": (5, _truncate(DATA, "truncate_data"), False),
    "extend_index": (2, _extend(INDEX, "extend_index"), False),
    "extend_data": (3, _extend(DATA, "extend_data"), False),
    "flip_data": (8, _flip_data, False),
    "flip_graph": (5, _flip_graph, False),
    "flip_index": (6, _flip_index, False),
    "zero_data": (2, _zero_data, False),
    "swap_data": (2, _swap_data, False),
    "delete_index": (3, _delete([INDEX], "delete_index"), False),
    "delete_data": (3, _delete([DATA], "delete_data"), False),
    "delete_checkpoint": (3, _delete([INDEX, DATA], "delete_checkpoint"), False),
    "state_delete": (3, _state_delete, False),
    "state_garble": (3, _state_damage("state_garble", _garble), False),
    "state_truncated": (2, _state_damage("state_truncated", _truncated_state), False),
    "state_empty": (2, _state_damage("state_empty", _empty_state), False),
    "state_binary": (2, _state_damage("state_binary", _binary_state), False),
    "state_stale": (3, _state_damage("state_stale", _stale_state), False),
    "state_dangling": (2, _state_damage("state_dangling", _dangling_state), False),
    "state_abs_paths": (2, _state_damage("state_abs_paths", _paths_state("abs")), False),
    "state_foreign_paths": (
        2,
        _state_damage("state_foreign_paths", _paths_state("foreign")),
        False,
    ),
    "state_windows_paths": (
        2,
        _state_damage("state_windows_paths", _paths_state("windows")),
        False,
    ),
    "state_is_dir": (1, _state_is_dir, False),
    "state_tmp": (1, _state_tmp, False),
    "rename_family": (2, _rename_family, False),
    "rename_step": (2, _rename_step(over=False), False),
    "rename_over": (1, _rename_step(over=True), False),
    "rename_half": (1, _rename_half, False),
    "file_to_dir": (2, _file_to_dir, False),
    "temp_leftover": (3, _temp, False),
    "chmod_file": (4, _chmod_file, True),
    "chmod_dir": (1, _chmod_dir, True),
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


# ------------------------------------------------------------------------------------------
# The oracle.


@dataclass(frozen=True)
class Truth:
    """What the damaged directory holds, from the files' own bytes."""

    intact: dict[str, tuple[int, int]]  # basename -> (step j, content k)
    origin: dict[str, tuple[int | None, int | None]]  # basename -> (index k, data k)
    family_files: bool  # any file of a ckpt-N prefix left
    dir_permission: bool
    touched: dict[str, tuple[str, ...]] = field(default_factory=dict)  # file -> damage kinds
    pinned: str | None = None  # see `_pinned`
    permission_damage: bool = False  # a file or directory mode was changed (as non-root)

    def beaten(self, step: int | None, content: int) -> str | None:
        """An intact checkpoint that is newer on both counts, if any."""
        for name, (j, k) in sorted(self.intact.items(), key=lambda x: (-x[1][1], -x[1][0])):
            if k > content and (step is None or j > step):
                return name
        return None


def _read(path: str) -> bytes | None:
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def compute_truth(case: CaseDir) -> Truth:
    """Which checkpoints are intact (see the module docstring)."""
    names = {p.rsplit(".", 1)[0] for p in case.origin if "/" not in p}
    names |= set(_family_prefixes(case))
    intact: dict[str, tuple[int, int]] = {}
    origin: dict[str, tuple[int | None, int | None]] = {}
    family_files = False
    for base in sorted(names):
        match = _FAMILY_RE.match(base)
        if not match:
            continue
        origin[base] = (case.origin.get(base + INDEX), case.origin.get(base + DATA))
        index, data = _read(case.abs(base + INDEX)), _read(case.abs(base + DATA))
        if case.exists(base + INDEX) or case.exists(base + DATA):
            family_files = True
        if index is None or data is None:
            continue
        hi, hd = case.pristine.by_sha.get(_sha(index)), case.pristine.by_sha.get(_sha(data))
        if hi and hd and hi[1] == "index" and hd[1] == "data" and hi[0] == hd[0]:
            intact[base] = (int(match.group(1)), hi[0])
    touched = {k: tuple(v) for k, v in case.touched.items()}
    pinned = _pinned(case, intact)
    permission = any(d.kind.startswith("chmod") for d in case.applied) and not is_root()
    return Truth(intact, origin, family_files, case.dir_permission, touched, pinned, permission)


def _pinned(case: CaseDir, intact: dict[str, tuple[int, int]]) -> str | None:
    """The checkpoint a deliberate state file names as latest, else None.

    A readable state file written after every intact checkpoint, whose
    ``model_checkpoint_path`` names a checkpoint of this directory, is how users roll back
    (TensorFlow resumes from it). Restoring that checkpoint is accepted as well as the newest
    intact one, provided every variable then holds exactly its values (checked like any
    restore: damage that no check can see and that TensorFlow never reads, such as a flipped
    tensor of a variable created later with ``verify="quick"``, does not make it wrong). A
    state file older than the checkpoints (a lost state write, a stale copy keeping its old
    time) never changes the answer.
    """
    from google.protobuf import text_format
    from tensorflow.python.training import checkpoint_state_pb2

    raw = _read(case.abs(STATE))
    if raw is None:
        return None
    state = checkpoint_state_pb2.CheckpointState()
    try:
        text_format.Parse(raw.decode("utf-8"), state)
    except (UnicodeDecodeError, text_format.ParseError):
        return None
    latest = str(state.model_checkpoint_path)
    if latest.startswith(case.path + "/"):
        latest = latest[len(case.path) + 1 :]
    if not _FAMILY_RE.match(latest) or not case.is_file(latest + INDEX):
        return None
    try:
        state_mtime = os.lstat(case.abs(STATE)).st_mtime
        newest = max(
            (os.lstat(case.abs(n + s)).st_mtime for n in intact for s in (INDEX, DATA)),
            default=0.0,
        )
    except OSError:
        return None
    return latest if state_mtime >= newest else None


def _snapshot(path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        entries = sorted(os.listdir(path))
    except OSError as exc:
        return {".": f"unlistable {exc.errno}"}
    for name in entries:
        full = os.path.join(path, name)
        try:
            st = os.lstat(full)
        except OSError:
            out[name] = "gone"
            continue
        if stat.S_ISDIR(st.st_mode):
            out[name] = ("dir", st.st_mode, _snapshot(full))
        else:
            data = _read(full)
            out[name] = (st.st_size, st.st_mode, st.st_mtime_ns, data and _sha(data))
    return out


# ------------------------------------------------------------------------------------------
# Running one configuration.


@dataclass
class Result:
    """What one configuration did with one damaged directory."""

    config: str
    outcome: str  # restored, fell_back, initialized, raised:<Class>, escaped:<Class>
    save_path: str | None = None
    content: int | str | None = None
    cause: str | None = None
    tf_caught: int = 0  # rejections after TensorFlow itself raised (quick slip-through)
    late: str = "not run"
    silent: bool = False
    pinned: bool = False  # restored the older checkpoint a newer state file names
    benign: tuple[str, ...] = ()
    violations: list[tuple[str, str]] = field(default_factory=list)


def _slipped(diagnoses: Iterable[Any]) -> int:
    return sum(
        1 for d in diagnoses if any(str(e).startswith("TensorFlow raised") for e in d.evidence)
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "site-packages" not in f.filename]
    frame = inside[-1] if inside else (frames[-1] if frames else None)
    return f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""


def run_config(case: CaseDir, config: Config, truth: Truth, max_to_keep: int | None) -> Result:
    """Restore the damaged directory with one configuration and check the oracle."""
    result = Result(config.label, "?")
    bad = result.violations
    model = Model(-1, late=False)
    checkpoint = _checkpoint(model)
    before = _snapshot(case.path)
    report = None
    manager: Any = None
    try:
        if config.fallback == "tf":
            manager = tf.train.CheckpointManager(checkpoint, case.path, max_to_keep)
            path = manager.restore_or_initialize()
            outcome = Outcome.INITIALIZED if path is None else Outcome.RESTORED
            save_path, status, notes, reason = path, None, (), None
        else:
            manager = SafeCheckpointManager(checkpoint, case.path, max_to_keep, **config.kwargs())
            report = manager.restore()
            outcome, save_path, status = report.outcome, report.save_path, report.status
            notes, reason = report.notes, report.reason
            result.tf_caught = _slipped(report.skipped)
            _check_causes(truth, [*report.skipped, report.reason], bad)
    except SafeCheckpointError as exc:
        result.outcome = f"raised:{type(exc).__name__}"
        diagnosis = exc.diagnosis
        result.cause = diagnosis.cause.value if diagnosis is not None else None
        result.tf_caught = _slipped(getattr(exc, "attempts", ()) or ())
        if diagnosis is None:
            bad.append(("no_diagnosis", _short(exc)))
        _check_causes(truth, [diagnosis, *getattr(exc, "attempts", ())], bad)
        if truth.intact and not truth.dir_permission:
            bad.append(("raised_with_intact", f"{_short(exc)}; intact: {_intact(truth)}"))
        _check_unchanged(case, before, bad)
        return result
    except Exception as exc:  # anything else escaping is a violation
        result.outcome = f"escaped:{type(exc).__name__}"
        bad.append(("escaped_exception", _short(exc) + _where(exc)))
        _check_unchanged(case, before, bad)
        return result
    result.outcome = outcome.value
    result.content = model.identify()
    base = os.path.basename(save_path) if save_path else None
    result.save_path = base
    if outcome is Outcome.INITIALIZED:
        result.silent = reason is None
        if truth.intact:
            what = "silent " if reason is None else ""
            bad.append(("fresh_with_intact", f"{what}fresh start; intact: {_intact(truth)}"))
        if result.content != "init":
            bad.append(("init_not_clean", f"after a fresh start the model holds {result.content}"))
        expected_late = -1
    else:
        expected_late = _check_restored(result, truth, base, bad)
        if save_path and os.path.normpath(os.path.dirname(save_path)) != case.path:
            bad.append(("outside_directory", f"restored {save_path}"))
        if report is not None and manager.latest_checkpoint != save_path:
            bad.append(("report_inconsistent", f"latest_checkpoint={manager.latest_checkpoint}"))
        if status is not None:
            try:
                status.assert_existing_objects_matched()
            except AssertionError as exc:
                bad.append(("status_assert", _short(exc)))
    _check_late(result, model, expected_late, config, notes, bad)
    if result.late != "ok":
        result.benign = ()  # the damage was in model.late's tensor, not benign
    _check_unchanged(case, before, bad)
    return result


def _check_causes(truth: Truth, diagnoses: Iterable[Any], bad: list[tuple[str, str]]) -> None:
    """Flag causes that cannot be right here.

    The storage is a local disk (never unavailable), and file modes only matter when a
    non-root user's damage changed them.
    """
    seen = set()
    for d in diagnoses:
        if d is None or (d.checkpoint, d.cause) in seen:
            continue
        seen.add((d.checkpoint, d.cause))
        cause = d.cause.value
        if cause == "storage_unavailable" or (
            cause == "permission_denied" and not truth.permission_damage
        ):
            name = os.path.basename(d.checkpoint or "") or "the directory"
            bad.append(("misdiagnosed", f"{name}: {cause}: {d.summary} ({d.error or ''})"))


def _intact(truth: Truth) -> str:
    return ", ".join(
        f"{n}" + (f"(holds {k})" if int(n.rsplit("-", 1)[1]) != k else "")
        for n, (_j, k) in sorted(truth.intact.items())
    )


def _check_restored(
    result: Result, truth: Truth, base: str | None, bad: list[tuple[str, str]]
) -> int:
    content = result.content
    if base is None:
        bad.append(("wrong_values", "restored, but no save_path"))
        return -1
    if not isinstance(content, int):
        bad.append(("wrong_values", f"{base} restored, variables hold {content}"))
        return -1
    match = _FAMILY_RE.match(base)
    step = int(match.group(1)) if match else None
    if base in truth.intact:
        _j, k = truth.intact[base]
        if content != k:
            bad.append(("wrong_values", f"{base} holds {k}, variables hold {content}"))
    else:
        index_k, data_k = truth.origin.get(base, (None, None))
        if not (index_k == data_k == content):
            bad.append(
                (
                    "damaged_restored",
                    f"{base} (index from {index_k}, data from {data_k}) restored as {content}",
                )
            )
        result.benign = tuple(
            sorted({k for s in (INDEX, DATA) for k in truth.touched.get(base + s, ())})
        )
    beaten = truth.beaten(step, content)
    if beaten is not None and base == truth.pinned:
        result.pinned = True
    elif beaten is not None:
        bad.append(("not_newest", f"restored {base} ({content}), but {beaten} is intact and newer"))
    return content


def _check_late(
    result: Result,
    model: Model,
    expected: int,
    config: Config,
    notes: Sequence[str],
    bad: list[tuple[str, str]],
) -> None:
    try:
        model.late = tf.Variable(_late_value(-1))
    except Exception as exc:  # the deferred restoration raised in "user code"
        result.late = f"raised:{type(exc).__name__}"
        if config.verify == "deep":
            bad.append(("late_error", _short(exc)))
        return
    got = model.late.numpy()
    if np.array_equal(got, _late_value(expected)):
        result.late = "ok"
        return
    leaked = next((k for k in STEPS if np.array_equal(got, _late_value(k))), None)
    documented = any("deferred" in n for n in notes)
    if expected == -1 and leaked is not None and config.verify != "deep" and documented:
        result.late = "leaked (noted)"
        return
    result.late = f"wrong:{got.tolist()}"
    bad.append(
        ("late_wrong", f"model.late={got.tolist()}, expected {_late_value(expected).tolist()}")
    )


def _check_unchanged(case: CaseDir, before: dict[str, Any], bad: list[tuple[str, str]]) -> None:
    after = _snapshot(case.path)
    if after != before:
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        bad.append(("dir_modified", f"restore changed {changed}"))


# ------------------------------------------------------------------------------------------
# Cases and the summary.


@dataclass
class CaseRecord:
    """One case: its damages and the result of every configuration."""

    index: int
    damages: list[Damage]
    truth: Truth
    results: list[Result]
    max_to_keep: int | None


@dataclass
class Summary:
    """Aggregated results of a fuzzing run."""

    seed: int
    cases: int = 0
    configs: tuple[str, ...] = ()
    user: str = ""
    kinds: str = ""  # the --kinds restriction, if any
    damage_kinds: Counter[str] = field(default_factory=Counter)
    skipped_kinds: dict[str, str] = field(default_factory=dict)
    damages_per_case: Counter[int] = field(default_factory=Counter)
    cases_with_intact: int = 0
    cases_without_intact: int = 0
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    tf_caught: dict[str, Counter[str]] = field(default_factory=dict)
    late: dict[str, Counter[str]] = field(default_factory=dict)
    benign: dict[str, Counter[str]] = field(default_factory=dict)
    silent_init_with_damaged: dict[str, int] = field(default_factory=dict)
    pinned: dict[str, int] = field(default_factory=dict)
    violation_counts: Counter[str] = field(default_factory=Counter)
    violations: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no case violated the oracle."""
        return not self.violations

    def add(self, record: CaseRecord, keep: int = 200) -> None:
        """Fold one case into the summary."""
        self.cases += 1
        self.damages_per_case[len(record.damages)] += 1
        for damage in record.damages:
            self.damage_kinds[damage.kind] += 1
        if record.truth.intact:
            self.cases_with_intact += 1
        else:
            self.cases_without_intact += 1
        for r in record.results:
            self.outcomes.setdefault(r.config, Counter())[r.outcome] += 1
            if r.outcome.startswith(("raised", "escaped")):
                key = f"{r.outcome}/{r.cause}" if r.cause else r.outcome
                self.errors.setdefault(r.config, Counter())[key] += 1
            if r.tf_caught:
                self.tf_caught.setdefault(r.config, Counter())[_after_slip(r, record.truth)] += 1
            self.late.setdefault(r.config, Counter())[r.late] += 1
            for kind in r.benign:
                self.benign.setdefault(r.config, Counter())[kind] += 1
            if r.pinned:
                self.pinned[r.config] = self.pinned.get(r.config, 0) + 1
            if (
                r.outcome == "initialized"
                and r.silent
                and record.truth.family_files
                and not record.truth.intact
            ):
                self.silent_init_with_damaged[r.config] = (
                    self.silent_init_with_damaged.get(r.config, 0) + 1
                )
            for kind, detail in r.violations:
                self.violation_counts[f"{r.config} {kind}"] += 1
                if len(self.violations) < keep:
                    self.violations.append(
                        {
                            "seed": self.seed,
                            "user": self.user,
                            "kinds": self.kinds,
                            "case": record.index,
                            "config": r.config,
                            "max_to_keep": record.max_to_keep,
                            "violation": kind,
                            "detail": detail,
                            "outcome": r.outcome,
                            "restored": r.save_path,
                            "intact": _intact(record.truth),
                            "damages": [f"{d.kind}: {d.detail}" for d in record.damages],
                        }
                    )

    def merge(self, other: Summary) -> None:
        """Add another run's figures (e.g. the unprivileged pass) to this one."""
        self.cases += other.cases
        self.damage_kinds.update(other.damage_kinds)
        self.damages_per_case.update(other.damages_per_case)
        self.cases_with_intact += other.cases_with_intact
        self.cases_without_intact += other.cases_without_intact
        for mine, theirs in (
            (self.outcomes, other.outcomes),
            (self.errors, other.errors),
            (self.tf_caught, other.tf_caught),
            (self.late, other.late),
            (self.benign, other.benign),
        ):
            for key, counter in theirs.items():
                mine.setdefault(key, Counter()).update(counter)
        for mine_n, theirs_n in (
            (self.silent_init_with_damaged, other.silent_init_with_damaged),
            (self.pinned, other.pinned),
        ):
            for key, n in theirs_n.items():
                mine_n[key] = mine_n.get(key, 0) + n
        self.violation_counts.update(other.violation_counts)
        self.violations += other.violations
        self.skipped_kinds = {
            k: v for k, v in self.skipped_kinds.items() if other.damage_kinds.get(k, 0) == 0
        }
        self.seconds += other.seconds
        self.user += f" + {other.user}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                value = {str(k): dict(v) if isinstance(v, dict) else v for k, v in value.items()}
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out["ok"] = self.ok
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        """Inverse of `to_dict` (for the unprivileged child)."""
        d = dict(d)
        d.pop("ok", None)
        s = cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})
        s.configs = tuple(s.configs)
        s.damage_kinds = Counter(s.damage_kinds)
        s.damages_per_case = Counter({int(k): v for k, v in s.damages_per_case.items()})
        s.violation_counts = Counter(s.violation_counts)
        for name in ("outcomes", "errors", "tf_caught", "late", "benign"):
            setattr(s, name, {k: Counter(v) for k, v in getattr(s, name).items()})
        return s

    def table(self) -> str:
        """The human-readable summary."""
        lines = [
            f"safeckpt corruption fuzzer: {self.cases} cases, seed {self.seed}, "
            f"{self.seconds:.0f} s, as {self.user}",
            f"  cases with an intact checkpoint left: {self.cases_with_intact}, "
            f"without: {self.cases_without_intact}; damages per case: "
            + ", ".join(f"{n}: {c}" for n, c in sorted(self.damages_per_case.items())),
            "",
            "Damage kinds applied:",
        ]
        kinds = sorted(self.damage_kinds.items(), key=lambda x: (-x[1], x[0]))
        for i in range(0, len(kinds), 4):
            lines.append("  " + "".join(f"{k:<22}{n:>5}   " for k, n in kinds[i : i + 4]))
        for kind, why in sorted(self.skipped_kinds.items()):
            lines.append(f"  {kind:<22} skipped: {why}")
        configs = list(self.configs)
        width = 52  # of the label column
        lines += ["", "Outcomes per configuration (verify/fallback):"]
        header = "  " + f"{'':<{width}}" + "".join(f"{c:>16}" for c in configs)
        lines.append(header)
        rows = sorted({o for c in configs for o in self.outcomes.get(c, {})})
        for row in rows:
            cells = "".join(f"{self.outcomes.get(c, Counter()).get(row, 0):>16}" for c in configs)
            lines.append(f"  {row:<{width}}{cells}")
        error_rows = sorted({e for c in configs for e in self.errors.get(c, {})})
        if error_rows:
            lines += ["", "Errors raised (class/cause):"]
            for row in error_rows:
                cells = "".join(f"{self.errors.get(c, Counter()).get(row, 0):>16}" for c in configs)
                lines.append(f"  {row[:width]:<{width}}{cells}")
        slip_rows = sorted({e for c in configs for e in self.tf_caught.get(c, {})})
        lines += ["", "Damage that passed verification and was caught by TensorFlow's own"]
        lines += ["checksums inside restore(), and what the fallback then did:"]
        if not slip_rows:
            lines.append("  (none)")
        for row in slip_rows:
            cells = "".join(f"{self.tf_caught.get(c, Counter()).get(row, 0):>16}" for c in configs)
            lines.append(f"  {row:<{width}}{cells}")
        late_rows = sorted({e for c in configs for e in self.late.get(c, {})})
        lines += ["", "model.late, created after restore() (deferred restoration):"]
        for row in late_rows:
            cells = "".join(f"{self.late.get(c, Counter()).get(row, 0):>16}" for c in configs)
            lines.append(f"  {row:<{width}}{cells}")
        benign_rows = sorted({e for c in configs for e in self.benign.get(c, {})})
        if benign_rows:
            lines += [
                "",
                "Restored although not byte-identical (values verified exact), by damage:",
            ]
            for row in benign_rows:
                cells = "".join(f"{self.benign.get(c, Counter()).get(row, 0):>16}" for c in configs)
                lines.append(f"  {row:<{width}}{cells}")
        if self.pinned:
            cells = "".join(f"{self.pinned.get(c, 0):>16}" for c in configs)
            lines += [
                "",
                "Restored the older checkpoint a newer, readable state file names (allowed):",
            ]
            lines.append(f"  {'(TensorFlow does the same)':<{width}}{cells}")
        if self.silent_init_with_damaged:
            cells = "".join(f"{self.silent_init_with_damaged.get(c, 0):>16}" for c in configs)
            lines += ["", "Fresh start without a reason while only damaged files were left:"]
            lines.append(f"  {'(not a violation: none intact)':<{width}}{cells}")
        lines += [""]
        if self.ok:
            lines.append("VIOLATIONS: none")
        else:
            lines.append(f"VIOLATIONS: {sum(self.violation_counts.values())}")
            for key, n in sorted(self.violation_counts.items()):
                lines.append(f"  {key:<50}{n:>6}")
            lines.append(
                "First violations (replay one: python -m stress.fuzz --seed S --only CASE,"
            )
            lines.append("add --minimize to shrink it, --as-nobody for the unprivileged pass):")
            for v in self.violations[:12]:
                who = " --as-nobody" if str(v.get("user", "")).startswith("nobody") else ""
                who += f" --kinds {v['kinds']}" if v.get("kinds") else ""
                lines.append(
                    f"  --seed {v.get('seed')} --only {v.get('case')}{who} [{v.get('config')}] "
                    f"{v.get('violation')}: {v.get('detail')}"
                )
                lines.append(f"      damages: {'; '.join(v['damages'])}")
        return "\n".join(lines)


def _after_slip(result: Result, truth: Truth) -> str:
    if result.outcome in ("restored", "fell_back"):
        ok = not any(k in ("not_newest", "wrong_values") for k, _ in result.violations)
        return "fell back to newest intact" if ok else "fell back to a wrong one"
    if result.outcome == "initialized":
        return "fresh start (none intact)" if not truth.intact else "fresh start (INTACT LEFT)"
    return f"raised ({'none intact' if not truth.intact else 'INTACT LEFT'})"


def _quiet() -> None:
    logging.getLogger("safeckpt").setLevel(logging.CRITICAL)
    tf.get_logger().setLevel(logging.ERROR)
    with contextlib.suppress(Exception):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)


@contextlib.contextmanager
def _workdir(root: str | None) -> Iterator[str]:
    if root is not None:
        os.makedirs(root, exist_ok=True)
        yield root
        return
    path = tempfile.mkdtemp(prefix="safeckpt-fuzz-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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


def evaluate(
    case: CaseDir, configs: Sequence[Config], max_to_keep: int | None
) -> tuple[Truth, list[Result]]:
    """Compute the truth, then run every configuration."""
    truth = compute_truth(case)
    results = [run_config(case, c, truth, max_to_keep) for c in configs]
    return truth, results


def run(
    cases: int,
    seed: int,
    *,
    kinds: Sequence[str] | None = None,
    configs: Sequence[Config] = CONFIGS,
    workdir: str | None = None,
    progress: Callable[[int, Summary], None] | None = None,
) -> Summary:
    """Run `cases` seeded cases and return the summary (see the module docstring)."""
    _quiet()
    usable, skipped = available_kinds(kinds)
    summary = Summary(seed=seed, configs=tuple(c.label for c in configs))
    summary.skipped_kinds = skipped
    summary.kinds = ",".join(kinds) if kinds else ""
    summary.user = _user()
    start = time.monotonic()
    with _workdir(workdir) as root:
        pristine = build_pristine(root)
        for index in range(cases):
            case, damages, max_to_keep = make_case(pristine, root, seed, index, usable)
            try:
                truth, results = evaluate(case, configs, max_to_keep)
            finally:
                case.remove()
                shutil.rmtree(os.path.dirname(case.path), ignore_errors=True)
            summary.add(CaseRecord(index, damages, truth, results, max_to_keep))
            if progress is not None:
                progress(index + 1, summary)
    summary.seconds = time.monotonic() - start
    return summary


# ------------------------------------------------------------------------------------------
# Minimization and repro.


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
    _quiet()
    usable, _skipped = available_kinds(kinds)
    with _workdir(None) as root:
        pristine = build_pristine(root)
        case, damages, max_to_keep = make_case(pristine, root, seed, index, usable)
        try:
            results = evaluate(case, configs, max_to_keep)[1]
        finally:
            case.remove()
        target = next(((r.config, v[0]) for r in results for v in r.violations), None)
        base = {"seed": seed, "case": index, "max_to_keep": max_to_keep, "user": _user()}
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
    _quiet()
    damages = [Damage.from_dict(d) for d in found["damages"]]
    with _workdir(None) as root:
        pristine = build_pristine(root)
        case = replay_case(pristine, root, damages)
        try:
            return evaluate(case, configs, found.get("max_to_keep"))
        finally:
            case.remove()


def _print_case(damages: Sequence[Damage], truth: Truth, results: Sequence[Result]) -> None:
    for d in damages:
        print(f"damage {d.kind}: {d.detail}")
        for op in d.ops:
            print(f"    {op.describe()}")
    print(f"intact: {_intact(truth) or '(none)'}")
    for r in results:
        print(
            f"  {r.config:<14} {r.outcome:<34} restored={r.save_path} values={r.content} "
            f"cause={r.cause} late={r.late} tf_caught={r.tf_caught}"
        )
        for kind, detail in r.violations:
            print(f"      VIOLATION {kind}: {detail}")


# ------------------------------------------------------------------------------------------
# Command line.

_CHILD_FLAG = "--as-unprivileged-child"


def _nobody_exists() -> bool:
    try:
        import pwd

        pwd.getpwnam("nobody")
    except (ImportError, KeyError):
        return False
    return True


def _child(argv: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m stress.fuzz <argv>`` in a child that drops to ``nobody``."""
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo}
    cmd = [sys.executable, "-m", "stress.fuzz", _CHILD_FLAG, *argv]
    return subprocess.run(cmd, cwd=repo, env=env, check=False)


def _run_unprivileged(args: argparse.Namespace, cases: int) -> Summary:
    """Run `cases` extra cases (seed + 1) as ``nobody``, for the permission damage."""
    out_dir = tempfile.mkdtemp(prefix="safeckpt-fuzz-out-")
    os.chmod(out_dir, 0o777)  # the child runs as nobody
    out = os.path.join(out_dir, "summary.json")
    argv = ["--cases", str(cases), "--seed", str(args.seed + 1), "--json", out, "--quiet"]
    argv += ["--no-table", "--unprivileged-cases", "0"]
    if args.kinds:
        argv += ["--kinds", args.kinds]
    proc = _child(argv)
    try:
        with open(out) as handle:
            return Summary.from_dict(json.load(handle))
    except OSError:
        failed = Summary(seed=args.seed + 1, user="nobody")
        failed.violation_counts["unprivileged pass: harness failed"] += 1
        failed.violations.append({"violation": "harness", "detail": f"exit {proc.returncode}"})
        return failed
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def _drop_privileges() -> None:
    import pwd

    user = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


def _user() -> str:
    if not hasattr(os, "geteuid"):
        return "?"
    try:
        import pwd

        return f"{pwd.getpwuid(os.geteuid()).pw_name} (uid {os.geteuid()})"
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 on any violation)."""
    parser = argparse.ArgumentParser(
        prog="python -m stress.fuzz", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--cases", type=int, default=2000, help="number of cases (2000)")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--json", help="also write the summary (or minimized case) as JSON")
    parser.add_argument("--kinds", help="comma-separated damage kinds (default: all)")
    parser.add_argument("--only", type=int, help="run only this case number, verbosely")
    parser.add_argument("--minimize", action="store_true", help="with --only: shrink the case")
    parser.add_argument("--replay", help="re-run a case written by --minimize --json")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="test plain tf.train.CheckpointManager.restore_or_initialize instead "
        "(for comparison; exit status 0)",
    )
    parser.add_argument(
        "--unprivileged-cases",
        type=int,
        default=None,
        help="as root: extra cases run as 'nobody' with permission damage (default: cases/10)",
    )
    parser.add_argument(
        "--as-nobody", action="store_true", help="as root: run everything as 'nobody'"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--no-table", action="store_true", help="do not print the summary")
    parser.add_argument(_CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    if args.as_nobody and is_root() and not args.as_unprivileged_child:
        if not _nobody_exists():
            parser.error("--as-nobody: there is no user 'nobody'")
        return _child([a for a in raw if a != "--as-nobody"]).returncode
    if args.as_unprivileged_child and is_root():
        _drop_privileges()
    kinds = args.kinds.split(",") if args.kinds else None
    configs = BASELINE if args.baseline else CONFIGS
    if args.replay:
        with open(args.replay) as handle:
            found = json.load(handle)
        truth, results = replay(found, configs)
        _print_case([Damage.from_dict(d) for d in found["damages"]], truth, results)
        return 1 if any(r.violations for r in results) and not args.baseline else 0
    if args.only is not None:
        return _run_only(args, kinds, configs)

    def progress(done: int, summary: Summary) -> None:
        if not args.quiet and (done % 100 == 0 or done == args.cases):
            n = sum(summary.violation_counts.values())
            print(f"  {done}/{args.cases} cases, {n} violations", file=sys.stderr, flush=True)

    summary = run(args.cases, args.seed, kinds=kinds, configs=configs, progress=progress)
    extra = args.unprivileged_cases
    if extra is None:
        extra = args.cases // 10 if not args.baseline else 0
    if extra and is_root() and not args.as_unprivileged_child:
        if _nobody_exists():
            summary.merge(_run_unprivileged(args, extra))
        else:
            print("no user 'nobody': permission damage not exercised", file=sys.stderr)
    if not args.no_table:
        print(summary.table())
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary.to_dict(), handle, indent=1, default=str)
    return 0 if summary.ok or args.baseline else 1


def _run_only(
    args: argparse.Namespace, kinds: Sequence[str] | None, configs: Sequence[Config]
) -> int:
    if args.minimize:
        found = minimize(args.seed, args.only, kinds=kinds, configs=configs)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(found, handle, indent=1)
        shown = {k: v for k, v in found.items() if k != "damages"}
        print(json.dumps(shown, indent=2))
        return 1 if found.get("violation") and not args.baseline else 0
    _quiet()
    usable, _skipped = available_kinds(kinds)
    with _workdir(None) as root:
        pristine = build_pristine(root)
        case, damages, max_to_keep = make_case(pristine, root, args.seed, args.only, usable)
        try:
            truth, results = evaluate(case, configs, max_to_keep)
        finally:
            case.remove()
    print(f"seed {args.seed}, case {args.only}, max_to_keep={max_to_keep}, as {_user()}")
    _print_case(damages, truth, results)
    return 1 if any(r.violations for r in results) and not args.baseline else 0


if __name__ == "__main__":
    sys.exit(main())
