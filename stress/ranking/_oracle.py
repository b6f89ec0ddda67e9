"""The documented ranking rule as its own small function, and the checks built on it.

Nothing here calls safeckpt. The rule reads a `Listing` (file names and mtimes of one
directory, and the state file's text) exactly as the documentation states it; the state file
is parsed the way TensorFlow parses it (``text_format.Merge`` into its ``CheckpointState``
proto, so a repeated ``model_checkpoint_path`` keeps the last one). Intact-ness comes from the
sha256 of every file recorded when the scenario wrote it (`Written`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf import text_format
from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState

STATE = "checkpoint"
SENTINEL = -1.0  # the value of a fresh model
NEW_VALUE = 1.0e7  # the value the model holds when the harness saves once more
_DATA_RE = re.compile(r"^(?P<prefix>.+)\.data-(?P<i>\d{5})-of-(?P<n>\d{5})$")
_STEP_RE = re.compile(r"^(?P<name>.+)-(?P<step>\d+)$")
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_WINDOWS_RE = re.compile(r"^[A-Za-z]:[\\/]|\\")


@dataclass(frozen=True)
class Written:
    """What the scenario recorded when it wrote a checkpoint."""

    step: int
    value: float
    hashes: dict[str, str]  # file name in the directory -> sha256


@dataclass(frozen=True)
class Listing:
    """What the rule looks at: one directory's files (name -> mtime_ns) and its state file."""

    directory: str
    files: dict[str, int]
    state_text: str | None
    state_mtime: int | None


@dataclass(frozen=True)
class State:
    """A state file as TensorFlow reads it."""

    latest: str
    paths: tuple[str, ...]
    timestamps: tuple[float, ...]


@dataclass(frozen=True)
class Ranking:
    """The rule's answer: candidate base names, newest usable first, and what led to it."""

    order: tuple[str, ...]
    name: str  # the checkpoint name of the candidates
    latest: str | None  # L, when it is a candidate
    state_names_own: bool  # the state file's latest resolves to a checkpoint of the manager's name
    listed: frozenset[str] = frozenset()
    timestamped: frozenset[str] = frozenset()  # all_model_checkpoint_paths zipped with a time
    interrupted: frozenset[str] = frozenset()
    any_index: bool = False
    any_data: bool = False


#: safeckpt's metadata file beside a checkpoint (docs/metadata.md).
METADATA_SUFFIX = ".safeckpt.json"


def metadata_violations(
    before: dict[str, str], after: dict[str, str], new_save: str | None
) -> list[tuple[str, str]]:
    """Check that metadata files never outlive their checkpoints, from the listings alone.

    `before` / `after`: every file name of the directory -> sha256, before the manager was
    constructed and after its save. A metadata file after the save must sit beside a file of
    its checkpoint, or be an orphan that was already one before (same bytes, its checkpoint
    already gone); the new save has one.
    """
    out: list[tuple[str, str]] = []
    alive, alive_before = prefixes_of(after), prefixes_of(before)
    for name, digest in sorted(after.items()):
        if not name.endswith(METADATA_SUFFIX):
            continue
        base = name[: -len(METADATA_SUFFIX)]
        orphan_before = base not in alive_before and before.get(name) == digest
        if base not in alive and not orphan_before:
            out.append(("metadata_outlived", f"{name} is left without {base}"))
    if new_save and os.path.basename(new_save) + METADATA_SUFFIX not in after:
        out.append(("metadata_missing", f"the new save {new_save} has no metadata file"))
    return out


def split_name(base: str) -> tuple[str, int] | None:
    """``("ckpt", 3)`` for ``ckpt-3``."""
    m = _STEP_RE.match(base)
    return (m["name"], int(m["step"])) if m else None


def parse_state(text: str | None) -> State | None:
    """The state file as TensorFlow reads it, or None when TF would ignore or reject it."""
    if text is None:
        return None
    proto = CheckpointState()
    try:
        text_format.Merge(text, proto)
    except text_format.ParseError:
        return None
    if not proto.model_checkpoint_path:
        return None
    paths = tuple(proto.all_model_checkpoint_paths)
    return State(proto.model_checkpoint_path, paths, tuple(proto.all_model_checkpoint_timestamps))


def prefixes_of(files: Iterable[str]) -> set[str]:
    """Base names that have an ``.index`` or a data shard."""
    out = set()
    for f in files:
        if f.endswith(".index"):
            out.add(f[: -len(".index")])
        elif m := _DATA_RE.match(f):
            out.add(m["prefix"])
    return out


def complete(base: str, files: Iterable[str]) -> bool:
    """``.index`` present and every shard that the shard file names declare."""
    names = set(files)
    shards = [m for f in names if (m := _DATA_RE.match(f)) and m["prefix"] == base]
    if f"{base}.index" not in names or not shards:
        return False
    return all(
        f"{base}.data-{i:05d}-of-{m['n']}" in names for m in shards for i in range(int(m["n"]))
    )


