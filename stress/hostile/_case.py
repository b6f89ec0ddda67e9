"""A hostile case: the operations that build its directory, the entry point, and the tree.

`Op` is one replayable file-system operation relative to the case root; `Case` is what one
seeded case is (input family and kind, its operations, the entry point to call, what the
independent facts say about the target checkpoint); `build_case` lays out a case root:

    <root>/thesis.tex          a canary file above the checkpoint directory
    <root>/canary/...          a canary directory above it (files and a subdirectory)
    <root>/outside/...         link targets: a file, a directory, a whole checkpoint
    <root>/run/sibling.txt     a canary beside the checkpoint directory
    <root>/run/ckpts/          THE checkpoint directory: a copy of the pristine ckpt-1..3

then applies the case's operations. Everything outside ``run/ckpts`` is hashed before and
after every call (`stress.hostile._oracle.snapshot`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
from dataclasses import dataclass

#: The checkpoint directory, relative to the case root.
DIRECTORY = "run/ckpts"
NAME = "ckpt"
STEPS = (1, 2, 3)
DATA = ".data-00000-of-00001"
INDEX = ".index"
STATE = "checkpoint"
#: Every file's modification time is set relative to this fixed instant (deterministic
#: state files; leftovers older than the checkpoints, as `cleanup_temp` requires).
T0 = 1_700_000_000.0
#: Placeholder for the case root's absolute path inside `Op.data` and `Op.dst`.
ROOT = "{ROOT}"


def ckpt_time(step: int) -> float:
    return T0 + 60.0 * step


@dataclass(frozen=True)
class Op:
    """One file-system operation; paths are relative to the case root (surrogate-escaped).

    ``action``: write, append, truncate, patch (write `data` at offset `num`), xor (byte
    `num` with mask `mask`), delete, mkdir, mkfifo, socket, symlink (`path` -> text `dst`),
    hardlink (`path` -> existing `dst`), chmod (`num`), rename (to `dst`), copy (to `dst`),
    own (chown the tree at `path` to the unprivileged user), utime (`num` seconds after T0;
    links themselves, not their targets).
    """

    action: str
    path: str
    data: bytes = b""
    num: int = 0
    mask: int = 0
    dst: str = ""

    def describe(self) -> str:
        """One readable line, for case reports and findings."""
        a, p = self.action, repr(self.path)[1:-1]
        if a in ("write", "append"):
            shown = self.data[:60]
            more = f"... ({len(self.data)} bytes)" if len(self.data) > 60 else ""
            return f"{a} {p} <- {shown!r}{more}"
        if a == "patch":
            return f"patch {p} at {self.num}: {self.data[:40].hex()}"
        if a == "xor":
            return f"xor byte {self.num} of {p} with {self.mask:#04x}"
        if a == "truncate":
            return f"truncate {p} to {self.num} bytes"
        if a in ("symlink", "hardlink", "rename", "copy"):
            return f"{a} {p} -> {self.dst!r}"
        if a == "chmod":
            return f"chmod {self.num:o} {p}"
        if a == "utime":
            return f"utime {p} T0{self.num:+d}s"
        return f"{a} {p}"


def in_dir(name: str) -> str:
    """A name inside the checkpoint directory, relative to the case root."""
    return f"{DIRECTORY}/{name}" if name else DIRECTORY


@dataclass(frozen=True)
class Case:
    """One seeded case (see `stress.hostile._generate`)."""

    seed: int
    index: int
    family: str  # index | state | fs
    kind: str
    detail: str
    entry: str
    ops: tuple[Op, ...]
    target: str = f"{NAME}-3"  # the prefix verify/inspect/diff look at, relative to DIRECTORY
    path: str = ""  # the path diagnose/doctor get, relative to the case root ("": DIRECTORY)
    unprivileged: bool = False  # run as the unprivileged user (needs root to drop to it)
    expect: tuple[str, ...] = ()  # facts the oracle checks (see `_oracle.EXPECTATIONS`)
    proc: bool = False  # also run this CLI case as a real `python -m safeckpt` process

    @property
    def id(self) -> str:
        """Reproducible id: ``python -m stress.hostile --seed S --only N``."""
        return f"{self.seed}:{self.index}"

    @property
    def key(self) -> str:
        """Stable key: ``python -m stress.hostile --case KEY`` rebuilds this very case."""
        return f"{self.family}/{self.kind}/{self.entry}@{self.seed}:{self.index}"

    def describe(self) -> list[str]:
        lines = [
            f"case {self.key}" + (" (as the unprivileged user)" if self.unprivileged else ""),
            f"  {self.detail}",
        ]
        lines += [f"    {op.describe()}" for op in self.ops]
        if self.expect:
            lines.append(f"  expected facts: {', '.join(self.expect)}")
        return lines


@dataclass
class Layout:
    """Absolute paths of one built case."""

    root: str
    directory: str
    prefix: str
    path: str
    other: str  # an intact checkpoint for `diff`
    input_bytes: int = 0  # regular-file bytes inside the directory (bounds scale with it)


CANARY = {
    "thesis.tex": b"\\documentclass{article} % the user's thesis, above the run\n" * 20,
    "canary/notes.txt": b"canary notes\n",
    "canary/data.bin": bytes(range(256)) * 16,
    "canary/sub/deep.txt": b"deep canary\n",
    "outside/target.txt": b"a file some link in the directory points to\n",
    "outside/dir/a.txt": b"a\n",
    "outside/dir/b.bin": b"\x00\x01\x02" * 100,
    "outside/dir/ckpt-0_temp/part.txt": b"looks like a leftover, but it is outside\n",
    "outside/big.bin": b"\xab" * 4096,
    "run/sibling.txt": b"beside the checkpoint directory\n",
}


def _abs(root: str, rel: str) -> str:
    return root if rel in ("", ".") else os.path.join(root, rel)


def build_case(case: Case, root: str, pristine: str, nobody: tuple[int, int] | None) -> Layout:
    """Create the case tree under `root` (which must not exist) and apply the case's ops."""
    os.makedirs(root)
    os.chmod(root, 0o755)
    for rel, data in CANARY.items():
        path = _abs(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
    # A complete checkpoint outside the directory (a state file may name it; nothing may
    # delete it).
    for suffix in (INDEX, DATA):
        shutil.copyfile(
            os.path.join(pristine, f"{NAME}-1{suffix}"), _abs(root, f"outside/{NAME}-7{suffix}")
        )
    directory = _abs(root, DIRECTORY)
    shutil.copytree(pristine, directory, copy_function=shutil.copyfile)
    _set_times(root)
    pristine_names = set(os.listdir(directory))
    dated = {op.path for op in case.ops if op.action == "utime"}
    for op in case.ops:
        with contextlib.suppress(OSError):
            apply(op, root, nobody)
    _age_new_entries(root, directory, pristine_names, dated)
    layout = Layout(
        root=root,
        directory=directory,
        prefix=os.path.join(directory, case.target),
        path=_abs(root, case.path) if case.path else directory,
        other=os.path.join(directory, f"{NAME}-1"),
    )
    layout.input_bytes = _regular_bytes(directory)
    return layout


def _pristine_time(name: str) -> float:
    for k in STEPS:
        if name.startswith(f"{NAME}-{k}."):
            return ckpt_time(k)
    if name == STATE:
        return ckpt_time(STEPS[-1]) + 30
    return T0


def _set_times(root: str) -> None:
    """Pristine files get their save times; everything else T0 (older than every save)."""
    for base, dirs, files in os.walk(root):
        for name in files + dirs:
            when = _pristine_time(name)
            os.utime(os.path.join(base, name), (when, when), follow_symlinks=False)


def _age_new_entries(root: str, directory: str, pristine: set[str], dated: set[str]) -> None:
    """Entries the ops created get time T0 (older than every checkpoint: leftovers)."""
    for base, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, root)
            if rel in dated:
                continue
            when = _pristine_time(name) if base == directory and name in pristine else T0
            with contextlib.suppress(OSError):
                os.utime(path, (when, when), follow_symlinks=False)


