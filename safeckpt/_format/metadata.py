"""The metadata file beside each checkpoint: ``<prefix>.safeckpt.json`` (docs/metadata.md).

`write_metadata` replaces the file atomically (a unique temporary name created exclusively,
then a rename; on ``gs://`` one object write, which is atomic), and only after TensorFlow's
files of the checkpoint are complete: its presence means that save finished. `read_metadata`
never raises for a bad file: it returns what it found and, for a damaged or foreign file,
the problem (a restore never depends on it). The text is strict JSON: non-finite metrics are
the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.

Version ``1.x``: a reader takes any minor version and ignores keys it does not know; a
newer major version is reported as a problem, never guessed at.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import platform
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from safeckpt._format import dtypes
from safeckpt._format.index import IndexFormatError, read_index
from safeckpt._format.layout import INDEX_SUFFIX, METADATA_SUFFIX, split_step
from safeckpt._io import fs, safeio
from safeckpt._io.errors import io_errors, not_found
from safeckpt._io.tf import tf
from safeckpt._metadata import CheckpointMetadata, KeepBest, Variables
from safeckpt._version import __version__

FORMAT = "safeckpt-metadata"
VERSION = "1.0"
#: The variables are listed in the file (not only their digest) up to this many.
LISTED_VARIABLES = 256
#: A metadata file larger than this is not read (it is reported as damaged).
MAX_BYTES = 16 << 20
_PLACEHOLDER = "\x00variables\x00"
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def metadata_path(prefix: str) -> str:
    """``<prefix>.safeckpt.json``."""
    return prefix + METADATA_SUFFIX


# --- checking the user's values (before anything is written) ---------------------------


def _number(value: Any) -> Any:
    """A numpy or TensorFlow scalar as a Python number; anything else unchanged."""
    for convert in ("numpy", "item"):
        if getattr(value, "shape", None) == () and callable(getattr(value, convert, None)):
            value = getattr(value, convert)()
    return value


def check_metrics(metrics: object) -> dict[str, float]:
    """``save(metrics=...)`` as name -> float; numpy and 0-d tensor scalars are accepted.

    Non-finite values (``nan``, ``inf``) are allowed (a diverging loss) and never rank as best.

    Raises:
        TypeError: Not a mapping, a key not a string, or a value not a real number
            (naming the key).
    """
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"save(metrics=...) must be a dict of name -> number, got {metrics!r}.")
    result: dict[str, float] = {}
    for key, raw in metrics.items():
        if not isinstance(key, str):
            raise TypeError(f"save(metrics=...): the key {key!r} is not a str.")
        value = _number(raw)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"save(metrics=...): metrics[{key!r}] must be a real number, got {raw!r} "
                f"({type(raw).__name__})."
            )
        result[key] = float(value)
    return result


def _check_json(where: str, value: Any, depth: int = 0) -> Any:
    if depth > 64:
        raise TypeError(f"save(metadata=...): {where} is nested more than 64 levels deep.")
    if value is None or isinstance(value, (bool, str)):
        return value
    value = _number(value)
    if isinstance(value, (bool, int)):
        return int(value) if not isinstance(value, bool) else value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(
                f"save(metadata=...): {where} is {value!r}, which strict JSON cannot hold "
                "(put non-finite numbers in metrics=, or store them as strings)."
            )
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"save(metadata=...): {where} has the key {key!r}, not a str.")
            out[key] = _check_json(f"{where}[{key!r}]", item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_check_json(f"{where}[{i}]", item, depth + 1) for i, item in enumerate(value)]
    raise TypeError(
        f"save(metadata=...): {where} is not JSON-serializable: {value!r} ({type(value).__name__})."
    )


def check_user_metadata(metadata: object) -> dict[str, Any]:
    """``save(metadata=...)``, checked to be JSON (str keys, finite numbers), as plain types.

    Raises:
        TypeError: Not a mapping, or a value that is not JSON-serializable (naming its key).
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"save(metadata=...) must be a dict, got {metadata!r}.")
    checked = _check_json("metadata", metadata)
    assert isinstance(checked, dict)
    return checked


# --- building and writing ----------------------------------------------------------------


