"""Seeded case generation: case ``N`` of seed ``S`` is the same on every run and alone.

Cases cycle through four slots, ``index, state, index, fs``: half are mutations of real
``.index`` files and data shards (kind and entry point drawn at random), the other half walk
through every (kind, entry point) pair of the state-file and file-system families in a
seeded shuffled order, so that a run of ``2 * 2 * pairs`` cases covers every pair once.
Everything a case needs comes from ``random.Random(f"{seed}:{index}")`` and the pristine
checkpoints, so ``--only N`` rebuilds exactly the case a run reported.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from stress.hostile._case import NAME, STEPS, Case, Op, in_dir
from stress.hostile._entries import CLI_ENTRIES, DRAWN
from stress.hostile._inputs_fs import FS_KINDS
from stress.hostile._inputs_index import INDEX_KINDS, INDEX_WEIGHTS, Input, Pristine
from stress.hostile._inputs_state import STATE_KINDS, state_input

FAMILIES = ("index", "state", "fs")
_SLOTS = ("index", "state", "index", "fs")
#: How often a mutation hits every checkpoint (nothing intact left to fall back to).
EVERY_CHECKPOINT_RATE = 0.2


def _pairs(kinds: Sequence[str]) -> list[tuple[str, str]]:
    return [(kind, entry) for kind in kinds for entry in DRAWN]


def _slot_pair(seed: int, family: str, slot: int) -> tuple[str, str]:
    """The (kind, entry point) of the `slot`-th case of a family: shuffled blocks of pairs."""
    pairs = _pairs(sorted(STATE_KINDS if family == "state" else FS_KINDS))
    block, pos = divmod(slot, len(pairs))
    random.Random(f"{seed}:{family}:{block}").shuffle(pairs)
    return pairs[pos]


def parse_key(key: str) -> tuple[str, str, str, int, int]:
    """``family/kind/entry@seed:index`` (`Case.key`) -> its parts."""
    what, _, where = key.partition("@")
    family, kind, entry = what.split("/")
    seed, index = where.split(":")
    return family, kind, entry, int(seed), int(index)


def family_of(index: int) -> str:
    return _SLOTS[index % len(_SLOTS)]


def generate(
    seed: int,
    index: int,
    pristine: Pristine,
    *,
    families: Sequence[str] = FAMILIES,
    kinds: Sequence[str] | None = None,
    entries: Sequence[str] | None = None,
    proc_rate: float = 0.0,
) -> Case | None:
    """Case `index` of `seed`, or None when `families`/`kinds`/`entries` exclude it."""
    family = family_of(index)
    if family not in families:
        return None
    rng = random.Random(f"{seed}:{index}")
    if family == "index":
        names = sorted(INDEX_KINDS)
        kind = rng.choices(names, weights=[INDEX_WEIGHTS[n] for n in names])[0]
        entry = rng.choice(DRAWN)
    else:
        kind, entry = _slot_pair(seed, family, index // len(_SLOTS))
    if (kinds and kind not in kinds) or (entries and entry not in entries):
        return None
    proc = entry in CLI_ENTRIES and rng.random() < proc_rate
    return build(seed, index, family, kind, entry, pristine, proc=proc)


def build(
    seed: int, index: int, family: str, kind: str, entry: str, pristine: Pristine,
    *, proc: bool = False,
) -> Case:  # fmt: skip
    """The case of (family, kind, entry point) at `seed`/`index`.

    Its input depends on these alone, not on the schedule, so a case key stays valid when
    kinds are added.
    """
    made = _make(family, kind, random.Random(f"{seed}:{index}:{family}/{kind}"), pristine)
    return Case(
        seed=seed,
        index=index,
        family=family,
        kind=kind,
        detail=made.detail,
        entry=entry,
        ops=tuple(made.ops),
        target=made.target,
        path=made.path,
        unprivileged=made.unprivileged,
        expect=(*made.expect, "resumes") if made.intact else made.expect,
        proc=proc,
    )


def _make(family: str, kind: str, rng: random.Random, pristine: Pristine) -> Input:
    if family == "state":
        return state_input(kind, rng, pristine)
    if family == "fs":
        return FS_KINDS[kind](rng, pristine)
    every = rng.random() < EVERY_CHECKPOINT_RATE
    made = INDEX_KINDS[kind](rng, pristine, STEPS[-1])
    if every:
        for k in STEPS[:-1]:
            made.ops += INDEX_KINDS[kind](random.Random(f"{rng.random()}:{k}"), pristine, k).ops
        made.detail += "; the same kind of damage in every checkpoint"
        made.intact = False
    return made


def all_kinds() -> dict[str, list[str]]:
    return {
        "index": sorted(INDEX_KINDS),
        "state": sorted(STATE_KINDS),
        "fs": sorted(FS_KINDS),
    }


def control_case(entry: str, seed: int = 0, index: int = 0) -> Case:
    """A pristine directory and a deliberately misbehaving entry point (oracle controls)."""
    return Case(
        seed=seed,
        index=index,
        family="control",
        kind="pristine",
        detail="the pristine directory",
        entry=entry,
        ops=(),
        expect=("not_healthy",) if entry == "control_healthy" else (),
    )


def damaged_target_case(entry: str, index: int = 0) -> Case:
    """The newest checkpoint's data truncated: verification must say so."""
    return Case(
        seed=0,
        index=index,
        family="control",
        kind="truncated",
        detail="the newest checkpoint's data shard truncated to 10 bytes",
        entry=entry,
        ops=(Op("truncate", in_dir(f"{NAME}-{STEPS[-1]}.data-00000-of-00001"), num=10),),
        expect=("not_healthy",),
    )
