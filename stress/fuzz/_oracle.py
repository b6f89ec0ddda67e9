"""The oracle: what a damaged directory holds, judged from recorded hashes, and the checks.

`compute_truth` finds the intact checkpoints by comparing every file's sha256 with the
pristine originals (independent of safeckpt's own logic); the ``check_*`` functions turn what
one configuration did (a `Result`) into violations. The rules are in `stress.fuzz`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.python.training import checkpoint_state_pb2

from stress.fuzz._case import CaseDir, family_prefixes
from stress.fuzz._model import (
    DATA,
    FAMILY_RE,
    INDEX,
    STATE,
    STEPS,
    Config,
    Model,
    late_value,
    sha,
)
from testing.privileges import is_root


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


def read_file(path: str) -> bytes | None:
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
    names |= set(family_prefixes(case))
    intact: dict[str, tuple[int, int]] = {}
    origin: dict[str, tuple[int | None, int | None]] = {}
    family_files = False
    for base in sorted(names):
        match = FAMILY_RE.match(base)
        if not match:
            continue
        origin[base] = (case.origin.get(base + INDEX), case.origin.get(base + DATA))
        index, data = read_file(case.abs(base + INDEX)), read_file(case.abs(base + DATA))
        if case.exists(base + INDEX) or case.exists(base + DATA):
            family_files = True
        if index is None or data is None:
            continue
        hi, hd = case.pristine.by_sha.get(sha(index)), case.pristine.by_sha.get(sha(data))
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
    raw = read_file(case.abs(STATE))
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
    if not FAMILY_RE.match(latest) or not case.is_file(latest + INDEX):
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


def snapshot(path: str) -> dict[str, Any]:
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
            out[name] = ("dir", st.st_mode, snapshot(full))
        else:
            data = read_file(full)
            out[name] = (st.st_size, st.st_mode, st.st_mtime_ns, data and sha(data))
    return out


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


def short_error(exc: BaseException) -> str:
    """The exception's class and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def check_causes(truth: Truth, diagnoses: Iterable[Any], bad: list[tuple[str, str]]) -> None:
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


def intact_text(truth: Truth) -> str:
    return ", ".join(
        f"{n}" + (f"(holds {k})" if int(n.rsplit("-", 1)[1]) != k else "")
        for n, (_j, k) in sorted(truth.intact.items())
    )


def check_restored(
    result: Result, truth: Truth, base: str | None, bad: list[tuple[str, str]]
) -> int:
    content = result.content
    if base is None:
        bad.append(("wrong_values", "restored, but no save_path"))
        return -1
    if not isinstance(content, int):
        bad.append(("wrong_values", f"{base} restored, variables hold {content}"))
        return -1
    match = FAMILY_RE.match(base)
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


def check_late(
    result: Result,
    model: Model,
    expected: int,
    config: Config,
    notes: Sequence[str],
    bad: list[tuple[str, str]],
) -> None:
    try:
        model.late = tf.Variable(late_value(-1))
    except Exception as exc:  # the deferred restoration raised in "user code"
        result.late = f"raised:{type(exc).__name__}"
        if config.verify == "deep":
            bad.append(("late_error", short_error(exc)))
        return
    got = model.late.numpy()
    if np.array_equal(got, late_value(expected)):
        result.late = "ok"
        return
    leaked = next((k for k in STEPS if np.array_equal(got, late_value(k))), None)
    documented = any("deferred" in n for n in notes)
    if expected == -1 and leaked is not None and config.verify != "deep" and documented:
        result.late = "leaked (noted)"
        return
    result.late = f"wrong:{got.tolist()}"
    bad.append(
        ("late_wrong", f"model.late={got.tolist()}, expected {late_value(expected).tolist()}")
    )


def check_unchanged(case: CaseDir, before: dict[str, Any], bad: list[tuple[str, str]]) -> None:
    after = snapshot(case.path)
    if after != before:
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        bad.append(("dir_modified", f"restore changed {changed}"))