def fingerprint(prefix: str) -> Variables | None:
    """The fingerprint of the variables in the checkpoint's index (None if unreadable)."""
    try:
        index = read_index(prefix + INDEX_SUFFIX)
    except io_errors(IndexFormatError):
        return None
    names: dict[int, str] = {}  # dtype enum -> name, looked up once per dtype
    for e in index.entries:
        if e.dtype not in names:
            names[e.dtype] = dtypes.dtype(e.dtype).name
    entries = sorted(
        (e.name, names[e.dtype], tuple(e.shape)) for e in index.entries if not e.is_slice_container
    )
    digest = hashlib.sha256()
    for key, dtype, shape in entries:
        digest.update(f"{key}\t{dtype}\t{','.join(map(str, shape))}\n".encode())
    listed = tuple(entries) if len(entries) <= LISTED_VARIABLES else None
    return Variables(len(entries), "sha256:" + digest.hexdigest(), listed)


def build(
    prefix: str,
    *,
    time: float,
    metrics: dict[str, float],
    metadata: dict[str, Any],
    keep_best: KeepBest | None,
    task: str | None,
    variables: Variables | None,
) -> CheckpointMetadata:
    """The metadata of the checkpoint `prefix`, saved now by this process."""
    return CheckpointMetadata(
        prefix=prefix,
        version=VERSION,
        step=split_step(fs.basename(prefix))[1],
        time=time,
        safeckpt_version=__version__,
        tensorflow_version=str(tf.__version__),
        python_version=platform.python_version(),
        host=socket.gethostname(),
        pid=os.getpid(),
        task=task,
        variables=variables,
        metrics=dict(metrics),
        metadata=dict(metadata),
        keep_best=keep_best,
    )


def _strict_number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def encode(meta: CheckpointMetadata) -> bytes:
    """The file's text (strict JSON, UTF-8)."""
    variables = None
    if meta.variables is not None:
        entries = meta.variables.entries
        variables = {
            "count": meta.variables.count,
            "digest": meta.variables.digest,
            "entries": None if entries is None else [[k, d, list(s)] for k, d, s in entries],
        }
    document = {
        "format": FORMAT,
        "version": meta.version,
        "checkpoint": fs.basename(meta.prefix),
        "step": meta.step,
        "time": meta.time,
        "writer": {
            "safeckpt": meta.safeckpt_version,
            "tensorflow": meta.tensorflow_version,
            "python": meta.python_version,
            "host": meta.host,
            "pid": meta.pid,
            "task": meta.task,
        },
        "variables": variables,
        "metrics": {k: _strict_number(v) for k, v in meta.metrics.items()},
        "metadata": meta.metadata,
        "keep_best": None if meta.keep_best is None else meta.keep_best.to_dict(),
    }
    # Readable at the top level; the variables on one line (they can be hundreds).
    text = json.dumps({**document, "variables": _PLACEHOLDER}, indent=1, allow_nan=False)
    compact = json.dumps(variables, separators=(",", ":"), allow_nan=False)
    return (text.replace(json.dumps(_PLACEHOLDER), compact, 1) + "\n").encode("utf-8")


def write_metadata(meta: CheckpointMetadata) -> None:
    """Write (or replace) the metadata file of ``meta.prefix`` atomically.

    Raises:
        tf.errors.OpError, OSError: It could not be written (nothing half-written stays).
    """
    # Not synced: as durable as TensorFlow's own files of the checkpoint. A power loss may
    # leave it empty, which reads as damaged and is ignored (never blocks a restore).
    safeio.write_atomically(metadata_path(meta.prefix), encode(meta), sync=False)


def remove_metadata(prefix: str) -> bool:
    """Remove the metadata file of `prefix` if there is one; True when one was removed.

    Raises:
        tf.errors.OpError, OSError: It is there but could not be removed.
    """
    return safeio.remove_file(metadata_path(prefix))


# --- reading -----------------------------------------------------------------------------


class MetadataFormatError(ValueError):
    """A metadata file that is not one safeckpt can read (damaged, foreign or newer)."""


