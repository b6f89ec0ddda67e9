"""Validation and normalization of user-supplied paths: done once, at the boundary.

Local paths get ``$VAR`` expansion, ``~`` expansion and `os.path.abspath`. URIs
(``gs://``, ``s3://``, ``ram://``, ...) are left intact apart from a trailing ``/``, because
`os.path` functions corrupt them (``abspath("gs://b/x")`` is ``<cwd>/gs:/b/x``).
"""

from __future__ import annotations

import os
import re
from typing import NoReturn

from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis
from safeckpt._errorbase import CheckpointDirectoryError
from safeckpt._io import fs
from safeckpt._io.tf import tf

#: Characters TensorFlow interprets as glob patterns in checkpoint prefixes (``\\`` escapes).
GLOB_CHARS = "[]*?\\"

#: The longest checkpoint_name (in UTF-8 bytes) whose files fit in a 255-byte file name:
#: ``<name>-<step>.data-00000-of-00001`` adds up to 40 bytes.
MAX_NAME_BYTES = 200

_ONE_SLASH_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):/(?!/)")
_NO_SLASH_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(?!/)")
_UNEXPANDED_VAR_RE = re.compile(r"\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")

#: Schemes people type for a filesystem TensorFlow knows under another name.
_SCHEME_TYPOS = {"gcs": "gs", "google": "gs", "s3a": "s3", "s3n": "s3", "mem": "ram"}

#: Filesystems TensorFlow does not ship but a plugin provides.
_PLUGIN_SCHEMES = {
    "s3": "tensorflow-io",
    "hdfs": "tensorflow-io",
    "viewfs": "tensorflow-io",
    "har": "tensorflow-io",
    "az": "tensorflow-io",
    "http": "tensorflow-io",
    "https": "tensorflow-io",
    "oss": "tensorflow-io",
}


def _known_schemes() -> set[str]:
    return {*tf.io.gfile.get_registered_schemes(), *_PLUGIN_SCHEMES, *_SCHEME_TYPOS, "file"}


def mark(path: str, positions: list[int]) -> str:
    """Show `path` quoted, with a ``^`` under each character at `positions`."""
    shown = repr(path)
    # repr() adds one quote before the text; escaped characters shift positions, so map each
    # position through the repr of the prefix.
    carets = [" "] * len(shown)
    for pos in positions:
        col = len(repr(path[:pos])) - 1
        if 0 <= col < len(carets):
            carets[col] = "^"
    return f"    {shown}\n    {''.join(carets).rstrip()}"


def _fail(
    argument: str, value: object, problem: str, expected: str, cause: Cause = Cause.UNKNOWN
) -> NoReturn:
    text = f"{argument}={value!r}: {problem}\nExpected: {expected}"
    diagnosis = Diagnosis(cause=cause, summary=problem.splitlines()[0], directory=str(value))
    raise CheckpointDirectoryError(text, diagnosis, str(value))


def coerce_path(value: object, argument: str) -> str:
    """`os.fspath` with clear errors for the wrong type, bytes and NUL characters."""
    if isinstance(value, bytes) or (
        isinstance(value, os.PathLike) and isinstance(os.fspath(value), bytes)
    ):
        raise TypeError(
            f"{argument}={value!r}: bytes paths are not supported; expected a str or "
            f"os.PathLike of str (decode it first, e.g. {argument}=os.fsdecode(path))."
        )
    if not isinstance(value, str | os.PathLike):
        raise TypeError(
            f"{argument}={value!r}: expected a str or os.PathLike (such as pathlib.Path), "
            f"got {type(value).__name__}."
        )
    text = os.fspath(value)
    assert isinstance(text, str)
    return text


def _undecodable_positions(text: str) -> list[int]:
    """Positions of lone surrogates (`os.fsdecode` of bytes that are not UTF-8)."""
    return [i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF]


def glob_positions(text: str) -> list[int]:
    """Positions of glob metacharacters in `text` (empty when there are none)."""
    return [i for i, ch in enumerate(text) if ch in GLOB_CHARS]


def glob_message(text: str, positions: list[int]) -> str:
    """The explanation given when a path contains glob metacharacters."""
    return (
        "contains glob metacharacters, which TensorFlow interprets as patterns in checkpoint "
        "prefixes: saving works, but the checkpoint can never be restored and max_to_keep "
        f"never deletes anything.\n{mark(text, positions)}"
    )


