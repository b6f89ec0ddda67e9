"""``safeckpt inspect`` and ``safeckpt diff``: what checkpoints hold, as object trees."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from safeckpt._cli.best import metadata_json, metadata_lines
from safeckpt._diagnose.alternatives import with_alternatives
from safeckpt._diagnose.path import diagnose
from safeckpt._diagnosis import Diagnosis, human_size
from safeckpt._errorbase import SafeCheckpointError
from safeckpt._format.graph import CheckpointGraph, Entry
from safeckpt._format.layout import INDEX_SUFFIX
from safeckpt._format.metadata import read_metadata
from safeckpt._format.verify import check_prefix, graph_or_diagnosis
from safeckpt._io import fs
from safeckpt._restore.request import resolve_request
from safeckpt._serialize import dumps, to_jsonable

EXIT_OK, EXIT_DIFFERENT = 0, 1


class NotReadableError(SafeCheckpointError):
    """What ``inspect``/``diff`` were given is not a readable checkpoint (with its diagnosis).

    Not a `RestoreError` (a ``tf.errors`` class): the command line reports it without
    importing TensorFlow.
    """


def _graph(path: str) -> CheckpointGraph:
    """The graph of the checkpoint `path` names (a prefix, one of its files, a directory).

    The checkpoint is verified (quick) first and read by safeckpt's parser only: a damaged
    checkpoint is reported with its diagnosis, never handed to TensorFlow's reader (which
    aborts the process on some damage).

    Raises:
        NotReadableError: `path` is not a readable checkpoint (with its diagnosis).
    """
    prefix = resolve_request(path, "ckpt").prefix
    if not fs.exists(prefix + INDEX_SUFFIX):
        found = diagnose(prefix)
        raise NotReadableError(f"{prefix} is not a checkpoint.\n{found}", found)
    checked = check_prefix(prefix)
    graph = graph_or_diagnosis(prefix) if checked.ok else checked
    if isinstance(graph, Diagnosis):
        found = with_alternatives(graph, prefix)
        raise NotReadableError(f"{prefix} cannot be read.\n{found}", found)
    return graph


def _describe(entry: Entry) -> str:
    shape = "x".join(map(str, entry.shape)) if entry.shape else "scalar"
    return f"{shape} {entry.dtype}, {human_size(entry.size_bytes)}"


def _as_dict(graph: CheckpointGraph) -> dict[str, Any]:
    return {
        "prefix": graph.prefix,
        "name_based": graph.name_based,
        "values": len(graph.entries),
        "total_bytes": graph.total_bytes,
        "entries": [{**to_jsonable(e), "size_bytes": e.size_bytes} for e in graph.entries],
    }


def inspect(args: argparse.Namespace, out: TextIO) -> int:
    """Print the object tree of one checkpoint, optimizer slots under their variable."""
    graph = _graph(args.prefix)
    if args.json:
        print(dumps({**_as_dict(graph), "metadata": metadata_json(graph.prefix)}), file=out)
        return EXIT_OK
    kind = "TF1 name-based checkpoint (no object graph)" if graph.name_based else "object graph"
    print(f"{graph.prefix}: {kind}", file=out)
    slots: dict[str, list[Entry]] = {}
    for entry in graph.entries:
        if entry.slot_of is not None:
            slots.setdefault(entry.slot_of, []).append(entry)
    width = max((len(e.path) for e in graph.entries), default=0)
    for entry in sorted(graph.entries, key=lambda e: e.path):
        if entry.slot_of is not None:
            continue
        print(f"  {entry.path:<{width}}  {_describe(entry)}", file=out)
        for slot in slots.get(entry.path, ()):
            print(f"    slot {slot.slot_name}: {_describe(slot)}", file=out)
    print(f"{len(graph.entries)} values, {human_size(graph.total_bytes)} in all", file=out)
    read = read_metadata(graph.prefix)
    if read.metadata is not None:
        print(f"metadata ({fs.basename(read.path)}):", file=out)
        for line in metadata_lines(read.metadata):
            print(f"  {line}", file=out)
    elif read.problem is not None:
        print(f"metadata: {read.path} is damaged ({read.problem})", file=out)
    else:
        print("metadata: none (plain TensorFlow, or an older safeckpt)", file=out)
    return EXIT_OK


def diff(args: argparse.Namespace, out: TextIO) -> int:
    """Compare the structure of two checkpoints; exit 1 when it differs."""
    a, b = _graph(args.a), _graph(args.b)
    left = {e.path: e for e in a.entries}
    right = {e.path: e for e in b.entries}
    only_a = sorted(set(left) - set(right))
    only_b = sorted(set(right) - set(left))
    changed: list[dict[str, Any]] = [
        {
            "path": p,
            "a": {"shape": list(left[p].shape), "dtype": left[p].dtype},
            "b": {"shape": list(right[p].shape), "dtype": right[p].dtype},
        }
        for p in sorted(set(left) & set(right))
        if (left[p].shape, left[p].dtype) != (right[p].shape, right[p].dtype)
    ]
    same = not (only_a or only_b or changed)
    if args.json:
        data = {"a": a.prefix, "b": b.prefix, "identical": same, "only_in_a": only_a,
                "only_in_b": only_b, "changed": changed}  # fmt: skip
        print(dumps(data), file=out)
        return EXIT_OK if same else EXIT_DIFFERENT
    print(f"a: {a.prefix}\nb: {b.prefix}", file=out)
    for title, paths in (("only in a", only_a), ("only in b", only_b)):
        for path in paths:
            print(f"{title}: {path}", file=out)
    for item in changed:
        print(
            f"differs: {item['path']}: a {tuple(item['a']['shape'])} {item['a']['dtype']}, "
            f"b {tuple(item['b']['shape'])} {item['b']['dtype']}",
            file=out,
        )
    print("identical structure" if same else "structures differ", file=out)
    return EXIT_OK if same else EXIT_DIFFERENT
