"""File-system oddities in and around the checkpoint directory (about 30 kinds).

Symbolic links in and out of the directory where safeckpt deletes, moves or writes
(``cleanup_temp`` leftovers, ``quarantine``, ``repair``'s temporary file), FIFOs, sockets and
devices where a checkpoint file belongs, link loops, names that are not UTF-8 or hold a
newline, a directory where a file belongs, and permission cases that only mean something to
an unprivileged user (run as ``nobody`` when the harness runs as root).

Many kinds also damage the newest checkpoint (``damaged``), so that ``quarantine=True`` has
something to move and ``cleanup_temp`` runs after a save.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from stress.hostile._case import DATA, DIRECTORY, INDEX, NAME, ROOT, STATE, STEPS, Op, in_dir
from stress.hostile._inputs_index import Input, Pristine

NEWEST = f"{NAME}-{STEPS[-1]}"
OUT = f"{ROOT}/outside"


def _damage_newest() -> list[Op]:
    """Truncate the newest checkpoint's data so that it fails even a quick verification."""
    return [Op("truncate", in_dir(NEWEST + DATA), num=10)]


def _own() -> Op:
    return Op("own", DIRECTORY)


FsGen = Callable[[random.Random, Pristine], Input]


_k = Input


def temp_link_out(r: random.Random, p: Pristine) -> Input:
    name = r.choice([f"{NAME}-0_temp", f"{NAME}-1_temp", f"{NAME}-2_temp"])
    return _k(
        f"{name} is a symlink to a directory outside",
        [
            Op("symlink", in_dir(name), dst=f"{OUT}/dir"),
            *([] if r.random() < 0.5 else _damage_newest()),
        ],
    )


def temp_dir_link_out(r: random.Random, p: Pristine) -> Input:
    return _k(
        f"a real {NAME}-0_temp/ holding links to a directory and a file outside",
        [
            Op("mkdir", in_dir(f"{NAME}-0_temp")),
            Op("symlink", in_dir(f"{NAME}-0_temp/escape"), dst=f"{OUT}/dir"),
            Op(
                "symlink",
                in_dir(f"{NAME}-0_temp/part-00000-of-00001.index"),
                dst=f"{OUT}/target.txt",
            ),
            Op("utime", in_dir(f"{NAME}-0_temp")),
        ],
    )


def state_tmp_link(r: random.Random, p: Pristine) -> Input:
    target = r.choice([f"{OUT}/dir", f"{OUT}/target.txt", f"{ROOT}/canary"])
    return _k(
        f"checkpoint.tmp1234 is a symlink to {target.replace(ROOT, '<root>')}",
        [Op("symlink", in_dir(f"{STATE}.tmp1234abcd"), dst=target)],
    )


def orphan_data_link(r: random.Random, p: Pristine) -> Input:
    target = r.choice([f"{OUT}/big.bin", f"{OUT}/dir"])
    return _k(
        f"{NAME}-9{DATA} (no index) is a symlink to {target.replace(ROOT, '<root>')}",
        [Op("symlink", in_dir(f"{NAME}-9{DATA}"), dst=target)],
    )


def quarantine_link(r: random.Random, p: Pristine) -> Input:
    target = r.choice([f"{OUT}/dir", f"{ROOT}/canary", "../.."])
    return _k(
        f"quarantine is a symlink to {target.replace(ROOT, '<root>')}; "
        "the newest checkpoint is damaged",
        [Op("symlink", in_dir("quarantine"), dst=target), *_damage_newest()],
    )


def quarantine_not_dir(r: random.Random, p: Pristine) -> Input:
    what = r.choice(["file", "fifo", "dangling"])
    op = {
        "file": Op("write", in_dir("quarantine"), data=b"not a directory\n"),
        "fifo": Op("mkfifo", in_dir("quarantine")),
        "dangling": Op("symlink", in_dir("quarantine"), dst=f"{ROOT}/nowhere/q"),
    }[what]
    return _k(f"quarantine is a {what}; the newest checkpoint is damaged", [op, *_damage_newest()])


