"""The two object graphs a restore matches: the checkpoint's and the program's.

A TF2 checkpoint stores its object graph in the ``_CHECKPOINTABLE_OBJECT_GRAPH`` tensor (a
``TrackableObjectGraph``: nodes, their children by local name, the tensors they hold); a TF1
name-based checkpoint has none, only variable names. Both are read with
safeckpt's own index parser only (never TensorFlow's reader, which aborts the process on some
damaged indexes), which reads the index and the object graph only, so the comparison happens
before any variable is assigned. An object graph that does not decode, or whose node ids
point past its nodes, is `ObjectGraphError`. The program's graph is walked from the
`tf.train.Checkpoint` with `tf.train.TrackableView`, as TensorFlow's saver walks it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from safeckpt._format import dtypes
from safeckpt._format.index import BundleEntry, BundleIndex, read_index
from safeckpt._format.layout import INDEX_SUFFIX
from safeckpt._format.protos import TrackableObjectGraph
from safeckpt._format.shards import read_string_scalar
from safeckpt._io.tf import tf

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VALUE = "VARIABLE_VALUE"


@dataclass(frozen=True)
class Entry:
    """One value stored in a checkpoint.

    Attributes:
        path: Its object path (``model/dense/kernel``), or the variable name in a TF1
            name-based checkpoint.
        key: The tensor's key in the checkpoint.
        shape: The stored shape.
        dtype: The stored dtype name (``float32``).
        slot_of: For an optimizer slot, the path of the variable it belongs to.
        slot_name: For an optimizer slot, its name (``m``, ``momentum``).
    """

    path: str
    key: str
    shape: tuple[int, ...]
    dtype: str
    slot_of: str | None = None
    slot_name: str | None = None

    @property
    def size_bytes(self) -> int:
        """The value's size (strings count as 0)."""
        try:
            item = dtypes.named(self.dtype).size
        except TypeError:  # pragma: no cover - the index parser rejects these
            return 0
        return int(math.prod(self.shape)) * int(item) if self.dtype != "string" else 0


@dataclass(frozen=True)
class CheckpointGraph:
    """What a checkpoint holds, without restoring it.

    Attributes:
        prefix: The checkpoint prefix.
        entries: Every stored value (the object graph and ``save_counter`` bookkeeping
            excluded), in object-graph order.
        children: For object-graph checkpoints, node id -> {local name: child node id}.
        node_of: Entry path -> node id (object-graph checkpoints).
        name_based: True for a TF1 checkpoint without an object graph.
    """

    prefix: str
    entries: tuple[Entry, ...]
    children: dict[int, dict[str, int]] = field(default_factory=dict)
    node_of: dict[str, int] = field(default_factory=dict)
    name_based: bool = False

    @property
    def total_bytes(self) -> int:
        """The size of every value."""
        return sum(e.size_bytes for e in self.entries)


class ObjectGraphError(ValueError):
    """The object graph's bytes are intact but are not a usable ``TrackableObjectGraph``."""


def graph_entry(index: BundleIndex) -> BundleEntry | None:
    """The index entry of the object graph, None for a TF1 name-based checkpoint."""
    return next((e for e in index.entries if e.name == OBJECT_GRAPH_KEY), None)


def decode_object_graph(entry: BundleEntry, serialized: bytes) -> Any:
    """Parse the object graph and check that every node id it names exists.

    Raises:
        ObjectGraphError: It is not a scalar string, does not parse, has no root, a child
            or slot variable names a node id out of range, or a slot variable is the root.
    """
    if entry.shape != () or entry.is_slice_container:
        raise ObjectGraphError(f"{entry.name} is not a scalar (shape {list(entry.shape)})")
    graph = TrackableObjectGraph()
    try:
        graph.ParseFromString(serialized)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ObjectGraphError(f"{entry.name} is not a TrackableObjectGraph ({exc})") from None
    count = len(graph.nodes)
    if count == 0:
        raise ObjectGraphError(f"{entry.name} has no nodes (not even the root object)")
    for number, node in enumerate(graph.nodes):
        named = [(f"child {c.local_name!r}", c.node_id) for c in node.children]
        named += [
            (f"slot {ref.slot_name!r}", node_id)
            for ref in node.slot_variables
            for node_id in (ref.original_variable_node_id, ref.slot_variable_node_id)
        ]
        for ref in node.slot_variables:
            if ref.slot_variable_node_id == 0:  # the root is the Checkpoint, never a slot
                raise ObjectGraphError(f"{entry.name}: node {number}'s slot is the root object")
        for what, node_id in named:
            if not 0 <= node_id < count:
                raise ObjectGraphError(
                    f"{entry.name}: node {number}'s {what} is node {node_id}, but the graph "
                    f"has {count} nodes"
                )
    return graph


