"""The ``checkpoint`` state file as hostile input (about 35 kinds).

Each kind writes the state file (TensorFlow's text-format ``CheckpointState``, or anything
else a disk, an editor or another program leaves there). Paths that point outside the
directory name things of the canary tree (``{ROOT}`` is the case root): a real checkpoint
``outside/ckpt-7`` that nothing may delete, the thesis above the run.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from stress.hostile._case import NAME, ROOT, STATE, STEPS, Op, ckpt_time, in_dir
from stress.hostile._inputs_index import Input, Pristine


def _state(
    latest: str, paths: list[str], stamps: list[str] | None = None, extra: str = ""
) -> bytes:
    lines = [f'model_checkpoint_path: "{latest}"']
    lines += [f'all_model_checkpoint_paths: "{p}"' for p in paths]
    if stamps is None:
        stamps = [f"{ckpt_time(k):.1f}" for k in range(1, len(paths) + 1)]
    lines += [f"all_model_checkpoint_timestamps: {t}" for t in stamps]
    lines.append(f"last_preserved_timestamp: {ckpt_time(0):.1f}")
    return ("\n".join(lines) + "\n" + extra).encode()


_REAL = [f"{NAME}-{k}" for k in STEPS]
_LATEST = _REAL[-1]


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(str(rng.randrange(10)) for _ in range(n - 1))


StateGen = Callable[[random.Random], "tuple[str, bytes | list[Op]]"]


def _kinds() -> dict[str, StateGen]:
    k: dict[str, StateGen] = {}
    k["empty"] = lambda r: ("0 bytes", b"")
    k["binary"] = lambda r: (
        "random bytes",
        bytes(r.getrandbits(8) for _ in range(r.choice([1, 64, 4096]))),
    )
    k["huge"] = lambda r: (
        "8 MB: one valid entry repeated",
        _state(_LATEST, _REAL) + b'all_model_checkpoint_paths: "ckpt-1"\n' * 220_000,
    )
    k["non_utf8"] = lambda r: (
        "a path with \\xff\\xe9",
        b'model_checkpoint_path: "ckpt-\xff\xe9"\n',
    )
    k["non_utf8_tail"] = lambda r: (
        "valid, then Latin-1 bytes",
        _state(_LATEST, _REAL) + b"# caf\xe9\n",
    )
    k["long_step"] = lambda r: (
        "a step of 5000 digits",
        _state(f"{NAME}-{_digits(r, 5000)}", _REAL),
    )
    k["long_step_listed"] = lambda r: (
        "every entry has a step of 4301+ digits",
        _state(f"{NAME}-{_digits(r, 4301)}", [f"{NAME}-{_digits(r, 4301 + i)}" for i in range(3)]),
    )
    k["odd_digits"] = lambda r: (
        "steps in other scripts (superscript two, Arabic-Indic three, full-width)",
        _state(r.choice([f"{NAME}-²", f"{NAME}-٣", f"{NAME}-\uff13", f"{NAME}-1_000"]), _REAL),
    )
    k["negative_step"] = lambda r: (
        "ckpt--1 and ckpt-+2",
        _state(f"{NAME}--1", [f"{NAME}-+2", *_REAL]),
    )
    k["outside_absolute"] = lambda r: (
        "latest and entries: a real checkpoint outside the directory (absolute)",
        _state(f"{ROOT}/outside/{NAME}-7", [f"{ROOT}/outside/{NAME}-7", *_REAL]),
    )
    k["outside_relative"] = lambda r: (
        "../../outside/ckpt-7 (escapes the directory)",
        _state(f"../../outside/{NAME}-7", [f"../../outside/{NAME}-7", f"../{NAME}-2", *_REAL]),
    )
    k["outside_thesis"] = lambda r: (
        "entries naming the thesis above the run",
        _state(f"{ROOT}/thesis.tex", [f"{ROOT}/thesis", f"{ROOT}/thesis.tex", *_REAL]),
    )
    k["nul"] = lambda r: (
        "NUL bytes in paths",
        _state(f"{NAME}-3\\000x", [f"{NAME}-\\0002", *_REAL]),
    )
    k["nul_raw"] = lambda r: (
        "raw NUL bytes in the file",
        _state(_LATEST, _REAL).replace(b"ckpt-2", b"ckpt-\x002"),
    )
    k["long_line"] = lambda r: ("a 1 MB path", _state("a" * 1_000_000, _REAL))
    k["long_component"] = lambda r: ("a 300-byte name", _state("x" * 300, ["y" * 5000, *_REAL]))
    k["repeated_latest"] = lambda r: (
        "model_checkpoint_path repeated 5000 times",
        b"".join(f'model_checkpoint_path: "{NAME}-{i % 3 + 1}"\n'.encode() for i in range(5000)),
    )
    k["timestamps_inf"] = lambda r: (
        "timestamps 1e999, -1e999, nan",
        _state(_LATEST, _REAL, [r.choice(["1e999", "inf", "-1e999"]), "nan", "1e999"]),
    )
    k["preserved_nan"] = lambda r: (
        "last_preserved_timestamp nan / inf",
        _state(_LATEST, _REAL).replace(
            f"last_preserved_timestamp: {ckpt_time(0):.1f}".encode(),
            r.choice([b"last_preserved_timestamp: nan", b"last_preserved_timestamp: 1e999"]),
        ),
    )
    k["timestamps_extreme"] = lambda r: (
        "timestamps -1e308, 0, 1e308",
        _state(_LATEST, _REAL, ["-1e308", "0", "1.7976931348623157e308"]),
    )
    k["timestamps_count"] = lambda r: (
        "more timestamps than paths, then fewer",
        _state(_LATEST, _REAL[:1], [f"{ckpt_time(i):.1f}" for i in range(r.choice([0, 2, 50]))]),
    )
    k["unknown_field"] = lambda r: (
        "an unknown field",
        _state(_LATEST, _REAL, extra='foo: "bar"\n'),
    )
    k["nested_unknown"] = lambda r: (
        "deeply nested braces",
        _state(_LATEST, _REAL, extra="x " + "{ a " * 20000 + "}" * 20000 + "\n"),
    )
    k["truncated"] = lambda r: ("cut mid-string", _state(_LATEST, _REAL)[: r.randint(5, 60)])
    k["only_list"] = lambda r: (
        "no model_checkpoint_path",
        b'all_model_checkpoint_paths: "ckpt-2"\n',
    )
    k["dot_paths"] = lambda r: (
        "latest is '.', '..', '' or '/'",
        _state(r.choice([".", "..", "", "/", "./", "quarantine"]), [".", "..", *_REAL]),
    )
    k["names_itself"] = lambda r: ("the state file names itself", _state(STATE, [STATE, *_REAL]))
    k["suffixes"] = lambda r: (
        "paths with file suffixes",
        _state(f"{NAME}-3.index", [f"{NAME}-2.data-00000-of-00001", f"{NAME}-3.index"]),
    )
    k["glob"] = lambda r: (
        "glob metacharacters",
        _state(f"{NAME}-[3]", [f"{NAME}-*", f"{NAME}-?", *_REAL]),
    )
    k["windows"] = lambda r: (
        "Windows paths",
        _state("C:\\\\runs\\\\ckpt-3", ["D:/runs/ckpt-2", "\\\\\\\\server\\\\share\\\\ckpt-1"]),
    )
    k["uris"] = lambda r: (
        "URIs",
        _state("gs://bucket/run/ckpt-3", ["file:///etc/ckpt-2", "ram://x/ckpt-1", "s3://b/ckpt-9"]),
    )
    k["escapes"] = lambda r: (
        "text-format escapes: octal, hex, newline",
        _state("ckpt-\\063", ["ckpt-\\x32", "ckpt-1\\nckpt-2", "\\377\\376"]),
    )
    k["bom_crlf"] = lambda r: (
        "UTF-8 BOM and CRLF",
        b"\xef\xbb\xbf" + _state(_LATEST, _REAL).replace(b"\n", b"\r\n"),
    )
    k["utf16"] = lambda r: ("UTF-16", _state(_LATEST, _REAL).decode().encode("utf-16"))
    k["many_entries"] = lambda r: (
        "20,000 entries with timestamps",
        _state(
            f"{NAME}-20000",
            [f"{NAME}-{i}" for i in range(1, 20001)],
            [f"{ckpt_time(i):.1f}" for i in range(1, 20001)],
        ),
    )
    k["missing_latest"] = lambda r: (
        "latest names a checkpoint whose files are gone, huge step",
        _state(f"{NAME}-{10**18}", [*_REAL, f"{NAME}-{10**18}"]),
    )
    k["is_directory"] = lambda r: (
        "the state file is a directory holding a file",
        [
            Op("delete", in_dir(STATE)),
            Op("mkdir", in_dir(STATE)),
            Op("write", in_dir(f"{STATE}/x"), data=b"inside\n"),
        ],
    )
    k["is_link_out"] = lambda r: (
        "the state file is a link to a state file outside naming outside/ckpt-7",
        [
            Op(
                "write",
                "outside/checkpoint",
                data=_state(f"{ROOT}/outside/{NAME}-7", [f"{ROOT}/outside/{NAME}-7"]),
            ),
            Op("symlink", in_dir(STATE), dst=f"{ROOT}/outside/checkpoint"),
        ],
    )
    return k


STATE_KINDS = _kinds()


def state_input(kind: str, rng: random.Random, pristine: Pristine) -> Input:
    detail, made = STATE_KINDS[kind](rng)
    ops = made if isinstance(made, list) else [Op("write", in_dir(STATE), data=made)]
    ops.append(Op("utime", in_dir(STATE), num=int(ckpt_time(STEPS[-1]) - ckpt_time(0)) + 90))
    return Input(f"state file: {detail}", ops)