def repair_tmp_symlink(r: random.Random, p: Pristine) -> Input:
    target = r.choice([f"{ROOT}/thesis.tex", "../../thesis.tex", f"{ROOT}/canary/notes.txt"])
    return _k(
        f"checkpoint.safeckpt-tmp is a symlink to {target.replace(ROOT, '<root>')}",
        [Op("symlink", in_dir(f"{STATE}.safeckpt-tmp"), dst=target), *_maybe_stale_state(r)],
    )


def repair_tmp_hardlink(r: random.Random, p: Pristine) -> Input:
    return _k(
        "checkpoint.safeckpt-tmp is a hard link to the thesis above the run",
        [Op("hardlink", in_dir(f"{STATE}.safeckpt-tmp"), dst="thesis.tex"), *_maybe_stale_state(r)],
    )


def _maybe_stale_state(r: random.Random) -> list[Op]:
    """Give `repair` something to rewrite (a state file that misses ckpt-3)."""
    if r.random() < 0.5:
        return []
    return [Op("write", in_dir(STATE), data=b'model_checkpoint_path: "ckpt-2"\n')]


def _special(r: random.Random, where: str) -> tuple[str, Op]:
    kind = r.choice(["fifo", "socket"])
    return kind, Op("mkfifo" if kind == "fifo" else "socket", where)


def special_index(r: random.Random, p: Pristine) -> Input:
    kind, op = _special(r, in_dir(NEWEST + INDEX))
    return _k(f"{NEWEST}.index is a {kind}", [op], expect=("not_healthy",))


def special_data(r: random.Random, p: Pristine) -> Input:
    kind, op = _special(r, in_dir(NEWEST + DATA))
    return _k(f"{NEWEST} data shard is a {kind}", [op], expect=("not_healthy",))


def special_state(r: random.Random, p: Pristine) -> Input:
    kind, op = _special(r, in_dir(STATE))
    return _k(f"the state file is a {kind}", [op])


def special_path(r: random.Random, p: Pristine) -> Input:
    kind, op = _special(r, in_dir("pipe"))
    name = r.choice(["pipe", "pipe.index"])
    return _k(
        f"the path passed is a {kind} ({name})",
        [op, *([Op("symlink", in_dir("pipe.index"), dst="pipe")] if name != "pipe" else [])],
        target=name,
        path=in_dir(name),
        expect=("not_healthy",),
    )


def link_to_special(r: random.Random, p: Pristine) -> Input:
    where = r.choice([NEWEST + INDEX, NEWEST + DATA, STATE])
    kind, op = _special(r, "outside/special")
    expect = ("not_healthy",) if where != STATE else ()
    return _k(
        f"{where} is a symlink to a {kind} outside the directory",
        [op, Op("symlink", in_dir(where), dst=f"{OUT}/special")],
        expect=expect,
    )


def quarantine_holds_links(r: random.Random, p: Pristine) -> Input:
    return _k(
        "quarantine/ holds ckpt-3.index and its data as links out; the newest checkpoint is "
        "damaged",
        [
            Op("mkdir", in_dir("quarantine")),
            Op("symlink", in_dir(f"quarantine/{NEWEST}{INDEX}"), dst=f"{OUT}/target.txt"),
            Op("symlink", in_dir(f"quarantine/{NEWEST}{DATA}"), dst=f"{OUT}/big.bin"),
            Op("symlink", in_dir(f"quarantine/{NEWEST}"), dst=f"{OUT}/dir"),
            *_damage_newest(),
        ],
    )


def device_links(r: random.Random, p: Pristine) -> Input:
    where, dev = r.choice(
        [
            (NEWEST + DATA, "/dev/zero"),
            (NEWEST + DATA, "/dev/null"),
            (NEWEST + INDEX, "/dev/zero"),
            (NEWEST + INDEX, "/dev/null"),
            (NEWEST + INDEX, "/dev/urandom"),
            (STATE, "/dev/zero"),
            (STATE, "/dev/null"),
        ]
    )
    expect = ("not_healthy",) if where != STATE else ()
    return _k(
        f"{where} is a symlink to {dev}", [Op("symlink", in_dir(where), dst=dev)], expect=expect
    )