def normalize_directory(value: object, argument: str = "directory") -> str:
    """Normalize a checkpoint directory once, or raise `CheckpointDirectoryError`.

    Args:
        value: A `str` or `os.PathLike`: a local path (``~``, ``$VAR``, relative paths are
            resolved) or a URI with a registered scheme (left intact, trailing ``/`` removed).
        argument: The argument name used in error messages (any checkpoint path, such as a
            prefix, follows the same rules).

    Returns:
        An absolute local path or the URI.

    Raises:
        TypeError: `value` is not a str or os.PathLike of str.
        CheckpointDirectoryError: the path is malformed (see ``docs/paths.md`` for every rule).
    """
    text = coerce_path(value, argument)
    if "\x00" in text:
        _fail(argument, value, "contains a NUL character.", "a path without NUL characters.")
    undecodable = _undecodable_positions(text)
    if undecodable:
        _fail(
            argument,
            value,
            "contains bytes that are not valid UTF-8 (shown as \\udcXX); TensorFlow paths "
            "are UTF-8 strings:\n" + mark(text, undecodable),
            "a path that is valid UTF-8 (rename the file or directory).",
        )
    if not text.strip():
        _fail(argument, value, "is empty.", "a directory path such as '/data/run1/checkpoints'.")
    if text != text.strip():
        lead, tail = len(text) - len(text.lstrip()), len(text.rstrip())
        edges = [*range(lead), *range(tail, len(text))]
        _fail(
            argument,
            value,
            "has leading or trailing whitespace, almost always a copy-paste mistake:\n"
            + mark(text, edges),
            f"the path without the marked whitespace: {text.strip()!r}.",
        )
    scheme = fs.scheme_of(text)
    if scheme is None:
        no_slash = _NO_SLASH_RE.match(text)
        one_slash = _ONE_SLASH_RE.match(text)
        near_misses = (
            (
                no_slash is not None and no_slash.group(1).lower() in _known_schemes(),
                no_slash,
                1,
                "without its slashes",
                text.split("/", 1)[0],
            ),
            (one_slash is not None and len(one_slash.group(1)) > 1, one_slash, 2,
             "with a single slash", f"{one_slash.group(1) if one_slash else ''}:"),
        )  # fmt: skip
        for applies, match, cut, how, folder in near_misses:
            if applies and match is not None:
                name = match.group(1)
                _fail(
                    argument,
                    value,
                    f"looks like a {name}:// URI {how}; TensorFlow would treat it as a local "
                    f"relative folder named '{folder}'.",
                    f"{argument}={name + '://' + text[len(name) + cut :]!r}.",
                    Cause.UNSUPPORTED_SCHEME,
                )
        return _normalize_local(text, value, argument)
    return _normalize_uri(text, scheme, value, argument)


def spelled_directory(value: object) -> str:
    """What `SafeCheckpointManager.directory` returns for a `value` `normalize_directory` accepted.

    TensorFlow's manager returns the string it was given. safeckpt returns that spelling too
    (a trailing separator, ``.`` and ``..`` kept), resolved the way safeckpt resolves it once:
    ``$VAR`` and ``~`` expanded, a relative path joined to the working directory. So
    ``os.path.dirname(manager.directory)`` names the directory TensorFlow's would name (TF's
    ``PreemptionCheckpointHandler`` deletes it), wherever the process's cwd goes later.
    """
    text = coerce_path(value, "directory")
    if fs.scheme_of(text) is not None:
        return text
    return os.path.join(os.getcwd(), os.path.expanduser(os.path.expandvars(text)))


def _plugin_hint(scheme: str) -> str:
    """How to get a filesystem for `scheme` (``tensorflow-io``, which stopped at TF 2.16)."""
    text = f"TensorFlow has no filesystem for '{scheme}://' until a plugin registers one"
    major_minor = tuple(int(p) for p in tf.__version__.split(".")[:2] if p.isdigit())
    if major_minor <= (2, 16):
        return (
            f"{text}: pip install tensorflow-io==0.37.1 and `import tensorflow_io` before "
            "creating the manager."
        )
    return (
        f"{text}. tensorflow-io provided it, but no tensorflow-io release loads in TensorFlow "
        f"{tf.__version__} (its last, 0.37.1, is built for TF 2.16): use gs://, a local path, or "
        "the bucket mounted as a local folder (e.g. mountpoint-s3 or s3fs for S3)."
    )


