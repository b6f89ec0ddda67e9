"""File operations that stay inside the directory and open only regular files.

Every delete, move and write safeckpt does on its own goes through here (`remove_entry`,
`move_entry`, `real_directory`, `write_new`, `replace_file`), and so does every read of a
checkpoint file (`open_read`, `read_bytes`). On local paths (plain or ``file://``):

- a symbolic link is removed or moved as a link, never followed: `remove_entry` unlinks a
  link (also one to a directory) and removes a real directory with `shutil.rmtree`, which
  unlinks the links inside without descending into them;
- a folder safeckpt writes into must be a real directory, not a link (`real_directory`);
- new files are created exclusively (``O_CREAT | O_EXCL``: never through an existing file,
  link or hard link) under a unique name, then renamed into place (`replace_file`), which
  replaces a link instead of writing through it;
- only regular files are opened for reading: the type is checked with `os.stat` before the
  open and with `os.fstat` after it (opened with ``O_NONBLOCK``), so a FIFO, a socket, a
  device or a directory is `NotRegularFileError` / `IsADirectoryError`, never a blocking read.

On URIs (``gs://``, ``ram://``) there are no links, FIFOs or devices: `tf.io.gfile` is used.
Local paths never import TensorFlow (`safeckpt._io.errors`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import uuid
from typing import Any, BinaryIO

from safeckpt._io import fs
from safeckpt._io.errors import NotFoundError, io_errors, not_found
from safeckpt._io.tf import tf

__all__ = [
    "NotRealDirectoryError",
    "NotRegularFileError",
    "entry_kind",
    "kind_of",
    "lexists",
    "lstat_mtime",
    "move_entry",
    "open_read",
    "read_bytes",
    "read_with_mtime",
    "real_directory",
    "regular_size",
    "remove_entry",
    "remove_file",
    "replace_file",
    "write_atomically",
    "special_kind",
    "write_new",
]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
)


class NotRegularFileError(OSError):
    """A FIFO, socket or device where a regular file belongs (never opened for reading).

    Attributes:
        path: The path.
        kind: What it is, e.g. ``"a FIFO (named pipe)"``.
    """

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{kind}, not a regular file", path)
        self.path, self.kind = path, kind

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.kind)


class NotRealDirectoryError(OSError):
    """A folder safeckpt would write into is a symbolic link or not a directory."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.ENOTDIR, f"{kind}, not a real directory", path)
        self.path, self.kind = path, kind

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.kind)