def link_loops(r: random.Random, p: Pristine) -> Input:
    choice = r.choice(["index", "data", "state", "path", "two"])
    if choice == "index":
        return _k(
            "ckpt-3.index links to itself",
            [Op("symlink", in_dir(NEWEST + INDEX), dst=NEWEST + INDEX)],
            expect=("not_healthy",),
        )
    if choice == "data":
        return _k(
            "the data shard links to itself",
            [Op("symlink", in_dir(NEWEST + DATA), dst=NEWEST + DATA)],
            expect=("not_healthy",),
        )
    if choice == "state":
        return _k(
            "checkpoint -> checkpoint.b -> checkpoint",
            [
                Op("symlink", in_dir(STATE), dst=f"{STATE}.b"),
                Op("symlink", in_dir(f"{STATE}.b"), dst=STATE),
            ],
        )
    if choice == "path":
        return _k(
            "the path passed is a link loop",
            [Op("symlink", in_dir("loop"), dst="loop")],
            target="loop",
            path=in_dir("loop"),
        )
    return _k(
        "ckpt-4.index -> ckpt-5.index -> ckpt-4.index",
        [
            Op("symlink", in_dir(f"{NAME}-4{INDEX}"), dst=f"{NAME}-5{INDEX}"),
            Op("symlink", in_dir(f"{NAME}-5{INDEX}"), dst=f"{NAME}-4{INDEX}"),
        ],
    )


def non_utf8_names(r: random.Random, p: Pristine) -> Input:
    name = r.choice(
        [
            "notes-caf\udce9.txt",
            f"{NAME}-\udcff{INDEX}",
            f"{NAME}-4\udce9{DATA}",
            f"{NAME}-\udcff_temp",
            f"{STATE}.tmp\udcff",
            "sub\udcff",
        ]
    )
    op = (
        Op("mkdir", in_dir(name))
        if name.endswith(("_temp", "sub\udcff"))
        else Op("write", in_dir(name), data=b"x")
    )
    return _k(f"a file named {name!r} (not UTF-8)", [op])


def newline_names(r: random.Random, p: Pristine) -> Input:
    name = r.choice(
        [f"{NAME}-7\n{INDEX}", "bad\nname.txt", f"{NAME}-4{INDEX}\n", f"{NAME}-\n5{INDEX}", "\n"]
    )
    ops = [Op("copy", in_dir(f"{NAME}-1{INDEX}"), dst=in_dir(name))]
    return _k(f"a file named {name!r}", ops)


def dir_instead(r: random.Random, p: Pristine) -> Input:
    where = r.choice([NEWEST + INDEX, NEWEST + DATA, STATE])
    expect = ("not_healthy",) if where != STATE else ()
    return _k(
        f"{where} is a directory",
        [Op("delete", in_dir(where)), Op("mkdir", in_dir(where + "/sub"))],
        expect=expect,
    )


def temp_special(r: random.Random, p: Pristine) -> Input:
    name = r.choice([f"{NAME}-0_temp", f"{STATE}.tmp99", f"{NAME}-4_temp"])
    kind, op = _special(r, in_dir(name))
    return _k(f"{name} is a {kind}", [op, Op("utime", in_dir(name))])


def index_link_out(r: random.Random, p: Pristine) -> Input:
    return _k(
        "ckpt-3.index links to a real index outside; its data is damaged",
        [Op("symlink", in_dir(NEWEST + INDEX), dst=f"{OUT}/{NAME}-7{INDEX}"), *_damage_newest()],
    )


def dir_is_link_out(r: random.Random, p: Pristine) -> Input:
    return _k(
        "a subdirectory ckpt-9_temp/ links to the canary; the state file names ../canary",
        [
            Op("symlink", in_dir(f"{NAME}-9_temp"), dst="../../canary"),
            Op("write", in_dir(STATE), data=b'model_checkpoint_path: "../../canary/notes"\n'),
        ],
    )