def _normalize_uri(text: str, scheme: str, value: object, argument: str) -> str:
    if scheme in _SCHEME_TYPOS:
        good = _SCHEME_TYPOS[scheme]
        _fail(
            argument,
            value,
            f"'{scheme}://' is not a filesystem scheme TensorFlow knows.",
            f"{argument}={good + text[len(scheme) :]!r}.",
            Cause.UNSUPPORTED_SCHEME,
        )
    registered = set(tf.io.gfile.get_registered_schemes())
    if scheme not in registered and scheme != "file":
        plugin = _PLUGIN_SCHEMES.get(scheme)
        hint = _plugin_hint(scheme) if plugin else (
            f"TensorFlow has no filesystem registered for '{scheme}://'."
        )  # fmt: skip
        _fail(
            argument,
            value,
            f"uses the scheme '{scheme}://', which this TensorFlow cannot read or write. {hint}",
            "a local path or a URI with a registered scheme: "
            f"{sorted(s for s in registered if s)}.",
            Cause.UNSUPPORTED_SCHEME,
        )
    if scheme == "file" and not text.startswith("file:///"):
        _fail(
            argument,
            value,
            "is a file:// URI with a host name; file:// URIs take an absolute path.",
            f"'file:///absolute/path' or the plain path, e.g. {argument}='/data/run1'.",
            Cause.UNSUPPORTED_SCHEME,
        )
    stripped = text.rstrip("/")
    if stripped.endswith(":/") or stripped.endswith(":"):
        _fail(
            argument,
            value,
            "names no location after the scheme.",
            f"e.g. '{scheme}://bucket/run1'.",
        )
    positions = glob_positions(stripped)
    if positions:
        _fail(
            argument,
            value,
            glob_message(stripped, positions),
            "a path without [ ] * ?.",
            Cause.GLOB_METACHARACTERS,
        )
    return stripped


def _normalize_local(text: str, value: object, argument: str) -> str:
    if os.sep == "/" and "\\" in text:
        positions = [i for i, ch in enumerate(text) if ch == "\\"]
        _fail(
            argument,
            value,
            "contains backslashes, which are ordinary characters in file names on this "
            "system (not separators):\n" + mark(text, positions),
            f"forward slashes: {text.replace(chr(92), '/')!r}.",
        )
    expanded = os.path.expandvars(text)
    unexpanded = _UNEXPANDED_VAR_RE.search(expanded)
    if unexpanded:
        var = unexpanded.group(1).strip("{}")
        _fail(
            argument,
            value,
            f"refers to the environment variable ${var}, which is not set.",
            f"set {var} in the environment, or pass the path without it.",
        )
    expanded = os.path.expanduser(expanded)
    if expanded.startswith("~"):
        user = expanded[1:].split(os.sep, 1)[0]
        _fail(
            argument,
            value,
            f"starts with '~{user}', but there is no user named {user!r} on this machine.",
            "an existing user's home (~ or ~name) or an absolute path.",
        )
    positions = glob_positions(expanded)
    if positions:
        _fail(
            argument,
            value,
            glob_message(expanded, positions),
            "a path without [ ] * ?.",
            Cause.GLOB_METACHARACTERS,
        )
    return os.path.abspath(expanded)


def normalize_checkpoint_name(value: object) -> str:
    """Validate `checkpoint_name`, the base name of checkpoint prefixes.

    Raises:
        TypeError: not a str.
        ValueError: empty, contains a path separator, whitespace at the edges, NUL or glob
            metacharacters.
    """
    if not isinstance(value, str):
        raise TypeError(
            f"checkpoint_name={value!r}: expected a str such as 'ckpt', got {type(value).__name__}."
        )
    problem = None
    if not value:
        problem = "is empty"
    elif "/" in value or os.sep in value:
        problem = (
            "contains a path separator; it is the base name of the prefix inside `directory`. "
            "Put the sub-folder into `directory` instead"
        )
    elif "\x00" in value:
        problem = "contains a NUL character"
    elif _undecodable_positions(value):
        problem = "contains bytes that are not valid UTF-8 (shown as \\udcXX)"
    elif len(value.encode("utf-8")) > MAX_NAME_BYTES:
        problem = (
            f"is {len(value.encode('utf-8'))} bytes long; checkpoint file names "
            f"(<name>-<step>.data-00000-of-00001) must fit in 255 bytes, so at most "
            f"{MAX_NAME_BYTES}"
        )
    elif value != value.strip():
        problem = "has leading or trailing whitespace"
    elif any(ch in GLOB_CHARS for ch in value):
        problem = glob_message(value, glob_positions(value))
    if problem:
        raise ValueError(
            f"checkpoint_name={value!r}: {problem}.\n"
            "Expected: a plain file name such as 'ckpt' or 'model'."
        )
    return value