#: The object paths of a checkpoint's values may take this many times the size of its
#: object graph and index (+ 16 MiB): a chain of 50,000 nested objects would otherwise name
#: its values with gigabytes of paths.
_PATH_EXPANSION = 64


class _Paths:
    """Object paths, breadth first as TensorFlow names objects, joined only for the nodes asked.

    Each node keeps its parent and name. The paths of the nodes that hold values (``keys``:
    the index's keys), counted in characters and levels, may not exceed `budget`
    (`ObjectGraphError`), checked before any is joined.
    """

    def __init__(self, graph: Any, budget: int, keys: set[str]) -> None:
        self._parent: dict[int, tuple[int, str]] = {}
        self._length = {0: 0}  # characters of the path plus its depth: the work to join it
        order = [0]
        for node_id in order:
            for child in graph.nodes[node_id].children:
                if child.node_id not in self._length:
                    self._parent[child.node_id] = (node_id, child.local_name)
                    parent = self._length[node_id]
                    self._length[child.node_id] = parent + 1 + len(child.local_name)
                    order.append(child.node_id)
        for node_id, node in enumerate(graph.nodes):
            if any(a.name == _VALUE and a.checkpoint_key in keys for a in node.attributes):
                budget -= 2 * self._length.get(node_id, 0)  # its path, and as a slot's variable
        if budget < 0:
            raise ObjectGraphError("the object graph's paths are too long (nested too deep)")

    def of(self, node_id: int) -> str | None:
        """The path of `node_id` (``""`` for the root), None when the root does not reach it."""
        if node_id not in self._length:
            return None
        names = []
        while node_id in self._parent:
            node_id, name = self._parent[node_id]
            names.append(name)
        return "/".join(reversed(names))


def parse_object_graph(
    index: BundleIndex, entry: BundleEntry, serialized: bytes
) -> tuple[Any, _Paths]:
    """`decode_object_graph`, and the paths of its values bounded (`_PATH_EXPANSION`).

    Returns the graph and its `_Paths`.

    Raises:
        ObjectGraphError: It does not decode, or its paths are too long.
    """
    graph = decode_object_graph(entry, serialized)
    budget = _PATH_EXPANSION * (len(serialized) + index.size_bytes) + (1 << 24)
    return graph, _Paths(graph, budget, {e.name for e in index.entries})