def resolve(recorded: str, directory: str, present: set[str]) -> str | None:
    """The base name in ``directory`` a recorded path names, or None when it is ignored."""
    if _URI_RE.match(recorded) or _WINDOWS_RE.search(recorded):
        base = re.split(r"[\\/]", recorded.rstrip("/\\"))[-1]
        return base if base in present else None
    path = os.path.normpath(os.path.join(directory, recorded))
    if os.path.dirname(path) == directory:
        return os.path.basename(path)
    base = os.path.basename(path)
    return base if base in present else None


def rank(listing: Listing, name: str) -> Ranking:
    """The documented rule: which checkpoints are candidates, newest usable first."""
    present = prefixes_of(listing.files)
    state = parse_state(listing.state_text)
    own = _order(listing, state, name, present)
    if own.order or state is None:
        return own
    other = resolve(state.latest, listing.directory, present)
    parts = split_name(other) if other else None
    if other and parts and parts[0] != name and complete(other, listing.files):
        return _order(listing, state, parts[0], present, own_name=name)
    return own


def _order(
    listing: Listing, state: State | None, name: str, present: set[str], own_name: str = ""
) -> Ranking:
    files = listing.files
    steps = {
        b: p[1] for b in present if (p := split_name(b)) and p[0] == name and complete(b, files)
    }
    by_step = sorted(steps, key=lambda b: -steps[b])
    any_index = any(f.endswith(".index") for f in files)
    any_data = any(_DATA_RE.match(f) for f in files)
    if state is None:
        return Ranking(tuple(by_step), name, None, False, any_index=any_index, any_data=any_data)
    d = listing.directory
    latest = resolve(state.latest, d, present)
    listed = {b for p in (state.latest, *state.paths) if (b := resolve(p, d, present))}
    timed = {
        b
        for p, _ in zip(state.paths, state.timestamps, strict=False)
        if (b := resolve(p, d, present))
    }
    own = split_name(latest) if latest else None
    names_own = own is not None and own[0] == (own_name or name)
    listed_steps = [p[1] for b in listed if (p := split_name(b)) and p[0] == name]
    top = max(listed_steps, default=-1)

    def newest(b: str) -> int:
        return max(t for f, t in files.items() if f == f"{b}.index" or f.startswith(f"{b}.data-"))

    interrupted = {
        b
        for b in steps
        if b not in listed
        and steps[b] > top
        and (listing.state_mtime is None or newest(b) > listing.state_mtime)
    }
    usable = latest if latest in steps else None
    if usable is None:
        order = by_step
    else:
        first = [b for b in by_step if b in interrupted]
        order = [*first, usable, *(b for b in by_step if b not in interrupted and b != usable)]
    return Ranking(
        tuple(order),
        name,
        usable,
        names_own,
        frozenset(listed),
        frozenset(timed),
        frozenset(interrupted),
        any_index,
        any_data,
    )


# ------------------------------------------------------------------------------------------
# The checks.


@dataclass
class Before:
    """Facts about the directory right before the manager under test is constructed."""

    directory: str
    name: str
    ranking: Ranking
    facts: dict[str, Written]  # base name -> as written
    pre: dict[str, str]  # file name -> sha256, checkpoint files in the directory
    outside: dict[str, str]  # path -> sha256, every other file of the scenario

    def intact(self, base: str) -> bool:
        """Every file of ``base`` still holds the bytes recorded when it was written."""
        w = self.facts.get(base)
        return w is not None and all(self.pre.get(f) == h for f, h in w.hashes.items())


@dataclass
class Observed:
    """What the manager under test did."""

    construct_error: str | None = None
    latest: str | None = None
    restore_error: str | None = None
    not_found: bool = False
    save_path: str | None = None
    outcome: str | None = None
    value: float | None = None
    new_save: str | None = None
    save_error: str | None = None
    after: dict[str, str] = field(default_factory=dict)
    quarantined: dict[str, set[str]] = field(default_factory=dict)
    reopen_latest: str | None = None
    reopen_value: float | None = None
    reopen_error: str | None = None
    outside_after: dict[str, str] = field(default_factory=dict)
    tf_intact: set[str] | None = None  # base names plain TF left intact (max_to_keep=None)
    all_after: dict[str, str] = field(default_factory=dict)  # every file after the save


