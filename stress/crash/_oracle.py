"""The oracle of `stress.crash`: which checkpoints are complete, read back with TensorFlow.

Nothing here imports safeckpt: every tensor of every ``ckpt-N`` is read with TensorFlow's
``CheckpointReader`` (which checks each tensor's CRC32C) and must hold ``N``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stress.crash._child import (
    CHECKPOINT_NAME,
    COUNTER_KEY,
    STATE_FILE,
    TAG_KEY,
    var_key,
    var_names,
)
from stress.crash._inject import PART

#: safeckpt's writer lease (docs/fallback.md, "Two writers"): it stays, by design.
LEASE = ".safeckpt-writer-" + CHECKPOINT_NAME


@dataclass(frozen=True)
class Facts:
    """What the oracle found for one ``ckpt-N`` (TensorFlow's reader only, no safeckpt)."""

    step: int
    status: str  # "complete", "incomplete" or "inconsistent"
    reason: str = ""
    tag: int | None = None
    hashes: tuple[tuple[str, str], ...] = ()  # (file name, blake2b) of a complete one


_INDEX_RE = re.compile(rf"^{CHECKPOINT_NAME}-(\d+)\.index$")


def _hash(path: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Oracle:
    """Decides which checkpoints are complete by reading back every tensor with TensorFlow.

    Results are cached by file identity (inode, size, mtime, ctime of every file of the
    checkpoint), so each version of a checkpoint is read once.
    """

    def __init__(self, n_vars: int, elements: int) -> None:
        self._names = var_names(n_vars)
        self._elements = elements
        self._cache: dict[tuple[Any, ...], Facts] = {}

    def scan(self, directory: str) -> dict[int, Facts]:
        """Facts for every ``ckpt-N`` with an index file in `directory`, by N."""
        names = sorted(os.listdir(directory))
        found: dict[int, Facts] = {}
        for name in names:
            match = _INDEX_RE.match(name)
            if not match:
                continue
            step = int(match.group(1))
            base = f"{CHECKPOINT_NAME}-{step}"
            files = [name] + [n for n in names if n.startswith(base + ".data-")]
            identity: list[Any] = [directory, step]
            for f in files:
                try:
                    st = os.stat(os.path.join(directory, f))
                except OSError:
                    continue
                identity.append((f, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
            key = tuple(identity)
            if key not in self._cache:
                self._cache[key] = self._read(directory, step, files)
            found[step] = self._cache[key]
        return found

    def _read(self, directory: str, step: int, files: list[str]) -> Facts:
        import tensorflow as tf

        prefix = os.path.join(directory, f"{CHECKPOINT_NAME}-{step}")
        try:
            reader = tf.train.load_checkpoint(prefix)
            keys = reader.get_variable_to_shape_map()
            expected = {var_key(n) for n in self._names} | {TAG_KEY, COUNTER_KEY}
            if expected - set(keys):
                return Facts(step, "incomplete", f"keys missing: {sorted(expected - set(keys))}")
            tensors = {k: reader.get_tensor(k) for k in keys}  # every tensor, CRC-checked
        except Exception as exc:  # TF raises OpError, IndexError, ValueError, RuntimeError
            return Facts(step, "incomplete", f"{type(exc).__name__}: {str(exc)[:200]}")
        tag = int(tensors[TAG_KEY])
        wrong = [
            n
            for n in self._names
            if tensors[var_key(n)].shape != (self._elements,)
            or not (tensors[var_key(n)] == float(step)).all()
        ]
        if int(tensors[COUNTER_KEY]) != step:
            wrong.append(f"save_counter={int(tensors[COUNTER_KEY])}")
        if wrong:
            return Facts(step, "inconsistent", f"not filled with {step}: {wrong}", tag)
        hashes = tuple((f, _hash(os.path.join(directory, f))) for f in sorted(files))
        return Facts(step, "complete", "", tag, hashes)


def state_paths(directory: str) -> tuple[str | None, list[str]]:
    """The state file's latest and listed basenames, read with TensorFlow (None, [] if none)."""
    import tensorflow as tf

    try:
        state = tf.train.get_checkpoint_state(directory)
    except (ValueError, UnicodeDecodeError, tf.errors.OpError):
        return None, []
    if state is None:
        return None, []
    listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
    return os.path.basename(state.model_checkpoint_path), listed


def leftovers(directory: str, complete: Iterable[Facts]) -> list[str]:
    """Entries of `directory` but the state file, the lease and complete checkpoints.

    A complete checkpoint's metadata file (docs/metadata.md) belongs to it.
    """
    keep = {STATE_FILE, LEASE}
    for facts in complete:
        keep.update(name for name, _ in facts.hashes)
        keep.add(f"{CHECKPOINT_NAME}-{facts.step}{METADATA_SUFFIX}")
    out = []
    for name in sorted(os.listdir(directory)):
        if name in keep:
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            inside = sorted(os.listdir(path))
            out.append(f"{name}/ [{', '.join(inside) if inside else 'empty'}]")
        else:
            out.append(name)
    return out


METADATA_SUFFIX = ".safeckpt.json"


def leftover_prefix(name: str) -> str:
    """The checkpoint a leftover entry belongs to (``ckpt-3`` of a data or metadata file)."""
    return name.split(".data-")[0].removesuffix(METADATA_SUFFIX)


def metadata_findings(directory: str, complete: dict[int, Facts]) -> list[str]:
    """Violations of "metadata files never outlive their checkpoints" (docs/metadata.md).

    Decided from the files alone: a ``ckpt-N.safeckpt.json`` must sit next to a file of
    ``ckpt-N`` (its index or data), name that checkpoint, and, next to a complete one, be
    no older than its index (it is written after the checkpoint: an older file would
    describe an earlier checkpoint of that number).
    """
    names = set(os.listdir(directory))
    bad = []
    for name in sorted(n for n in names if n.endswith(METADATA_SUFFIX)):
        base = name[: -len(METADATA_SUFFIX)]
        if not any(n.startswith(base + ".") and n != name for n in names):
            bad.append(f"{name} outlived its checkpoint")
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as exc:
            bad.append(f"{name} is not readable JSON: {exc}")
            continue
        named = data.get("checkpoint") if isinstance(data, dict) else None
        if named != base:
            bad.append(f"{name} describes {named!r}")
        step = int(base.rsplit("-", 1)[1]) if base.rsplit("-", 1)[-1].isdigit() else None
        if step in complete:
            index = os.stat(os.path.join(directory, base + ".index")).st_mtime_ns
            if os.stat(os.path.join(directory, name)).st_mtime_ns < index:
                bad.append(f"{name} is older than {base}.index (a stale file)")
    return bad


def listing(directory: str) -> list[str]:
    """``name size mtime`` of every entry of `directory` (one level into subdirectories)."""
    out = []
    for root, dirs, files in os.walk(directory):
        depth = os.path.relpath(root, directory).count(os.sep)
        if depth > 0:
            dirs[:] = []
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            rel = os.path.relpath(path, directory)
            out.append(f"{rel} {st.st_size} {st.st_mtime_ns / 1e9:.6f}")
    return out


def where_landed(directory: str, step: int, model_bytes: int, oracle: dict[int, Facts]) -> str:
    """Where in the save of `step` a kill landed, judged from the files it left."""
    base = f"{CHECKPOINT_NAME}-{step}"
    prefix = os.path.join(directory, base)
    temp = prefix + "_temp"
    latest, _listed = state_paths(directory)
    if latest == base:
        return "state_written"  # the sweep, the 2nd state write or safeckpt's cleanup
    facts = oracle.get(step)
    if facts is not None and facts.status == "complete":
        if os.path.isdir(temp):
            inside = os.listdir(temp)
            return "part_index_unlink" if f"{PART}.index" in inside else "temp_rmdir"
        return "state_write"
    if os.path.exists(prefix + ".index"):
        return "index_write"
    if os.path.exists(prefix + ".data-00000-of-00001"):
        return "index_create"
    if not os.path.isdir(temp):
        return "temp_mkdir"
    inside = os.listdir(temp)
    if f"{PART}.data-00000-of-00001" in inside:
        return "data_rename" if f"{PART}.index" in inside else "tmp_index_rename"
    partial = [n for n in inside if ".data-" in n and ".tempstate" in n]
    if partial and os.path.getsize(os.path.join(temp, partial[0])) >= model_bytes:
        return "tmp_data_rename"
    return "data_write"
