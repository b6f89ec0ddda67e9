"""Damage generators for the checkpoint state file (``checkpoint``).

Most rewrite it (`rewrite` with one of the content makers); the others delete it, turn it
into a directory or leave a temporary copy beside it. `stress.fuzz._damage.KINDS` names and
weights them.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from stress.fuzz._case import CaseDir, Damage, Generator, Op, rand_bytes
from stress.fuzz._model import NAME, STATE, STEPS, Pristine


def rewrite(
    kind: str, make: Callable[[random.Random, Pristine], tuple[bytes, str, float | None]]
) -> Generator:
    def gen(rng: random.Random, case: CaseDir) -> Damage | None:
        content, detail, mtime = make(rng, case.pristine)
        ops = []
        if case.exists(STATE) and not case.is_file(STATE):
            ops.append(Op("delete", STATE))
        ops.append(Op("write", STATE, data=content, mtime=mtime))
        return Damage(kind, detail, tuple(ops))

    return gen


def garble(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    text = bytearray(p.states[5])
    how = rng.choice(["chars", "junk", "random"])
    if how == "chars":
        for _ in range(rng.randint(1, 4)):
            text[rng.randrange(len(text))] = rng.choice(b'abcxyz019_-:"{} \n/.')
        return bytes(text), "random characters changed", None
    if how == "junk":
        pos = rng.randrange(len(text))
        junk = bytes(rng.choice(b'abcdefghijklmnopqrstuvwxyz0123456789 :{}"\n') for _ in range(20))
        return bytes(text[:pos]) + junk + bytes(text[pos:]), "junk inserted", None
    n = rng.randint(1, 300)
    junk = bytes(rng.choice(b'abcdefghijklmnopqrstuvwxyz0123456789 :{}"\n.-_/') for _ in range(n))
    return junk, "random printable text", None


def truncated(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    text = p.states[5]
    n = rng.randrange(1, len(text))
    return text[:n], f"cut to {n} of {len(text)} bytes", None


def empty(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    content = rng.choice([b"", b"\n", b"   \n\n"])
    return content, f"{len(content)} bytes of whitespace", None


def binary(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    n = rng.randint(1, 300)
    data = bytearray(rand_bytes(rng, n))
    data[rng.randrange(n)] = 0xFF  # never valid UTF-8
    if rng.random() < 0.3:  # valid text with a binary tail (a torn write)
        return p.states[5][: rng.randrange(len(p.states[5]))] + bytes(data), "text + binary", None
    return bytes(data), "binary bytes", None


def stale(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    m = rng.randint(1, 4)
    if rng.random() < 0.5:
        return p.states[m], f"the state after save {m}, written then", p.state_mtimes[m]
    return p.states[m], f"the state after save {m}, copied back now", None


def dangling(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
    extra = rng.sample([6, 7, 9, 12], rng.randint(1, 2))
    lines = [f'model_checkpoint_path: "{NAME}-{max(extra)}"']
    lines += [f'all_model_checkpoint_paths: "{NAME}-{k}"' for k in [*STEPS, *sorted(extra)]]
    names = ", ".join(f"{NAME}-{k}" for k in sorted(extra))
    return ("\n".join(lines) + "\n").encode(), f"also lists {names} (never written)", None


def paths(kind: str) -> Callable[[random.Random, Pristine], tuple[bytes, str, float | None]]:
    def make(rng: random.Random, p: Pristine) -> tuple[bytes, str, float | None]:
        if kind == "abs":
            base = "{DIR}/"
        elif kind == "foreign":
            base = rng.choice(
                ["/mnt/old-run/train/", "gs://bucket/run/", "../elsewhere/", "/tmp/x/"]
            )
        else:
            base = rng.choice(
                ["C:\\\\runs\\\\exp1\\\\", "D:/train/", "\\\\\\\\server\\\\share\\\\"]
            )
        text = p.states[5].decode()
        if rng.random() < 0.3:  # only model_checkpoint_path
            text = text.replace('model_checkpoint_path: "', f'model_checkpoint_path: "{base}', 1)
        else:
            text = text.replace(f'"{NAME}-', f'"{base}{NAME}-')
        return text.encode(), f"paths prefixed with {base!r}", p.state_mtimes[5]

    return make


def delete(rng: random.Random, case: CaseDir) -> Damage | None:
    if not case.exists(STATE):
        return None
    return Damage("state_delete", "checkpoint state file deleted", (Op("delete", STATE),))


def is_dir(rng: random.Random, case: CaseDir) -> Damage | None:
    ops = [Op("delete", STATE)] if case.exists(STATE) else []
    ops.append(Op("mkdir", STATE))
    if rng.random() < 0.5:
        ops.append(Op("write", f"{STATE}/{STATE}", data=case.pristine.states[5]))
    return Damage("state_is_dir", "the state file is a directory", tuple(ops))


def tmp(rng: random.Random, case: CaseDir) -> Damage | None:
    name = f"{STATE}.tmp{rng.getrandbits(128):032x}"
    text = case.pristine.states[rng.choice(STEPS)]
    if rng.random() < 0.5:
        text = text[: rng.randrange(len(text))]
    return Damage("state_tmp", f"leftover {name}", (Op("write", name, data=text),))
