"""Matching the program against a checkpoint before restoring it (strict loading, and more).

`compare` pairs the program's objects with the checkpoint's the way TensorFlow's restore does
(from the root, child by child, by local name) and lists what did not pair up; `diagnose_match`
decides, for a `MatchMode`, whether that is acceptable and explains it when not. Nothing is
assigned: shapes and dtypes come from the checkpoint's index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace

from safeckpt._causes import Cause
from safeckpt._diagnose.metadata import mismatch_evidence
from safeckpt._diagnosis import Diagnosis
from safeckpt._format.graph import CheckpointGraph, Entry, ProgramObject, program_graph
from safeckpt._io import fs
from safeckpt._io import tf as adapter
from safeckpt._settings import MatchMode

_SHOWN = 20  # object paths listed per kind in a diagnosis
_HALF = {"float16", "bfloat16"}
_SAVE_COUNTER = "save_counter"


@dataclass(frozen=True)
class Mismatch:
    """A variable whose stored shape or dtype differs from the program's."""

    path: str
    checkpoint_shape: tuple[int, ...]
    checkpoint_dtype: str
    program_shape: tuple[int, ...]
    program_dtype: str

    def describe(self) -> str:
        """``model/dense/kernel: checkpoint (4, 8) float32, program (4, 16) float32``."""
        return (
            f"{self.path}: checkpoint {self.checkpoint_shape} {self.checkpoint_dtype}, "
            f"program {self.program_shape} {self.program_dtype}"
        )