def check(b: Before, o: Observed, max_to_keep: int | None) -> list[tuple[str, str]]:
    """Every violation of the documented rule, as ``(kind, detail)``."""
    out: list[tuple[str, str]] = []
    r = b.ranking
    first = r.order[0] if r.order else None
    want_latest = os.path.join(b.directory, first) if first else None
    expected = next((c for c in r.order if b.intact(c)), None)
    if o.construct_error is not None:
        return [("constructor_raised", o.construct_error)]
    if o.latest != want_latest:
        out.append(("latest_checkpoint", f"got {o.latest}, rule says {want_latest}"))
    empty = not r.any_index and not r.any_data
    if o.restore_error is not None:
        if expected:
            out.append(("raised_with_usable", f"{o.restore_error}; {expected} is intact"))
        elif not o.not_found:
            out.append(("wrong_exception", f"{o.restore_error} is not a NotFoundError"))
        elif empty:
            out.append(("raised_on_empty", o.restore_error))
        return out + _outside(b, o)
    if o.outcome == "initialized":
        if expected:
            out.append(("fresh_with_usable", f"initialized although {expected} is intact"))
        elif r.any_index:
            out.append(("initialized_not_raised", "checkpoints exist, none intact: must raise"))
        if o.value != SENTINEL:
            out.append(("wrong_value", f"initialized but v={o.value}"))
    else:
        got = o.save_path or ""
        base = os.path.basename(got)
        if os.path.dirname(got) != b.directory or base != expected:
            out.append(("wrong_checkpoint", f"restored {got}, rule says {expected}"))
        elif o.value != b.facts[base].value:
            out.append(("wrong_value", f"{base} holds {b.facts[base].value}, got {o.value}"))
        elif base != first and o.outcome != "fell_back":
            out.append(("outcome", f"{base} is not the first candidate {first}: {o.outcome}"))
        elif base == first and (r.latest or not r.state_names_own) and o.outcome != "restored":
            out.append(("outcome", f"{base} is the first candidate: {o.outcome}"))
    if o.save_error is not None:
        return [*out, ("save_raised", o.save_error), *_outside(b, o)]
    return out + _after_save(b, o, max_to_keep, expected) + _outside(b, o)


def _after_save(
    b: Before, o: Observed, max_to_keep: int | None, restored: str | None
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    new = o.new_save or ""
    new_base = os.path.basename(new)
    if os.path.dirname(new) != b.directory:
        out.append(("save_elsewhere", new))
    if new_base in prefixes_of(b.pre):
        out.append(("reused_prefix", f"the new save {new_base} reuses an existing prefix"))
    deleted: set[str] = set()
    for f, h in sorted(b.pre.items()):
        if h in o.quarantined.get(f, set()) or o.after.get(f) == h:
            continue
        owner = next(iter(prefixes_of([f])))
        if f in o.after:
            kind = "overwrote_intact" if b.intact(owner) else "overwrote_damaged"
            out.append((kind, f"{f} was overwritten by the save of {new_base}"))
        else:
            deleted.add(owner)
    r = b.ranking
    if deleted and max_to_keep is None:
        out.append(("deleted_keep_all", f"max_to_keep=None deleted {sorted(deleted)}"))
    elif deleted:
        before = r.order[: r.order.index(restored)] if restored in r.order else ()
        # The restored checkpoint becomes the newest of the rotation: it goes only after
        # max_to_keep newer saves (here: one save, so only with max_to_keep=1).
        protected = {*(c for c in before if b.intact(c))}
        if max_to_keep > 1:
            protected.add(restored)
        rotation = {
            c
            for c in prefixes_of(b.pre)
            if (p := split_name(c))
            and p[0] == b.name
            and (c in r.timestamped or c in r.interrupted)
        }
        allowed = rotation - protected
        if bad := deleted - rotation:
            out.append(
                ("deleted_forbidden", f"deleted {sorted(bad)} (deletable: {sorted(allowed)})")
            )
        if bad := deleted & protected:
            out.append(("deleted_restored", f"deleted {sorted(bad)}, restored {restored}"))
        for i, c in enumerate(r.order):  # oldest first: nothing deletable older is kept
            kept = [y for y in r.order[i + 1 :] if y in allowed and b.intact(y) and _same(b, o, y)]
            if c in deleted and kept:
                out.append(("retention_order", f"deleted {c} but kept the older {kept[0]}"))
                break
    if o.reopen_error is not None:
        out.append(("reopen_raised", o.reopen_error))
    elif o.reopen_latest != new or o.reopen_value != NEW_VALUE:
        detail = f"latest {o.reopen_latest} (saved {new}), value {o.reopen_value}"
        out.append(("reopen", detail))
    for c in sorted(o.tf_intact or ()):
        if any(o.after.get(f) != h for f, h in b.facts[c].hashes.items()):
            out.append(("lost_vs_tf", f"plain TF leaves {c} intact, safeckpt does not"))
    return out


def _same(b: Before, o: Observed, base: str) -> bool:
    """``base`` still has every file it had before the save, byte for byte."""
    return all(o.after.get(f) == h for f, h in b.pre.items() if prefixes_of([f]) == {base})


def _outside(b: Before, o: Observed) -> list[tuple[str, str]]:
    changed = sorted(p for p, h in b.outside.items() if o.outside_after.get(p) != h)
    return [("outside_touched", f"{changed[0]} changed or deleted")] if changed else []