def _regular_bytes(directory: str) -> int:
    total = 0
    for base, _dirs, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(base, name))
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    return total


def apply(op: Op, root: str, nobody: tuple[int, int] | None) -> None:
    """Apply one operation under `root` (OSError when its target is not there)."""
    path = _abs(root, op.path)
    a = op.action
    if a in ("write", "append"):
        data = op.data.replace(ROOT.encode(), os.fsencode(root))
        if a == "write" and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        with open(path, "ab" if a == "append" else "wb") as handle:
            handle.write(data)
    elif a == "truncate":
        os.truncate(path, op.num)
    elif a == "patch":
        with open(path, "r+b") as handle:
            handle.seek(op.num)
            handle.write(op.data)
    elif a == "xor":
        with open(path, "r+b") as handle:
            handle.seek(op.num)
            byte = handle.read(1)
            if byte:
                handle.seek(op.num)
                handle.write(bytes([byte[0] ^ op.mask]))
    elif a == "delete":
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    elif a == "mkdir":
        os.makedirs(path, exist_ok=True)
    elif a == "mkfifo":
        _clear(path)
        os.mkfifo(path)
    elif a == "socket":
        _clear(path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(path)
    elif a == "symlink":
        _clear(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(op.dst.replace(ROOT, root), path)
    elif a == "hardlink":
        _clear(path)
        os.link(_abs(root, op.dst), path)
    elif a == "chmod":
        os.chmod(path, op.num)
    elif a == "rename":
        os.rename(path, _abs(root, op.dst))
    elif a == "copy":
        shutil.copyfile(path, _abs(root, op.dst))
    elif a == "own":
        if nobody is not None:
            _chown_tree(path, *nobody)
    elif a == "utime":
        os.utime(path, (T0 + op.num, T0 + op.num), follow_symlinks=False)
    else:  # pragma: no cover - generator bug
        raise ValueError(f"unknown action {a}")


def _clear(path: str) -> None:
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _chown_tree(path: str, uid: int, gid: int) -> None:
    os.lchown(path, uid, gid)
    for base, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(base, name), uid, gid)


def remove_tree(root: str) -> None:
    """Delete a case root, whatever its modes (never following links)."""
    for base, dirs, _files in os.walk(root):
        for name in dirs:
            full = os.path.join(base, name)
            with contextlib.suppress(OSError):
                if not os.path.islink(full):
                    os.chmod(full, 0o755)
    with contextlib.suppress(OSError):
        os.chmod(root, 0o755)
    shutil.rmtree(root, ignore_errors=True)
