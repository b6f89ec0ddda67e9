"""Damage generators for checkpoint files: truncation, flips, deletion, renames, modes.

Each generator draws from the case's `random.Random` and returns a `Damage` (or None when
there is nothing left to damage); `stress.fuzz._damage.KINDS` names and weights them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from stress.fuzz._case import (
    CaseDir,
    Damage,
    Generator,
    Op,
    family_prefixes,
    pick_step,
    rand_bytes,
    target_file,
)
from stress.fuzz._model import DATA, INDEX, NAME, STATE, STEPS


def truncate(suffix: str, kind: str) -> Generator:
    def gen(rng: random.Random, case: CaseDir) -> Damage | None:
        target = target_file(rng, case, suffix)
        if target is None or case.size(target) == 0:
            return None
        size = case.size(target)
        length = rng.choice([0, size - 1, rng.randrange(size)])
        return Damage(
            kind,
            f"{target}: {size} -> {length} bytes",
            (Op("truncate", target, num=length),),
        )

    return gen


def extend(suffix: str, kind: str) -> Generator:
    def gen(rng: random.Random, case: CaseDir) -> Damage | None:
        target = target_file(rng, case, suffix)
        if target is None:
            return None
        n = rng.choice([1, 8, rng.randint(1, 200)])
        data = bytes(n) if rng.random() < 0.3 else rand_bytes(rng, n)
        return Damage(
            kind,
            f"{target}: +{n} bytes",
            (Op("append", target, data=data),),
        )

    return gen


def _flip(rng: random.Random, case: CaseDir, target: str, lo: int, hi: int) -> Op | None:
    size = case.size(target)
    hi = min(hi, size)
    if hi <= lo:
        return None
    mask = 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randint(1, 255)
    return Op("xor", target, num=rng.randrange(lo, hi), mask=mask)


def flip_data(rng: random.Random, case: CaseDir) -> Damage | None:
    target = target_file(rng, case, DATA)
    if target is None:
        return None
    original = case.pristine.originals[STEPS[-1]]
    key, offset, size = rng.choice(original.tensors)
    op = _flip(rng, case, target, offset, offset + size)
    return None if op is None else Damage("flip_data", f"{target}: tensor {key}", (op,))


def flip_graph(rng: random.Random, case: CaseDir) -> Damage | None:
    target = target_file(rng, case, DATA)
    if target is None:
        return None
    offset, size = case.pristine.originals[STEPS[-1]].graph
    op = _flip(rng, case, target, offset, offset + size)
    return None if op is None else Damage("flip_graph", f"{target}: object graph", (op,))


def flip_index(rng: random.Random, case: CaseDir) -> Damage | None:
    target = target_file(rng, case, INDEX)
    if target is None:
        return None
    size = case.size(target)
    lo = max(0, size - 48) if rng.random() < 0.25 else 0  # sometimes the footer
    op = _flip(rng, case, target, lo, size)
    return None if op is None else Damage("flip_index", f"{target}: byte {op.num}", (op,))


def zero_data(rng: random.Random, case: CaseDir) -> Damage | None:
    target = target_file(rng, case, DATA)
    if target is None:
        return None
    return Damage(
        "zero_data",
        f"{target}: same size, all zeros (power loss)",
        (Op("write", target, data=bytes(case.size(target))),),
    )


def swap_data(rng: random.Random, case: CaseDir) -> Damage | None:
    target = target_file(rng, case, DATA)
    if target is None:
        return None
    sources = [p + DATA for p in family_prefixes(case) if case.is_file(p + DATA)]
    sources = [s for s in sources if s != target]
    if not sources:
        return None
    source = rng.choice(sources)
    return Damage(
        "swap_data",
        f"{target} replaced by a copy of {source} (same size)",
        (Op("copy", source, dst=target),),
    )


def _pick_prefix(rng: random.Random, case: CaseDir, prefixes: list[str]) -> str | None:
    """``ckpt-k`` for a random k (see `pick_step`) if it has files, else any of `prefixes`."""
    if not prefixes:
        return None
    want = f"{NAME}-{pick_step(rng, case)}"
    return want if want in prefixes else rng.choice(prefixes)


def delete(suffixes: Sequence[str], kind: str) -> Generator:
    def gen(rng: random.Random, case: CaseDir) -> Damage | None:
        prefixes = family_prefixes(case)
        base = _pick_prefix(rng, case, prefixes)
        if base is None:
            return None
        ops = tuple(Op("delete", base + s) for s in suffixes if case.exists(base + s))
        return Damage(kind, f"{base}: delete {'+'.join(suffixes)}", ops) if ops else None

    return gen


_OTHER_STEPS = (0, 6, 7, 9, 12, 15)


def rename_family(rng: random.Random, case: CaseDir) -> Damage | None:
    prefixes = family_prefixes(case)
    base = _pick_prefix(rng, case, prefixes)
    if base is None:
        return None
    k = base.split("-", 1)[1]
    new = rng.choice([f"model-{k}", f"{base}.bak", f"{NAME}_{k}", f"old/{base}", f"{base}-old"])
    ops = tuple(Op("rename", base + s, dst=new + s) for s in (INDEX, DATA) if case.exists(base + s))
    return Damage("rename_family", f"{base} -> {new}", ops) if ops else None


def rename_step(over: bool) -> Generator:
    def gen(rng: random.Random, case: CaseDir) -> Damage | None:
        prefixes = family_prefixes(case)
        base = _pick_prefix(rng, case, prefixes)
        if base is None:
            return None
        if over:
            targets = [p for p in prefixes if p != base]
        else:
            targets = [f"{NAME}-{j}" for j in _OTHER_STEPS if f"{NAME}-{j}" not in prefixes]
        if not targets:
            return None
        new = rng.choice(targets)
        ops = tuple(
            Op("rename", base + s, dst=new + s)
            for s in (INDEX, DATA)
            if case.exists(base + s) or case.exists(new + s)
        )
        kind = "rename_over" if over else "rename_step"
        return Damage(kind, f"{base} -> {new}", ops) if ops else None

    return gen


def rename_half(rng: random.Random, case: CaseDir) -> Damage | None:
    prefixes = family_prefixes(case)
    base = _pick_prefix(rng, case, prefixes)
    if base is None:
        return None
    suffix = rng.choice([INDEX, DATA])
    if not case.exists(base + suffix):
        return None
    new = rng.choice([f"{NAME}-{j}" for j in (*STEPS, *_OTHER_STEPS) if f"{NAME}-{j}" != base])
    return Damage(
        "rename_half",
        f"only {base}{suffix} -> {new}{suffix}",
        (Op("rename", base + suffix, dst=new + suffix),),
    )


def file_to_dir(rng: random.Random, case: CaseDir) -> Damage | None:
    target = target_file(rng, case, rng.choice([INDEX, DATA]))
    if target is None:
        return None
    ops = [Op("delete", target), Op("mkdir", target)]
    if rng.random() < 0.5:
        ops.append(Op("write", f"{target}/part-0", data=b"x"))
    return Damage("file_to_dir", f"{target} is a directory", tuple(ops))


def temp(rng: random.Random, case: CaseDir) -> Damage | None:
    how = rng.choice(["partial", "parts", "data_no_index", "stale_temp", "orphan_data"])
    src = f"{NAME}-5"
    new = f"{NAME}-6" if how != "stale_temp" else f"{NAME}-{pick_step(rng, case)}"
    temp = f"{new}_temp"
    part = f"{temp}/part-00000-of-00001"
    tempstate = f".tempstate{rng.getrandbits(63)}"
    ops: list[Op] = [Op("mkdir", temp)]
    if how == "partial":  # killed while writing the data (K2)
        n = rng.randint(0, case.pristine.originals[5].data_size)
        ops.append(Op("write", part + DATA + tempstate, data=rand_bytes(rng, n)))
    elif how == "parts":  # killed before the merge (K4)
        ops += [Op("copy", src + DATA, dst=part + DATA), Op("copy", src + INDEX, dst=part + INDEX)]
    elif how == "data_no_index":  # killed while writing the final index (K5)
        ops += [Op("copy", src + DATA, dst=new + DATA), Op("copy", src + INDEX, dst=part + INDEX)]
        if rng.random() < 0.5:
            ops.append(Op("write", new + INDEX, data=b""))
    elif how == "stale_temp":  # a resumed save could not remove it
        ops.append(Op("write", part + DATA + tempstate, data=rand_bytes(rng, 10)))
    else:  # a data shard without index or temp dir (sweep interrupted, K10)
        ops = [Op("copy", src + DATA, dst=new + DATA)]
    return Damage("temp_leftover", f"{how}: {temp}", tuple(ops))


def chmod_file(rng: random.Random, case: CaseDir) -> Damage | None:
    target = STATE if rng.random() < 0.25 else target_file(rng, case, rng.choice([INDEX, DATA]))
    if target is None or not case.exists(target):
        return None
    mode = rng.choice([0o000, 0o200])
    return Damage("chmod_file", f"chmod {mode:o} {target}", (Op("chmod", target, num=mode),))


def chmod_dir(rng: random.Random, case: CaseDir) -> Damage | None:
    mode = rng.choice([0o300, 0o500, 0o000, 0o100])
    return Damage("chmod_dir", f"chmod {mode:o} on the directory", (Op("chmod", ".", num=mode),))
