"""The oracle: small functions of recorded facts, independent of safeckpt's code.

A call violates the oracle when

* it did not return within the wall-clock bound (a hang: the worker is killed), or the
  worker died (an abort signal, a segfault);
* its CPU time, memory growth (peak RSS over the RSS before the call) or output exceeds a
  bound that scales with the input's real size (`Bounds`);
* an exception escaped that its documentation does not allow (`_entries`), e.g. a bare
  ``UnicodeDecodeError``, ``struct.error``, ``IndexError``, ``DecodeError``, ``MemoryError``;
* a CLI call returned an exit code other than 0, 1, 2 or printed a traceback, or its
  ``--json`` output is not strict JSON (``NaN``/``Infinity`` rejected); the same holds for a
  library result's ``to_json()``;
* anything outside the checkpoint directory changed (the canary tree above and beside it,
  and every link target), or, for a read-only entry point, anything inside it;
* a fact about the target that the case recorded when it built the input is contradicted
  (`EXPECTATIONS`): a checkpoint whose index or data shard is not a regular file, or whose
  index declares what its files cannot hold, must not verify; an untraversable directory is
  ``permission_denied``, not missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stress.hostile._case import DIRECTORY, Case, Layout
from stress.hostile._entries import ENTRIES, EntryPoint

Snapshot = dict[str, tuple[Any, ...]]


@dataclass(frozen=True)
class Bounds:
    """Per-call limits; `cpu`, `memory` and `output` grow with the input's real size."""

    timeout: float = 20.0  # wall seconds, then the worker is killed (a hang)
    cpu_base: float = 5.0  # CPU seconds ...
    cpu_per_mb: float = 2.0  # ... plus this per MB of input
    memory_base: int = 256 << 20  # peak RSS growth, bytes ...
    memory_factor: int = 20  # ... plus this many times the input's size
    output_base: int = 1 << 20  # characters of output ...
    output_factor: int = 20  # ... plus this many times the input's size
    kill_memory: int = 3 << 30  # RSS growth at which the watchdog kills the worker

    def cpu(self, input_bytes: int) -> float:
        return self.cpu_base + self.cpu_per_mb * input_bytes / 1e6

    def memory(self, input_bytes: int) -> int:
        return self.memory_base + self.memory_factor * input_bytes

    def output(self, input_bytes: int) -> int:
        return self.output_base + self.output_factor * input_bytes


# ------------------------------------------------------------------------------------------
# The canary tree


def snapshot(root: str, *, inside: bool) -> Snapshot:
    """Every entry under `root`, inside or outside the checkpoint directory.

    Never follows links and opens only regular files: type, mode, owner, size, mtime and
    content hash (regular files), target (links).
    """
    base = os.path.join(root, DIRECTORY)
    out: Snapshot = {}
    start = base if inside else root
    _walk(start, root, base, inside, out)
    if not inside:
        # The checkpoint directory's own entry: what it is, not what it holds.
        try:
            st = os.lstat(base)
            out[DIRECTORY] = (
                "entry",
                stat.S_IFMT(st.st_mode),
                os.readlink(base) if stat.S_ISLNK(st.st_mode) else "",
            )
        except OSError:
            out[DIRECTORY] = ("gone",)
    return out


def _walk(path: str, root: str, base: str, inside: bool, out: Snapshot) -> None:
    try:
        names = os.listdir(path)
    except OSError as exc:
        out[os.path.relpath(path, root) + "/"] = ("unlistable", exc.errno)
        return
    for name in names:
        full = os.path.join(path, name)
        if not inside and full == base:
            continue
        rel = os.path.relpath(full, root)
        try:
            st = os.lstat(full)
        except OSError as exc:
            out[rel] = ("unstattable", exc.errno)
            continue
        mode = st.st_mode
        common = (stat.S_IMODE(mode), st.st_uid, st.st_gid)
        if stat.S_ISREG(mode):
            out[rel] = ("file", *common, st.st_size, st.st_mtime_ns, _digest(full))
        elif stat.S_ISLNK(mode):
            out[rel] = ("link", os.readlink(full))
        elif stat.S_ISDIR(mode):
            out[rel] = ("dir", *common)
            _walk(full, root, base, inside, out)
        else:
            out[rel] = ("special", stat.S_IFMT(mode), *common)