def read_checkpoint_graph(prefix: str) -> CheckpointGraph:
    """Read the values and object graph of `prefix` (the index and the graph; no values).

    Only safeckpt's own parser reads the files: two reads (the index, then the object
    graph's bytes, checked against their CRC32C) instead of TensorFlow's
    ``CheckpointReader``, which also lists the directory (a glob), reads the index three
    times, and aborts the process on some damaged indexes.

    Raises:
        tf.errors.NotFoundError: The index does not exist.
        IndexFormatError: The index is not a valid tensor-bundle index.
        ObjectGraphError: The object graph does not decode.
        ValueError: The object graph's bytes do not match their checksum.
        EOFError: The data shard ends before the object graph.
        tf.errors.OpError, OSError: A file cannot be read.
    """
    index = read_index(prefix + INDEX_SUFFIX)
    shapes: dict[str, tuple[int, ...]] = {}
    kinds: dict[str, str] = {}
    for item in index.entries:
        if item.key.startswith(b"\x00"):  # one slice of a partitioned variable
            continue
        shapes[item.name] = item.shape
        kinds[item.name] = dtypes.dtype(item.dtype).name  # known: the parser checked it
    found = graph_entry(index)

    def entry(path: str, key: str, **slot: Any) -> Entry:
        return Entry(path, key, shapes[key], kinds[key], **slot)

    if found is None:
        return CheckpointGraph(prefix, tuple(entry(k, k) for k in sorted(shapes)), name_based=True)
    graph, paths = parse_object_graph(index, found, read_string_scalar(prefix, index, found))
    slots = {
        ref.slot_variable_node_id: (ref.original_variable_node_id, ref.slot_name)
        for node in graph.nodes
        for ref in node.slot_variables
    }
    entries, node_of = [], {}
    for node_id, node in enumerate(graph.nodes):
        for attribute in node.attributes:
            if attribute.name != _VALUE or attribute.checkpoint_key not in kinds:
                continue
            original, slot_name = slots.get(node_id, (None, None))
            slot_of = None if original is None else paths.of(original)
            slot_of = "?" if original is not None and slot_of is None else slot_of
            path = paths.of(node_id) or f"{slot_of}/.slot/{slot_name}"
            entries.append(
                entry(path, attribute.checkpoint_key, slot_of=slot_of, slot_name=slot_name)
            )
            node_of[path] = node_id
    children = {i: {c.local_name: c.node_id for c in n.children} for i, n in enumerate(graph.nodes)}
    return CheckpointGraph(prefix, tuple(entries), children, node_of)


@dataclass(frozen=True)
class ProgramObject:
    """One object of the program's graph.

    Attributes:
        path: Its object path from the checkpoint root (the first, breadth first).
        obj: The object.
        children: Local name -> child object id.
        variable: Whether it holds a value (a `tf.Variable` or a Keras variable).
        unbuilt: Whether it may still create variables (a Keras layer, model or optimizer
            whose ``built`` is False): checkpoint values below it are restored later.
    """

    path: str
    obj: Any
    children: dict[str, int]
    variable: bool
    unbuilt: bool

    @property
    def shape(self) -> tuple[int, ...]:
        """The variable's shape (unknown dimensions as -1)."""
        return tuple(-1 if d is None else int(d) for d in self.obj.shape)

    @property
    def dtype(self) -> str:
        """The variable's dtype name."""
        return str(tf.as_dtype(self.obj.dtype).name)

    @property
    def name(self) -> str:
        """The variable's global name, as a TF1 name-based checkpoint keys it."""
        if isinstance(self.obj, tf.Variable):  # ask a tf.Variable (maybe distributed) no more
            return str(self.obj.name).split(":", 1)[0]
        path = getattr(self.obj, "path", None)  # a Keras variable
        return str(path or getattr(self.obj, "name", "") or "").split(":", 1)[0]


def _is_variable(obj: Any) -> bool:
    return isinstance(obj, tf.Variable) or (
        callable(getattr(obj, "assign", None)) and hasattr(obj, "shape") and hasattr(obj, "dtype")
    )


def program_graph(root: Any) -> dict[int, ProgramObject]:
    """The objects reachable from `root` (a `tf.train.Checkpoint`), by ``id``, root first."""
    objects: dict[int, ProgramObject] = {}
    queue = [("", root)]
    while queue:
        path, obj = queue.pop(0)
        if id(obj) in objects:
            continue
        variable = _is_variable(obj)
        # Touch nothing of a variable but its shape and dtype: reading anything else of a
        # distributed (SyncOnRead) variable may start a collective the other workers never join.
        kids = {} if variable else dict(tf.train.TrackableView(obj).children(obj))
        objects[id(obj)] = ProgramObject(
            path,
            obj,
            {name: id(child) for name, child in kids.items()},
            variable,
            not variable and getattr(obj, "built", True) is False,
        )
        queue.extend((f"{path}/{name}" if path else name, child) for name, child in kids.items())
    return objects