def many_files(r: random.Random, p: Pristine) -> Input:
    n = r.choice([2000, 5000])
    ops = [Op("write", in_dir(f"junk-{i}"), data=b"") for i in range(n)]
    ops += [Op("write", in_dir(f"{NAME}-{1000 + i}{DATA}"), data=b"") for i in range(n // 10)]
    return _k(f"{n} junk files and {n // 10} index-less data shards", ops)


def long_names(r: random.Random, p: Pristine) -> Input:
    step = "9" * 240
    return _k(
        "names of 255 bytes, a checkpoint with a 240-digit step",
        [
            Op("write", in_dir("n" * 255), data=b"x"),
            Op("copy", in_dir(f"{NAME}-1{INDEX}"), dst=in_dir(f"{NAME}-{step}{INDEX}")),
            Op("copy", in_dir(f"{NAME}-1{DATA}"), dst=in_dir(f"{NAME}-{step}{DATA}")),
        ],
    )


# Unprivileged ---------------------------------------------------------------------------


def unreadable(r: random.Random, p: Pristine) -> Input:
    where = r.choice([NEWEST + INDEX, NEWEST + DATA, STATE])
    mode = r.choice([0o000, 0o200])
    return _k(
        f"{where} mode {mode:o} (as the unprivileged user)",
        [_own(), Op("chmod", in_dir(where), num=mode)],
        unprivileged=True,
        expect=("not_healthy",) if where != STATE else (),
    )


def untraversable(r: random.Random, p: Pristine) -> Input:
    mode = r.choice([0o000, 0o600, 0o644])
    return _k(
        f"the directory has mode {mode:o}: it cannot be traversed (as the unprivileged user)",
        [_own(), Op("chmod", DIRECTORY, num=mode)],
        unprivileged=True,
        expect=("permission_denied",),
        intact=False,
    )


def unlistable(r: random.Random, p: Pristine) -> Input:
    return _k(
        "the directory has mode 311: traversable, not listable (as the unprivileged user)",
        [_own(), Op("chmod", DIRECTORY, num=0o311)],
        unprivileged=True,
        intact=False,
    )


def read_only_dir(r: random.Random, p: Pristine) -> Input:
    return _k(
        "the directory has mode 555 (as the unprivileged user)",
        [
            _own(),
            *([] if r.random() < 0.5 else _damage_newest()),
            Op("chmod", DIRECTORY, num=0o555),
        ],
        unprivileged=True,
        intact=False,  # the write probe refuses the directory at construction (documented)
    )


def quarantine_unwritable(r: random.Random, p: Pristine) -> Input:
    return _k(
        "quarantine/ has mode 000; the newest checkpoint is damaged (as the unprivileged user)",
        [
            _own(),
            Op("mkdir", in_dir("quarantine")),
            Op("own", in_dir("quarantine")),
            *_damage_newest(),
            Op("chmod", in_dir("quarantine"), num=0),
        ],
        unprivileged=True,
    )


def unreadable_temp(r: random.Random, p: Pristine) -> Input:
    return _k(
        "an old ckpt-0_temp/ of mode 000 holding a file (as the unprivileged user)",
        [
            Op("mkdir", in_dir(f"{NAME}-0_temp")),
            Op("write", in_dir(f"{NAME}-0_temp/part"), data=b"x"),
            _own(),
            Op("utime", in_dir(f"{NAME}-0_temp")),
            Op("chmod", in_dir(f"{NAME}-0_temp"), num=0),
        ],
        unprivileged=True,
    )


FS_KINDS: dict[str, FsGen] = {
    "temp_link_out": temp_link_out,
    "temp_dir_link_out": temp_dir_link_out,
    "state_tmp_link": state_tmp_link,
    "orphan_data_link": orphan_data_link,
    "quarantine_link": quarantine_link,
    "quarantine_not_dir": quarantine_not_dir,
    "repair_tmp_symlink": repair_tmp_symlink,
    "repair_tmp_hardlink": repair_tmp_hardlink,
    "special_index": special_index,
    "special_data": special_data,
    "special_state": special_state,
    "special_path": special_path,
    "device_links": device_links,
    "link_to_special": link_to_special,
    "quarantine_holds_links": quarantine_holds_links,
    "link_loops": link_loops,
    "non_utf8_names": non_utf8_names,
    "newline_names": newline_names,
    "dir_instead": dir_instead,
    "temp_special": temp_special,
    "index_link_out": index_link_out,
    "dir_is_link_out": dir_is_link_out,
    "many_files": many_files,
    "long_names": long_names,
    "unreadable": unreadable,
    "untraversable": untraversable,
    "unlistable": unlistable,
    "read_only_dir": read_only_dir,
    "quarantine_unwritable": quarantine_unwritable,
    "unreadable_temp": unreadable_temp,
}