def _digest(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def changes(before: Snapshot, after: Snapshot, limit: int = 6) -> list[str]:
    """What differs, as short lines (``+ new``, ``- gone``, ``~ changed``)."""
    lines = []
    for rel in sorted(set(before) | set(after), key=repr):
        if rel not in after:
            lines.append(f"- {rel!r}")
        elif rel not in before:
            lines.append(f"+ {rel!r} ({after[rel][0]})")
        elif before[rel] != after[rel]:
            lines.append(f"~ {rel!r} ({_what_changed(before[rel], after[rel])})")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


def _what_changed(a: tuple[Any, ...], b: tuple[Any, ...]) -> str:
    if a[0] != b[0]:
        return f"{a[0]} -> {b[0]}"
    if a[0] == "file":
        parts = []
        if a[-1] != b[-1]:
            parts.append("content")
        if a[1] != b[1]:
            parts.append(f"mode {a[1]:o}->{b[1]:o}")
        if a[-3] != b[-3]:
            parts.append(f"size {a[-3]}->{b[-3]}")
        if a[-2] != b[-2] and not parts:
            parts.append("mtime")
        return ", ".join(parts) or "owner"
    return f"{a} -> {b}"


# ------------------------------------------------------------------------------------------
# JSON


class _NotStrict(ValueError):
    pass


def _reject(name: str) -> Any:
    raise _NotStrict(f"{name} is not JSON")


def json_error(text: str) -> str | None:
    """Why `text` is not one strict JSON document (NaN and Infinity rejected), or None."""
    try:
        json.loads(text, parse_constant=_reject)
    except _NotStrict as exc:
        return str(exc)
    except ValueError as exc:
        return f"not JSON: {exc}"
    return None


# ------------------------------------------------------------------------------------------
# Expectations: facts recorded when the input was built


def _verdict(entry: EntryPoint, result: dict[str, Any]) -> bool | None:
    """Whether the entry point said the target verified (None: it did not say)."""
    if entry.cli:
        return None if result["exit"] is None else result["exit"] == 0
    if result["exc"] is not None:
        return False
    ok = result["facts"].get("ok")
    return None if ok is None else bool(ok)


def _not_healthy(entry: EntryPoint, result: dict[str, Any], level: str) -> str | None:
    if not entry.verifies or (level == "deep" and entry.verifies != "deep"):
        return None
    if _verdict(entry, result):
        return f"{entry.name} says the target verified"
    return None


def _permission(entry: EntryPoint, result: dict[str, Any]) -> str | None:
    if entry.name not in ("diagnose", "verify", "list_checkpoints"):
        return None
    exc = result["exc"]
    if exc is not None:
        mro = " ".join(exc["mro"])
        if exc["cause"] == "permission_denied" or "PermissionDenied" in mro:
            return None
        return f"raised {exc['type']} ({exc['cause']}), not permission_denied"
    cause = result["facts"].get("cause")
    if cause is not None and cause != "permission_denied":
        return f"cause {cause}, not permission_denied"
    return None


_RESTORES = ("restore", "restore_deep", "restore_ro", "save_cleanup", "save_quarantine")


def _resumes(entry: EntryPoint, result: dict[str, Any]) -> str | None:
    if entry.name not in _RESTORES:
        return None
    exc = result["exc"]
    if entry.name.startswith("save_"):
        failed = result["facts"].get("restore_error")
        return f"restore() raised {failed} although ckpt-1 is intact" if failed else None
    if exc is not None:
        return f"restore() raised {exc['type']} ({exc['cause']}) although ckpt-1 is intact"
    return None


EXPECTATIONS: dict[str, Callable[[EntryPoint, dict[str, Any]], str | None]] = {
    # quick and deep verification must reject the target
    "not_healthy": lambda e, r: _not_healthy(e, r, "quick"),
    # deep verification must reject the target (its damage is in the data)
    "deep_not_healthy": lambda e, r: _not_healthy(e, r, "deep"),
    # the directory cannot be traversed: say so, not "missing"
    "permission_denied": _permission,
    # an intact checkpoint is left (the input touched only the newest, or the state file):
    # restore() resumes from one (a fallback), it does not raise
    "resumes": _resumes,
}


# ------------------------------------------------------------------------------------------
# The verdict on one call


def allowed(entry: EntryPoint, mro: list[str]) -> bool:
    """Whether an exception with this class chain may escape `entry`."""
    return any(name in mro for name in entry.allowed)


def judge(
    case: Case,
    entry_name: str,
    layout: Layout,
    result: dict[str, Any],
    outside: tuple[Snapshot, Snapshot],
    inside: tuple[Snapshot, Snapshot],
    bounds: Bounds,
) -> list[tuple[str, str]]:
    """The violations of one call, as ``(kind, detail)``."""
    entry = ENTRIES[entry_name]
    bad: list[tuple[str, str]] = []
    died = result.get("died")
    if died:
        bad.append((died["kind"], died["detail"]))
    else:
        _judge_call(case, entry, layout, result, bounds, bad)
    moved = changes(*outside)
    if moved:
        bad.append(("outside_changed", "; ".join(moved)))
    if entry.read_only:
        moved = changes(*inside)
        if moved:
            bad.append(("readonly_changed", "; ".join(moved)))
    return bad


def _judge_call(
    case: Case,
    entry: EntryPoint,
    layout: Layout,
    result: dict[str, Any],
    bounds: Bounds,
    bad: list[tuple[str, str]],
) -> None:
    exc = result["exc"]
    if exc is not None and (entry.cli or not allowed(entry, exc["mro"])):
        where = f" at {exc['where']}" if exc["where"] else ""
        bad.append((f"escaped:{exc['type']}", f"{exc['message'][:200]}{where}"))
    if entry.cli and result["exit"] is not None:
        if result["exit"] not in (0, 1, 2):
            bad.append(("cli_exit", f"exit code {result['exit']}"))
        if "Traceback (most recent call last)" in result["stderr"]:
            bad.append(("cli_traceback", result["stderr"][-200:]))
    text = result["output"]
    if entry.json and text.strip() and result["output_len"] == len(text):
        why = json_error(text)
        if why:
            bad.append(("json", why))
    size = result["output_len"] + result["facts"].get("stderr_len", 0)
    if size > bounds.output(layout.input_bytes):
        bad.append(("output_size", f"{size:,} characters for {layout.input_bytes:,} input bytes"))
    if result["cpu"] > bounds.cpu(layout.input_bytes):
        bad.append(("slow", f"{result['cpu']:.1f} s CPU for {layout.input_bytes:,} input bytes"))
    grew = result.get("memory")
    if grew is not None and grew > bounds.memory(layout.input_bytes):
        bad.append(("memory", f"+{grew / 2**20:.0f} MiB for {layout.input_bytes:,} input bytes"))
    for name in case.expect:
        why = EXPECTATIONS[name](entry, result)
        if why:
            bad.append((f"expect:{name}", why))