@dataclass(frozen=True)
class Match:
    """How the program's variables and the checkpoint's values pair up.

    Attributes:
        matched: How many program variables found their value.
        program_variables: How many variables the program has now.
        unmatched: Program variables that receive no value, by object path.
        unused: Checkpoint values the program does not take, by object path.
        pending: Checkpoint values waiting for objects not created yet (an unbuilt Keras
            model or optimizer): TensorFlow restores them when the objects are built.
        mismatched: Paired variables whose shape or dtype differs.
        renames: ``(checkpoint path, program path)`` of subtrees that hold the same variables
            under another name.
        checkpoint_roots: The names at the checkpoint's root.
        program_roots: The names at the program's root.
        name_based: A TF1 checkpoint without an object graph (matched by variable name).
        bookkeeping: TensorFlow's own bookkeeping variables
            (`safeckpt._io.tf.bookkeeping_variables`) that only one side has; they never make a
            match fail.
        notes: One line per such variable, for the restore report.
    """

    matched: int
    program_variables: int
    unmatched: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    mismatched: tuple[Mismatch, ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    checkpoint_roots: tuple[str, ...] = ()
    program_roots: tuple[str, ...] = ()
    name_based: bool = False
    bookkeeping: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def _shape_fits(stored: tuple[int, ...], program: tuple[int, ...]) -> bool:
    return len(stored) == len(program) and all(
        p in (-1, s) for s, p in zip(stored, program, strict=True)
    )


def _mismatch(path: str, entry: Entry, obj: ProgramObject) -> Mismatch | None:
    if _shape_fits(entry.shape, obj.shape) and entry.dtype == obj.dtype:
        return None
    return Mismatch(path, entry.shape, entry.dtype, obj.shape, obj.dtype)


def _is_bookkeeping(path: str, shape: tuple[int, ...], dtype: str) -> bool:
    """Whether `path` is a variable TensorFlow adds to a checkpoint itself (an int64 scalar)."""
    return path in adapter.bookkeeping_variables() and shape == () and dtype == "int64"


def _bookkeeping_notes(prefix: str, missing: list[str], extra: list[str]) -> tuple[str, ...]:
    """What the report says about bookkeeping variables that only one side has."""
    who = adapter.bookkeeping_variables()
    base = fs.basename(prefix)
    return (
        *(
            f"{path} is not in {base}: it is bookkeeping of {who[path]}, which TensorFlow "
            "starts from its initial value, as it does with its own manager."
            for path in missing
        ),
        *(f"{base} holds {path}, bookkeeping of {who[path]}; not restored." for path in extra),
    )


def _compare_by_name(program: dict[int, ProgramObject], graph: CheckpointGraph) -> Match:
    stored = {e.key: e for e in graph.entries}
    variables = [o for o in program.values() if o.variable and o.path != _SAVE_COUNTER]
    unmatched: list[str] = []
    missing: list[str] = []
    mismatched, used = [], set()
    for obj in variables:
        entry = stored.get(obj.name)
        if entry is None:
            bookkeeping = _is_bookkeeping(obj.path, obj.shape, obj.dtype)
            (missing if bookkeeping else unmatched).append(obj.path)
            continue
        used.add(entry.key)
        if (found := _mismatch(obj.path, entry, obj)) is not None:
            mismatched.append(found)
    return Match(
        len(variables) - len(unmatched) - len(missing),
        len(variables),
        tuple(unmatched),
        tuple(k for k in stored if k not in used),
        mismatched=tuple(mismatched),
        name_based=True,
        bookkeeping=tuple(missing),
        notes=_bookkeeping_notes(graph.prefix, missing, []),
    )


Signature = Counter[tuple[tuple[int, ...], str]]


def _signature(
    start: int,
    skip: Collection[int],
    children: Callable[[int], Iterable[int]],
    value: Callable[[int], tuple[tuple[int, ...], str] | None],
) -> Signature:
    """Shapes and dtypes of the values reachable from `start`, not entering `skip`."""
    found: Signature = Counter()
    seen, stack = set(), [start]
    while stack:
        node = stack.pop()
        if node in seen or node in skip:
            continue
        seen.add(node)
        if (item := value(node)) is not None:
            found[item] += 1
        stack.extend(children(node))
    return found


def _renames(
    program: dict[int, ProgramObject],
    graph: CheckpointGraph,
    paired: dict[int, int],
    entry_of: dict[int, Entry],
) -> tuple[tuple[str, str], ...]:
    """Siblings that hold the same unpaired shapes and dtypes under different names."""
    taken = set(paired.values())
    found: list[tuple[str, str]] = []

    def program_value(oid: int) -> tuple[tuple[int, ...], str] | None:
        obj = program[oid]
        return (obj.shape, obj.dtype) if obj.variable else None

    def stored_children(nid: int) -> Iterable[int]:
        return graph.children.get(nid, {}).values()

    def stored_value(nid: int) -> tuple[tuple[int, ...], str] | None:
        entry = entry_of.get(nid)
        return None if entry is None else (entry.shape, entry.dtype)

    for pid, nid in paired.items():
        parent = program[pid]
        stored = graph.children.get(nid, {})
        lonely = {n: c for n, c in stored.items() if c not in taken and n not in parent.children}
        for name, child in parent.children.items():
            if child in paired or name in stored:
                continue
            wanted = _signature(
                child, paired, lambda o: program[o].children.values(), program_value
            )
            if not wanted:
                continue
            for other, node in lonely.items():
                if _signature(node, taken, stored_children, stored_value) == wanted:
                    join = f"{parent.path}/" if parent.path else ""
                    found.append((join + other, join + name))
                    break
    return tuple(found)


def compare(root: object, graph: CheckpointGraph) -> Match:
    """Pair the objects of the `tf.train.Checkpoint` `root` with those of `graph`."""
    program = program_graph(root)
    if graph.name_based:
        return _compare_by_name(program, graph)
    pairs = {id(root): 0}  # program object id -> checkpoint node id
    taken = {0}
    queue = [(id(root), 0)]
    while queue:
        pid, nid = queue.pop(0)
        for name, child_node in graph.children.get(nid, {}).items():
            child = program[pid].children.get(name)
            if child is None or child in pairs or child_node in taken:
                continue
            pairs[child] = child_node
            taken.add(child_node)
            queue.append((child, child_node))
    entry_of = {graph.node_of[e.path]: e for e in graph.entries}
    # save_counter is bookkeeping safeckpt creates before restoring; Checkpoint.write()
    # does not store it, so it is never required.
    variables = [o for o in program.values() if o.variable and o.path != _SAVE_COUNTER]
    unmatched: list[str] = []
    missing: list[str] = []
    mismatched, extra = [], []
    for obj in variables:
        entry = entry_of.get(pairs.get(id(obj.obj), -1))
        if entry is None:
            bookkeeping = _is_bookkeeping(obj.path, obj.shape, obj.dtype)
            (missing if bookkeeping else unmatched).append(obj.path)
        elif (found := _mismatch(obj.path, entry, obj)) is not None:
            mismatched.append(found)
    by_node = {nid: program[pid] for pid, nid in pairs.items()}
    unused: list[str] = []
    pending: list[str] = []
    for entry in graph.entries:
        if graph.node_of[entry.path] in by_node:
            continue
        ancestors = [by_node.get(n) for n in _ancestor_nodes(graph, entry.path)]
        waiting = entry.slot_of is not None or any(o is not None and o.unbuilt for o in ancestors)
        if _is_bookkeeping(entry.path, entry.shape, entry.dtype):
            extra.append(entry.path)
        else:
            (pending if waiting else unused).append(entry.path)
    return Match(
        len(variables) - len(unmatched) - len(missing),
        len(variables),
        tuple(unmatched),
        tuple(unused),
        tuple(pending),
        tuple(mismatched),
        _renames(program, graph, pairs, entry_of) if unmatched else (),
        tuple(graph.children.get(0, {})),
        tuple(program[id(root)].children),
        bookkeeping=(*missing, *extra),
        notes=_bookkeeping_notes(graph.prefix, missing, extra),
    )


def _ancestor_nodes(graph: CheckpointGraph, path: str) -> list[int]:
    """The nodes of the ancestors of `path` that the graph holds, the root first.

    One walk down the path (linear in its length, however deep the graph is nested).
    """
    nodes = [0]
    for part in path.split("/")[:-1] if path else []:
        child = graph.children.get(nodes[-1], {}).get(part)
        if child is None:
            break
        nodes.append(child)
    return nodes


def _listed(title: str, paths: tuple[str, ...]) -> list[str]:
    if not paths:
        return []
    shown = ", ".join(paths[:_SHOWN])
    more = f" (and {len(paths) - _SHOWN} more)" if len(paths) > _SHOWN else ""
    return [f"{title} ({len(paths)}): {shown}{more}."]


def diagnose_match(match: Match, prefix: str, mode: MatchMode) -> Diagnosis | None:
    """The diagnosis of a match `mode` does not accept, or None when it may go ahead.

    With a metadata file, the evidence also says what wrote the checkpoint and which
    variables were added, removed or reshaped since.
    """
    found = _diagnose_match(match, prefix, mode)
    if found is None:
        return None
    reshaped = [m.path for m in match.mismatched]
    more = mismatch_evidence(prefix, match.unmatched, match.unused, reshaped)
    return replace(found, evidence=(*found.evidence, *more)) if more else found


def _diagnose_match(match: Match, prefix: str, mode: MatchMode) -> Diagnosis | None:
    if mode is MatchMode.PARTIAL:
        return None
    base, directory = fs.basename(prefix), fs.dirname(prefix)
    if match.name_based and (match.unmatched or match.mismatched):
        return Diagnosis(
            Cause.NAME_BASED_CHECKPOINT,
            f"{base} is a TF1 name-based checkpoint whose variable names do not match the "
            "program's.",
            directory,
            prefix,
            (
                f"{prefix} has no object graph (written by tf.compat.v1.train.Saver).",
                f"{match.matched} of the program's {match.program_variables} variables "
                "match a name in it.",
                *_listed("Program variables without a value", match.unmatched),
                *_listed("Names in the checkpoint", match.unused),
                *(m.describe() + "." for m in match.mismatched),
            ),
            (
                "Give the program's variables the checkpoint's names (tf.Variable(..., "
                "name=...)) to restore it by name, or convert it once: load it with "
                f"tf.train.load_checkpoint({prefix!r}), assign each value to its variable, "
                "and save with tf.train.Checkpoint(...).",
                "Or restore with match='partial' to take only the names that match.",
            ),
        )
    if match.unmatched or (mode is MatchMode.CONSUMED and match.unused):
        renames = tuple(
            f"The checkpoint's `{c}` looks like the program's `{p}`: restore with "
            f"tf.train.Checkpoint({fs.basename(c)}={fs.basename(p)}) at that level, or "
            "rename the attribute back."
            for c, p in match.renames
        )
        what = (
            f"{len(match.unmatched)} of the program's {match.program_variables} variables "
            f"would receive no value from {base}"
            if match.unmatched
            else f"{len(match.unused)} values of {base} would not be used (match='consumed')"
        )
        return Diagnosis(
            Cause.OBJECT_GRAPH_MISMATCH,
            f"The program and {base} disagree on which objects exist: {what}.",
            directory,
            prefix,
            (
                f"checkpoint: {', '.join(match.checkpoint_roots)}",
                f"program: {', '.join(match.program_roots)}",
                f"{match.matched} of {match.program_variables} program variables matched.",
                *_listed("Program variables without a value", match.unmatched),
                *_listed("Checkpoint values the program does not take", match.unused),
                *(m.describe() + "." for m in match.mismatched),
            ),
            (
                *renames,
                f"List what the checkpoint holds: safeckpt inspect {prefix}",
                "Restore with match='partial' to load what matches (for a warm start).",
            ),
        )
    if match.mismatched:
        half = any(
            {m.checkpoint_dtype, m.program_dtype} & _HALF
            and {m.checkpoint_dtype, m.program_dtype} & {"float32"}
            for m in match.mismatched
        )
        suggestions = [
            "Restore with the model configuration the checkpoint was written with (layer "
            "sizes, dtypes), or start this configuration in a new directory.",
            f"List what the checkpoint holds: safeckpt inspect {prefix}",
        ]
        if half:
            suggestions.insert(
                0,
                "float16/bfloat16 against float32: the mixed precision policy differs "
                "(keras.mixed_precision.set_global_policy) between the run that saved and "
                "this one.",
            )
        return Diagnosis(
            Cause.MODEL_MISMATCH,
            f"{len(match.mismatched)} variable(s) of {base} do not fit the program's "
            "(shape or dtype); nothing was restored.",
            directory,
            prefix,
            tuple(m.describe() + "." for m in match.mismatched),
            tuple(suggestions),
        )
    return None