@dataclass(frozen=True)
class MetadataRead:
    """What reading one checkpoint's metadata file found.

    Attributes:
        path: The metadata file.
        metadata: The metadata, or None (absent or unreadable).
        problem: Why a file that is there could not be used, or None (absent or fine).
    """

    path: str
    metadata: CheckpointMetadata | None = None
    problem: str | None = None

    @property
    def present(self) -> bool:
        """Whether a file was there (readable or not)."""
        return self.metadata is not None or self.problem is not None


def _field(data: Mapping[str, Any], key: str, types: Any, where: str = "") -> Any:
    if key not in data:
        raise MetadataFormatError(f"no {where}{key!r}")
    value = data[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
        raise MetadataFormatError(f"{where}{key!r} is {value!r}")
    return value


def _tuple(types: Any) -> tuple[Any, ...]:
    return types if isinstance(types, tuple) else (types,)


def _reject_constant(name: str) -> Any:
    raise MetadataFormatError(f"{name} is not strict JSON")


def _metric(key: str, value: Any) -> float:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetadataFormatError(f"metrics[{key!r}] is {value!r}")
    return float(value)


def _variables(data: Any) -> Variables | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise MetadataFormatError(f"'variables' is {data!r}")
    count = _field(data, "count", int, "variables.")
    digest = _field(data, "digest", str, "variables.")
    raw = data.get("entries")  # optional
    entries = None
    if raw is not None:
        try:
            entries = tuple((str(k), str(d), tuple(int(n) for n in s)) for k, d, s in raw)
        except (TypeError, ValueError) as exc:
            raise MetadataFormatError(f"'variables.entries' is malformed ({exc})") from None
    return Variables(count, digest, entries)


def _keep_best(data: Any) -> KeepBest | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise MetadataFormatError(f"'keep_best' is {data!r}")
    try:
        return KeepBest(data["metric"], data.get("mode", "min"), data.get("k", 1))
    except (KeyError, TypeError, ValueError) as exc:
        raise MetadataFormatError(f"'keep_best' is invalid ({exc})") from None


def decode(prefix: str, raw: bytes) -> CheckpointMetadata:
    """Parse a metadata file's bytes (any ``1.x`` version; unknown keys are ignored).

    Raises:
        MetadataFormatError: Not UTF-8 strict JSON of this format, a newer major version,
            or a field of the wrong type.
    """
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MetadataFormatError(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MetadataFormatError(f"not a {FORMAT} file")
    version = _field(data, "version", str)
    major = version.split(".", 1)[0]
    if major != VERSION.split(".", 1)[0]:
        raise MetadataFormatError(f"format version {version}, newer than this safeckpt reads")
    writer = _field(data, "writer", dict)
    step = data.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise MetadataFormatError(f"'step' is {step!r}")
    metrics = _field(data, "metrics", dict)
    user = _field(data, "metadata", dict)
    task = writer.get("task")
    return CheckpointMetadata(
        prefix=prefix,
        version=version,
        step=step,
        time=float(_field(data, "time", (int, float))),
        safeckpt_version=_field(writer, "safeckpt", str, "writer."),
        tensorflow_version=_field(writer, "tensorflow", str, "writer."),
        python_version=_field(writer, "python", str, "writer."),
        host=_field(writer, "host", str, "writer."),
        pid=_field(writer, "pid", int, "writer."),
        task=task if isinstance(task, str) else None,
        variables=_variables(data.get("variables")),
        metrics={str(k): _metric(str(k), v) for k, v in metrics.items()},
        metadata=user,
        keep_best=_keep_best(data.get("keep_best")),
    )


def read_metadata(prefix: str) -> MetadataRead:
    """The metadata file of `prefix`: absent, read, or its problem. Never raises for a bad file.

    Local paths are read with plain file I/O (`safeckpt._io.safeio`: regular files only).
    """
    path = metadata_path(prefix)
    try:
        with safeio.open_read(path) as handle:
            raw = bytes(handle.read(MAX_BYTES + 1))
    except not_found():
        return MetadataRead(path)
    except io_errors() as exc:
        return MetadataRead(path, problem=f"unreadable ({exc})")
    if len(raw) > MAX_BYTES:
        return MetadataRead(path, problem=f"larger than {MAX_BYTES} bytes")
    try:
        return MetadataRead(path, decode(prefix, raw))
    except MetadataFormatError as exc:
        return MetadataRead(path, problem=str(exc))
