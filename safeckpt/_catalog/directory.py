"""Directory validation at construction: exists, is a directory, listable, writable."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import uuid
from typing import Literal, NoReturn

from safeckpt._catalog.nearby import nearest_existing_ancestor, similar_checkpoint_dirs
from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis, describe_exception
from safeckpt._errorbase import CheckpointDirectoryError
from safeckpt._format.layout import OWN_PREFIX, STATE_FILE, strip_file_suffix
from safeckpt._io import fs
from safeckpt._io.errors import io_errors, not_found
from safeckpt._io.tf import tf
from safeckpt._io.translate import cause_of

logger = logging.getLogger("safeckpt")


def _raise(
    directory: str,
    cause: Cause,
    summary: str,
    evidence: list[str],
    suggestions: list[str],
    exc: BaseException | None = None,
) -> NoReturn:
    diagnosis = Diagnosis(
        cause=cause,
        summary=summary,
        directory=directory,
        evidence=tuple(evidence),
        suggestions=tuple(suggestions),
        error=describe_exception(exc) if exc is not None else None,
    )
    raise CheckpointDirectoryError(
        f"directory={directory!r} cannot be used: {diagnosis}", diagnosis, directory
    ) from exc


def _unreachable(directory: str, exc: BaseException) -> NoReturn:
    _raise(
        directory,
        Cause.STORAGE_UNAVAILABLE,
        "The storage holding the directory could not be reached.",
        [f"{directory}: {describe_exception(exc)}"],
        [
            "Check network access and credentials for this filesystem, then retry.",
            "safeckpt refuses to continue rather than treat an unreachable directory as empty.",
        ],
        exc,
    )


def _unless_unreachable(directory: str, exc: BaseException) -> None:
    """Raise `_unreachable` when `exc` is the storage failing, not a refusal."""
    if cause_of(exc, Cause.PERMISSION_DENIED) is Cause.STORAGE_UNAVAILABLE:
        _unreachable(directory, exc)


def describe_missing(directory: str) -> tuple[list[str], list[str]]:
    """Evidence and suggestions for a directory that does not exist."""
    evidence = [f"{directory} does not exist."]
    ancestor = nearest_existing_ancestor(directory)
    if ancestor is not None:
        evidence.append(f"The nearest existing ancestor is {ancestor}.")
    suggestions = [
        f"did you mean {near.describe()}?" for near in similar_checkpoint_dirs(directory)
    ]
    if fs.scheme_of(directory) is None:
        evidence.append(f"The working directory is {os.getcwd()} (relative paths resolve there).")
    suggestions.append(
        "If this is a first run, create the directory or pass create_directory=True "
        "(and read_only=False)."
    )
    return evidence, suggestions


def _not_a_directory(directory: str) -> NoReturn:
    parent = fs.dirname(directory)
    base = fs.basename(directory)
    evidence = [f"{directory} is a file, not a directory."]
    prefix = strip_file_suffix(directory)
    if base == STATE_FILE:
        evidence.append(f"{base} is the name of TensorFlow's checkpoint state file.")
    elif prefix is not None:
        evidence.append(f"{base} is a checkpoint file of the prefix {prefix}.")
    suggestions = [f"Pass its parent directory instead: directory={parent!r}."]
    _raise(
        directory,
        Cause.NOT_A_DIRECTORY,
        "The checkpoint directory is a file.",
        evidence,
        suggestions,
    )


def validate_directory(directory: str, *, create: bool, read_only: bool) -> bool:
    """Check that `directory` can hold checkpoints; create it when allowed.

    Args:
        directory: A normalized directory (see `safeckpt._io.paths.normalize_directory`).
        create: Create a missing directory (with parents).
        read_only: Never create or write; only check that it can be listed.

    Returns:
        True when the directory was created by this call.

    Raises:
        CheckpointDirectoryError: with a diagnosis of what is wrong.
    """
    local = fs.scheme_of(directory) is None
    try:
        kind = _local_kind(directory) if local else None
        if kind != "directory":
            if local:
                _check_local(directory)
                kind = _local_kind(directory)  # one stat decides, after the checks
            else:
                kind = _remote_kind(directory)
    except io_errors(UnicodeError) as exc:
        _unreachable(directory, exc)
    if kind == "file":
        _not_a_directory(directory)
    exists = kind == "directory"
    created = False
    if not exists:
        if not create or read_only:
            evidence, suggestions = describe_missing(directory)
            flag = "read_only=True" if read_only else "create_directory=False"
            evidence.append(f"It was not created because {flag}.")
            _raise(
                directory,
                Cause.DIRECTORY_MISSING,
                "The checkpoint directory does not exist.",
                evidence,
                suggestions,
            )
        _check_bucket(directory)
        created_here: list[str] = []
        try:
            if local:
                _make_local(directory, created_here)
            else:
                tf.io.gfile.makedirs(directory)
        except io_errors(UnicodeError) as exc:
            for path in reversed(created_here):  # deepest first: only what this call created
                with contextlib.suppress(OSError):
                    os.rmdir(path)
            _unless_unreachable(directory, exc)
            _raise(
                directory,
                Cause.PERMISSION_DENIED,
                "The checkpoint directory could not be created.",
                [f"Creating {directory} failed: {describe_exception(exc)}"],
                ["Create it yourself with the right owner, or choose a writable location."],
                exc,
            )
        created = bool(created_here) or not local
        if created:
            logger.info("Created checkpoint directory %s", directory)
    try:
        _check_listable(directory)
    except io_errors(UnicodeError) as exc:
        _unless_unreachable(directory, exc)
        if isinstance(exc, not_found()):
            _raise(
                directory,
                Cause.DIRECTORY_MISSING,
                "The checkpoint directory disappeared while it was being checked.",
                [f"Listing {directory} failed: {describe_exception(exc)}"],
                ["Another process removed it: find out which, then construct the manager again."],
                exc,
            )
        _raise(
            directory,
            Cause.PERMISSION_DENIED,
            "The checkpoint directory cannot be listed.",
            [f"Listing {directory} failed: {describe_exception(exc)}"],
            ["Fix its permissions (it needs read and execute for this user)."],
            exc,
        )
    if not read_only:
        _probe_write(directory)
    return created


def _check_bucket(directory: str) -> None:
    """Refuse to create a directory in a GCS bucket that does not exist.

    TensorFlow cannot create buckets, and its ``makedirs`` then never returns: it asks for
    the missing bucket again and again (thousands of requests a second).
    """
    if fs.scheme_of(directory) != "gs":
        return
    bucket = "gs://" + directory[len("gs://") :].split("/", 1)[0]
    try:
        found = tf.io.gfile.isdir(bucket + "/")
    except io_errors(UnicodeError) as exc:
        _unreachable(directory, exc)
    if not found:
        _raise(
            directory,
            Cause.DIRECTORY_MISSING,
            "The GCS bucket of the checkpoint directory does not exist.",
            [f"{bucket} does not exist (or these credentials cannot see it)."],
            [
                f"Check the bucket name, or create it: gcloud storage buckets create {bucket}",
                "TensorFlow cannot create buckets; safeckpt creates only directories in them.",
            ],
        )


def _check_listable(directory: str) -> None:
    """Raise if `directory` cannot be listed, at a cost that does not grow with its size.

    Locally the directory is opened for reading (which checks the permission). On a
    remote filesystem the existence check above already listed the prefix (GCS answers
    "is this a directory" with a listing of one name), so nothing more is asked.
    """
    if fs.scheme_of(directory) is None:
        os.close(os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)))


#: What one stat says a path is: ``"directory"``, ``"file"`` (anything else that exists),
#: ``"missing"``, or ``"other"`` (the stat failed otherwise: `_check_local` finds out why).
PathKind = Literal["directory", "file", "missing", "other"]


def _local_kind(directory: str) -> PathKind:
    """What `directory` is, by one `os.stat`: the answer cannot mix two moments.

    Asking "is it a directory?" and then "does it exist?" (two stats) lets a directory that
    another process creates in between look like a file.
    """
    try:
        mode = os.stat(directory).st_mode
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError):
        return "other"
    return "directory" if stat.S_ISDIR(mode) else "file"


def _remote_kind(directory: str) -> PathKind:
    """What a URI is. Two questions; "exists but not a directory" is asked again once.

    A directory that another process created between the two questions then shows as one.
    """
    if fs.isdir(directory):
        return "directory"
    if not fs.exists(directory):
        return "missing"
    return "directory" if fs.isdir(directory) else "file"


def _make_local(directory: str, created: list[str]) -> None:
    """Create `directory` and its missing parents (mode 0755, as TensorFlow does).

    Another process may create any of them at the same moment: a component that exists as a
    directory when this one tries is fine. `created` receives, top down, the directories
    this call created itself, the only ones removed again when a later step fails.
    """
    missing: list[str] = []
    path = directory
    while _local_kind(path) in ("missing", "other"):  # "other": mkdir says why
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            if _local_kind(path) != "directory":
                raise
            continue
        created.append(path)


def _check_local(directory: str) -> None:
    """Probe a local path for what TF would report as "not found" or "permission denied"."""
    path = directory
    chain: list[str] = []
    while True:
        chain.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for path in reversed(chain):  # from the root down
        if os.path.islink(path) and not os.path.exists(path):
            target = os.readlink(path)
            _raise(
                directory,
                Cause.DIRECTORY_MISSING,
                "A symbolic link on the way to the checkpoint directory leads nowhere "
                "(it is dangling or a loop).",
                [f"{path} is a symbolic link to {target!r}, which cannot be resolved."],
                ["Fix or remove the link, or pass the directory it should point to."],
            )
        if os.path.lexists(path) and not os.path.isdir(path) and path != directory:
            _raise(
                directory,
                Cause.NOT_A_DIRECTORY,
                "A parent of the checkpoint directory is a file.",
                [f"{path} is a file, not a directory."],
                [f"Choose a directory that is not below the file {path}."],
            )
        if not os.path.lexists(path):
            break
    ancestor = next((p for p in reversed(chain) if os.path.isdir(p)), "/")
    try:
        name_max = os.pathconf(ancestor, "PC_NAME_MAX")
        path_max = os.pathconf(ancestor, "PC_PATH_MAX")
    except (OSError, ValueError):
        return
    longest = max(directory.split(os.sep), key=lambda c: len(os.fsencode(c)))
    if len(os.fsencode(longest)) > name_max or len(os.fsencode(directory)) >= path_max:
        _raise(
            directory,
            Cause.UNKNOWN,
            "The checkpoint directory's path is too long for this filesystem.",
            [
                f"The path is {len(os.fsencode(directory))} bytes (limit {path_max}); its "
                f"longest component is {len(os.fsencode(longest))} bytes (limit {name_max}).",
            ],
            ["Choose a shorter path; checkpoint file names add about 40 bytes."],
        )


def _probe_write(directory: str) -> None:
    """Create and remove a small file: the only reliable writability test (root, ACLs, NFS)."""
    probe = fs.join(directory, f"{OWN_PREFIX}probe-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        if fs.scheme_of(directory) is None:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        else:
            with tf.io.gfile.GFile(probe, "w") as handle:
                handle.write("safeckpt write probe\n")
    except io_errors(UnicodeError) as exc:
        _unless_unreachable(directory, exc)
        _raise(
            directory,
            Cause.PERMISSION_DENIED,
            "The checkpoint directory is not writable.",
            [f"Writing a probe file in {directory} failed: {describe_exception(exc)}"],
            [
                "Fix its permissions or choose a writable directory.",
                "For evaluation or inference jobs that only restore, pass read_only=True.",
            ],
            exc,
        )
    try:
        if fs.scheme_of(directory) is None:
            os.unlink(probe)
        else:
            tf.io.gfile.remove(probe)
    except io_errors(UnicodeError) as exc:
        logger.warning("Could not remove the write probe %s: %s", probe, exc)