def kind_of(mode: int) -> str:
    """``"a FIFO (named pipe)"``, ``"a directory"``, ... (``"a regular file"``) for a mode."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "a regular file" if stat.S_ISREG(mode) else "an unknown kind of file"


def _unresolved(exc: OSError) -> bool:
    """Whether `exc` says no file is there: missing, below a file, or a link loop."""
    return isinstance(exc, (FileNotFoundError, NotADirectoryError)) or exc.errno == errno.ELOOP


def _not_found(exc: OSError) -> NotFoundError:
    error = NotFoundError(str(exc.filename), f"{exc.filename}: {exc.strerror}")
    error.__cause__ = exc
    return error


def _check_regular(path: str, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(path, kind_of(mode))


def _open_local(local: str, buffered: bool) -> BinaryIO:
    try:
        _check_regular(local, os.stat(local).st_mode)  # never open a device or a FIFO at all
        fd = os.open(local, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if _unresolved(exc):
            raise _not_found(exc) from exc
        raise
    try:
        _check_regular(local, os.fstat(fd).st_mode)  # what was opened, if it was swapped
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=-1 if buffered else 0)
    except BaseException:
        os.close(fd)
        raise


def open_read(path: str, *, buffered: bool = True) -> Any:
    """Open `path` for binary reading (a file object with ``read``, ``seek``, ``tell``).

    `buffered=False` gives an unbuffered local file (``readinto`` straight from the disk).

    Raises:
        tf.errors.NotFoundError: It does not exist (locally `safeckpt._io.errors.NotFoundError`,
            also for a link that leads nowhere, dangling or a loop).
        NotRegularFileError: It is a FIFO, socket or device (local paths).
        IsADirectoryError: It is a directory (local paths).
        tf.errors.OpError, OSError: It cannot be opened.
    """
    local = fs.local_path(path)
    if local is None:
        return tf.io.gfile.GFile(path, "rb")
    return _open_local(local, buffered)


def read_bytes(path: str, limit: int | None = None) -> bytes:
    """The bytes of `path` (the first `limit` bytes when given); see `open_read`."""
    with open_read(path) as handle:
        return bytes(handle.read() if limit is None else handle.read(limit))


def read_with_mtime(path: str) -> tuple[bytes, float | None]:
    """The bytes of `path` and, locally, the modification time of exactly those bytes.

    The time comes from the open descriptor (``fstat``), so it belongs to the bytes read:
    TensorFlow replaces its state file by a rename, and a stat by name a moment later could
    see the next version's time next to this version's text. On URIs the time is None (see
    `safeckpt._format.statefile.snapshot_mtime`). Raises what `open_read` raises.
    """
    with open_read(path) as handle:
        data = bytes(handle.read())
        if fs.local_path(path) is None:
            return data, None
        return data, os.fstat(handle.fileno()).st_mtime_ns / 1e9


def regular_size(path: str) -> int:
    """The size of the regular file at `path`, following links (a fresh stat locally).

    Raises:
        tf.errors.NotFoundError: It does not exist (locally `safeckpt._io.errors.NotFoundError`).
        NotRegularFileError, IsADirectoryError: It is not a regular file (local paths).
        tf.errors.OpError, OSError: It cannot be stat'ed.
    """
    local = fs.local_path(path)
    if local is None:
        info = tf.io.gfile.stat(path)
        if info.is_directory:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        return int(info.length)
    try:
        result = os.stat(local)
    except OSError as exc:
        if _unresolved(exc):
            raise _not_found(exc) from exc
        raise
    _check_regular(local, result.st_mode)
    return int(result.st_size)


def lstat_mtime(path: str) -> float | None:
    """The modification time of the entry itself (a link's own time, not its target's).

    None when unknown (``ram://`` reports none) or when it cannot be stat'ed.
    """
    local = fs.local_path(path)
    try:
        if local is not None:
            return os.lstat(local).st_mtime_ns / 1e9
        return fs.stat(path)[1]
    except io_errors():
        return None


def entry_kind(path: str) -> str | None:
    """Locally, what the entry `path` itself is (a link is ``"a symbolic link"``), else None.

    None for a missing path and a URI.
    """
    local = fs.local_path(path)
    if local is None:
        return None
    try:
        return kind_of(os.lstat(local).st_mode)
    except (OSError, ValueError):
        return None


def special_kind(path: str) -> str | None:
    """Locally, what `path` is when it is a FIFO, socket or device (following links), else None.

    None too for a regular file, a directory, a missing path and a URI.
    """
    local = fs.local_path(path)
    if local is None:
        return None
    try:
        mode = os.stat(local).st_mode
    except (OSError, ValueError):
        return None
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else kind_of(mode)


def lexists(path: str) -> bool:
    """Whether an entry exists at `path` (locally a dangling link too)."""
    local = fs.local_path(path)
    return os.path.lexists(local) if local is not None else bool(tf.io.gfile.exists(path))


def remove_entry(path: str) -> None:
    """Delete the entry `path`: a file, a link (as a link) or a directory tree.

    A link is unlinked whatever it points to; a real directory is removed with
    `shutil.rmtree`, which unlinks the links it holds without following them.

    Raises:
        tf.errors.OpError, OSError: It could not be removed.
    """
    local = fs.local_path(path)
    if local is None:
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
        return
    if stat.S_ISDIR(os.lstat(local).st_mode):
        if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - not on Linux/macOS
            raise OSError(errno.ENOTSUP, "no symlink-safe rmtree on this platform", local)
        shutil.rmtree(local)
    else:
        os.unlink(local)


def remove_file(path: str) -> bool:
    """Delete the file (or link, as a link) `path`; False when nothing was there.

    Cheaper than `remove_entry` on object stores (one delete request, no directory check).

    Raises:
        IsADirectoryError: `path` is a directory (local paths).
        tf.errors.OpError, OSError: It could not be removed.
    """
    local = fs.local_path(path)
    try:
        if local is None:
            tf.io.gfile.remove(path)
        else:
            os.unlink(local)
    except not_found():
        return False
    return True


def move_entry(source: str, destination: str) -> None:
    """Rename the entry `source` (a link moves as a link) to `destination`, never over one.

    Raises:
        FileExistsError: `destination` exists (also a dangling link).
        tf.errors.OpError, OSError: It could not be moved.
    """
    local, target = fs.local_path(source), fs.local_path(destination)
    if local is None or target is None:
        tf.io.gfile.rename(source, destination, overwrite=False)
        return
    if lexists(target):
        raise FileExistsError(errno.EEXIST, "File exists", target)
    os.rename(local, target)


def real_directory(path: str) -> str:
    """Create the directory `path` (its parent must exist), or accept it if it already is one.

    Locally it must be a real directory: a symbolic link (even to a directory inside) or a
    file there is refused, so nothing is ever moved or written through it.

    Raises:
        NotRealDirectoryError: `path` is a link or not a directory.
        tf.errors.OpError, OSError: It could not be created.
    """
    local = fs.local_path(path)
    if local is None:
        tf.io.gfile.makedirs(path)
        return path
    try:
        os.mkdir(local)
    except FileExistsError:
        mode = os.lstat(local).st_mode
        if not stat.S_ISDIR(mode):
            raise NotRealDirectoryError(local, kind_of(mode)) from None
    return path


def write_new(path: str, data: bytes, *, sync: bool = True) -> None:
    """Write `data` into a new file `path`; an existing entry there (even a link) is an error.

    `sync` flushes it to the disk (``fsync``) before returning; without it the write is as
    durable as TensorFlow's own checkpoint files (which are not synced either).

    Raises:
        FileExistsError: Something exists at `path`.
        tf.errors.OpError, OSError: It could not be written.
    """
    local = fs.local_path(path)
    if local is None:
        if tf.io.gfile.exists(path):
            raise FileExistsError(errno.EEXIST, "File exists", path)
        with tf.io.gfile.GFile(path, "wb") as handle:
            handle.write(data)
        return
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(local, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str, data: bytes, *, sync: bool = True) -> None:
    """Replace the file `path` with `data` so that a reader sees the old or the new bytes.

    On ``gs://`` one object write (atomic there: one request instead of a temporary
    object's write, copy and delete); elsewhere `replace_file`.

    Raises:
        tf.errors.OpError, OSError: It could not be written.
    """
    if fs.scheme_of(path) == "gs":
        with tf.io.gfile.GFile(path, "wb") as handle:
            handle.write(data)
        return
    replace_file(path, data, sync=sync)


def replace_file(path: str, data: bytes, *, sync: bool = True) -> None:
    """Replace the file `path` with `data`: a unique new file renamed over it.

    `sync`: see `write_new`.

    A link at `path` is replaced (the file it points to is untouched); nothing is written
    through an existing temporary file.

    Raises:
        tf.errors.OpError, OSError: It could not be written (the temporary file is removed).
    """
    temporary = f"{path}.safeckpt-tmp-{os.getpid()}-{uuid.uuid4().hex}"
    write_new(temporary, data, sync=sync)
    try:
        local, target = fs.local_path(temporary), fs.local_path(path)
        if local is None or target is None:
            tf.io.gfile.rename(temporary, path, overwrite=True)
        else:
            os.replace(local, target)
    except BaseException:
        with contextlib.suppress(*io_errors()):
            remove_entry(temporary)
        raise
