"""What a local checkpoint directory is stored on: free space, and whether it outlives the job.

Standard library only (no TensorFlow), for local paths: the command line's ``doctor`` uses it
too. Mounts come from ``/proc/self/mountinfo`` (the mount whose mount point is the longest
prefix of the directory's real path), file-system types from there and from ``statfs``'s
magic numbers where ``mountinfo`` cannot be read.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import tempfile
from dataclasses import dataclass

MOUNTINFO = "/proc/self/mountinfo"
#: File systems that live in memory: their files are gone when the machine (or the
#: container's memory) goes.
MEMORY_TYPES = frozenset({"tmpfs", "ramfs"})
#: ``statfs`` ``f_type`` magic numbers (linux/magic.h) of the types this module names.
_MAGIC = {0x01021994: "tmpfs", 0x858458F6: "ramfs", 0x794C7630: "overlay"}
#: Environment variable that silences the warning about storage that will not outlive the job.
QUIET_ENV = "SAFECKPT_ALLOW_EPHEMERAL"


@dataclass(frozen=True)
class Mount:
    r"""One line of ``/proc/self/mountinfo``: where a file system is mounted and its type.

    Attributes:
        point: The mount point (octal escapes such as ``\040`` decoded).
        fstype: The file-system type (``tmpfs``, ``overlay``, ``ext4``, ...).
        source: The mount source (``tmpfs``, ``overlay``, ``/dev/sda1``, ...).
    """

    point: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    r"""A mountinfo path field with its octal escapes (``\040`` for a space) decoded."""
    out = bytearray()
    raw = field.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        if (
            raw[i : i + 1] == b"\\"
            and raw[i + 1 : i + 4].isdigit()
            and len(raw[i + 1 : i + 4]) == 3
        ):
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a ``/proc/<pid>/mountinfo`` text, in its order (malformed lines skipped).

    Each line is ``id parent major:minor root mount-point options [optional...] - type
    source super-options`` (proc(5)).
    """
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        mounts.append(Mount(_unescape(fields[4]), tail[0], _unescape(tail[1])))
    return mounts


def _contains(point: str, path: str) -> bool:
    point = point.rstrip("/") or "/"
    return point == "/" or path == point or path.startswith(point + "/")


def mount_of(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount `path` (an absolute real path) is on: the longest matching mount point.

    Of equal mount points the last one wins (it is mounted over the earlier ones).
    """
    best: Mount | None = None
    for mount in mounts:
        if _contains(mount.point, path) and (
            best is None or len(mount.point.rstrip("/")) >= len(best.point.rstrip("/"))
        ):
            best = mount
    return best


def _statfs_type(path: str) -> str | None:
    """The file-system type of `path` by ``statfs``'s magic number, where libc has it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        buffer = ctypes.create_string_buffer(256)  # struct statfs: f_type comes first
        if libc.statfs(os.fsencode(path), buffer) != 0:
            return None
    except (OSError, AttributeError):
        return None
    magic = ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF
    return _MAGIC.get(magic)


def existing_ancestor(path: str) -> str:
    """`path` or its nearest existing parent, resolved (links followed)."""
    current = os.path.abspath(path)
    while not os.path.exists(current) and os.path.dirname(current) != current:
        current = os.path.dirname(current)
    return os.path.realpath(current)


def real_path(path: str) -> str:
    """`path` resolved as far as it exists (links followed), the rest appended as given."""
    full = os.path.abspath(path)
    base = existing_ancestor(full)
    current = full
    while not os.path.exists(current) and os.path.dirname(current) != current:
        current = os.path.dirname(current)
    rest = os.path.relpath(full, current)
    return base if rest == "." else os.path.join(base, rest)


def ephemeral_reason(path: str, mountinfo: str | None = None) -> str | None:
    """Why checkpoints in the local directory `path` would not outlive the job, or None.

    On tmpfs or ramfs (memory: gone with the machine or the container), in a container's
    overlay root file system (gone with the container), or under the system's temporary
    folder (cleaned at boot or by the system). `mountinfo` is the text of
    ``/proc/self/mountinfo`` (read when None).
    """
    real = real_path(path)
    if mountinfo is None:
        try:
            with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as handle:
                mountinfo = handle.read(1 << 22)
        except OSError:
            mountinfo = ""
    mount = mount_of(real, parse_mountinfo(mountinfo))
    fstype = mount.fstype if mount is not None else _statfs_type(existing_ancestor(path))
    where = f"{path} is on {fstype}" if fstype else ""
    if fstype in MEMORY_TYPES:
        return (
            f"{where} (kept in memory, mounted at {mount.point if mount else '?'}): its "
            "checkpoints do not survive a restart of this machine or container"
        )
    if fstype == "overlay" and mount is not None and mount.point == "/":
        return (
            f"{where}, the root file system of a container: its checkpoints are gone when "
            "the container is removed or rescheduled; write them to a mounted volume"
        )
    temp = os.path.realpath(tempfile.gettempdir())
    if _contains(temp, real):
        return (
            f"{path} is under the system's temporary folder {temp}: it may be emptied at a "
            "restart or by the system's cleaning"
        )
    return None


def free_bytes(path: str) -> int | None:
    """Bytes an unprivileged writer may still write where `path` (or its parent) lives."""
    try:
        info = os.statvfs(existing_ancestor(path))
    except OSError:
        return None
    return int(info.f_bavail * info.f_frsize)
