"""A damaged case directory and the replayable operations that damage it.

`Op` is one file-system operation, `Damage` a labelled group of them (one damage kind
applied once); `CaseDir` copies the pristine directory, applies damages and tracks which
original checkpoint each file's bytes come from. The helpers at the end are shared by the
damage generators (`stress.fuzz._damage_files`, `stress.fuzz._damage_state`).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import random
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stress.fuzz._model import DATA, FAMILY_RE, INDEX, NAME, STEPS, Pristine


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


def pick_step(rng: random.Random, case: CaseDir) -> int:
    if case.force_step is not None:
        return case.force_step
    return rng.choices(STEPS, weights=(12, 13, 15, 25, 35))[0]


def family_prefixes(case: CaseDir) -> list[str]:
    """Base names ``ckpt-N`` that have an index or data file in the directory."""
    found = set()
    for name in case.listing():
        for suffix in (INDEX, DATA):
            if name.endswith(suffix) and FAMILY_RE.match(name[: -len(suffix)]):
                found.add(name[: -len(suffix)])
    return sorted(found)


def target_file(rng: random.Random, case: CaseDir, suffix: str) -> str | None:
    """``ckpt-k<suffix>`` for a random k, preferring the newest; else any existing one."""
    want = f"{NAME}-{pick_step(rng, case)}{suffix}"
    if case.is_file(want):
        return want
    others = [p + suffix for p in family_prefixes(case) if case.is_file(p + suffix)]
    return rng.choice(others) if others else None


def rand_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))
