"""The URI-aware filesystem layer: path arithmetic and stats that never corrupt a URI.

`os.path` corrupts URIs (``abspath("gs://b/x")`` is ``<cwd>/gs:/b/x``), and TensorFlow's RAM
filesystem answers for name prefixes of its files; these helpers handle both. Validation and
normalization of user input is `safeckpt._io.paths`.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
from dataclasses import dataclass

from safeckpt._io.errors import NotFoundError, PermissionDeniedError, io_errors, not_found
from safeckpt._io.tf import tf

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def _listed_in_parent(path: str) -> bool:
    parent = posixpath.dirname(path.rstrip("/"))
    if parent.endswith(":"):
        parent += "//"
    try:
        return basename(path) in {n.rstrip("/") for n in tf.io.gfile.listdir(parent)}
    except io_errors():
        return True  # let the caller's next operation report the real problem


def exists(path: str) -> bool:
    """`tf.io.gfile.exists`, except that on ram:// a name prefix of a file does not exist.

    Local paths are asked with `os.path` (the same answers, without TensorFlow).

    TensorFlow's RAM filesystem answers FileExists and IsDirectory for any prefix of a
    stored name (``ram://x/ru`` "exists" when ``ram://x/run/a`` does).
    """
    local = local_path(path)
    if local is not None:
        return os.path.exists(local)
    if not tf.io.gfile.exists(path):
        return False
    return scheme_of(path) != "ram" or _listed_in_parent(path)


def isdir(path: str) -> bool:
    """`tf.io.gfile.isdir`, corrected for ram:// like `exists`."""
    local = local_path(path)
    if local is not None:
        return os.path.isdir(local)
    if not tf.io.gfile.isdir(path):
        return False
    return scheme_of(path) != "ram" or _listed_in_parent(path)


@dataclass(frozen=True)
class Entries:
    r"""A directory's entry names, and those that are not valid UTF-8 (skipped).

    Attributes:
        names: The entry names (no trailing ``/``).
        undecodable: Names that are not valid UTF-8, escaped (``caf\xe9.txt``): TensorFlow
            cannot open such a file, so it belongs to no checkpoint and is only reported.
    """

    names: list[str]
    undecodable: list[str]


def list_entries(path: str) -> Entries:
    """The entries of a directory, telling "missing" from "unreachable" and "refused".

    Local directories are listed with `os.scandir` (`tf.io.gfile.listdir` raises
    `UnicodeDecodeError` for one file name that is not UTF-8, and `NotFoundError` for a
    directory it may not read). `tf.io.gfile.listdir` first asks `tf.io.gfile.isdir`, which
    answers False for any error, so on remote storage a dropped connection or a ``503``
    comes back as ``NotFoundError: Could not find directory``. That is asked again here with
    `tf.io.gfile.exists`, which does raise for such errors: a directory that exists but
    could not be listed raises `tf.errors.UnavailableError`.

    Raises:
        tf.errors.NotFoundError: The directory does not exist (or is not a directory);
            locally `safeckpt._io.errors.NotFoundError`.
        safeckpt._io.errors.PermissionDeniedError: It may not be listed (local).
        tf.errors.OpError, OSError: It could not be listed.
    """
    local = local_path(path)
    if local is not None:
        return _list_local(local)
    try:
        return Entries([name.rstrip("/") for name in tf.io.gfile.listdir(path)], [])
    except not_found() as exc:
        if not tf.io.gfile.exists(path):
            raise
        raise tf.errors.UnavailableError(
            None, None, f"{path} exists but could not be listed"
        ) from exc


def _list_local(local: str) -> Entries:
    names: list[str] = []
    undecodable: list[str] = []
    try:
        with os.scandir(local) as entries:
            for entry in entries:
                try:
                    entry.name.encode("utf-8")
                except UnicodeEncodeError:  # surrogate-escaped bytes: not UTF-8
                    undecodable.append(escaped(entry.name))
                else:
                    names.append(entry.name)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotFoundError(local, f"Could not find directory {local}") from exc
    except PermissionError as exc:
        code = exc.errno or errno.EACCES
        raise PermissionDeniedError(local, f"{local}: {os.strerror(code)}", code) from exc
    return Entries(names, sorted(undecodable))


def escaped(name: str) -> str:
    r"""A file name as printable text: bytes that are not UTF-8 as ``\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def listdir(path: str) -> list[str]:
    """The entry names of a directory that are valid UTF-8 (see `list_entries`)."""
    return list_entries(path).names


def local_path(path: str) -> str | None:
    """The local file-system path of `path` (``file:///x`` gives ``/x``); None for a URI."""
    scheme = scheme_of(path)
    if scheme is None:
        return path
    if scheme == "file":
        return path[len("file://") :]
    return None


def scheme_of(path: str) -> str | None:
    """The URI scheme of `path` (``"gs"`` for ``gs://b/x``), or None for a local path."""
    match = _SCHEME_RE.match(path)
    return match.group(1).lower() if match else None


def join(directory: str, name: str) -> str:
    """Join a directory and a base name without corrupting URIs."""
    if scheme_of(directory) is not None:
        return directory.rstrip("/") + "/" + name
    return os.path.join(directory, name)


def dirname(path: str) -> str:
    """The parent of `path`, scheme-aware (``gs://b/x/y`` gives ``gs://b/x``)."""
    if scheme_of(path) is not None:
        return posixpath.dirname(path.rstrip("/"))
    return os.path.dirname(path.rstrip(os.sep) or os.sep)


def basename(path: str) -> str:
    """The last component of `path`, scheme-aware."""
    return posixpath.basename(path.rstrip("/")) if scheme_of(path) else os.path.basename(path)


def access_error(path: str) -> PermissionError | None:
    """Locally, the `PermissionError` that keeps `path` from being looked up, if any.

    `tf.io.gfile.exists` answers False when a directory on the way may not be searched:
    this tells "refused" from "missing". None on URIs and when nothing refuses.
    """
    local = local_path(path)
    if local is None:
        return None
    try:
        os.stat(local)
    except PermissionError as exc:
        return exc
    except (OSError, ValueError):
        return None
    return None


def stat(path: str) -> tuple[int, float | None]:
    """``(size, mtime)`` of `path`; mtime in seconds, None when unknown.

    Local files use `os.stat` (nanoseconds); `tf.io.gfile.stat` rounds local times to whole
    seconds, too coarse to order a checkpoint against the state file written just after it.
    Remote filesystems that report no time (``ram://`` says 0) give None.

    Raises:
        tf.errors.OpError, OSError: The path cannot be stat'ed.
    """
    if scheme_of(path) is None:
        result = os.stat(path)
        return int(result.st_size), result.st_mtime_ns / 1e9
    info = tf.io.gfile.stat(path)
    return int(info.length), (info.mtime_nsec / 1e9 if info.mtime_nsec > 0 else None)
