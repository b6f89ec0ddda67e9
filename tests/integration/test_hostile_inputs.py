"""Hostile and broken inputs: never outside the directory, never a hang, never a bare traceback.

One regression test (or a family) per finding of the adversarial run of issue 19, each on real
checkpoints written by TensorFlow and damaged on disk: FIFOs, devices and links where files
belong, index entries that are valid to their checksums but impossible, non-UTF-8 names,
absurd step numbers. A canary tree beside and above the checkpoint directory is hashed before
and after each call. Whether a FIFO was opened for reading is observed, not timed: a reader
blocked in ``open()`` lets a non-blocking writer in (which otherwise fails with ``ENXIO``);
the watcher closes it at once, so the reader sees end-of-file and the test never hangs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf

from safeckpt import (
    Cause,
    CheckpointDirectoryError,
    Outcome,
    RestoreError,
    SafeCheckpointManager,
    SaveError,
    diagnose,
    list_checkpoints,
    verify,
)
from safeckpt._cli.main import main
from testing.bundle import entry, read_table, resave, rewrite_entry
from testing.checkpoints import Trainee, write_checkpoints
from testing.privileges import run_unprivileged

DATA3 = "ckpt-3.data-00000-of-00001"
GRAPH = b"_CHECKPOINTABLE_OBJECT_GRAPH"
W = b"w/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ckpt-1..3 (holding 1.0, 2.0, 3.0) saved once per module; each test gets a copy."""
    directory = tmp_path_factory.mktemp("template") / "ckpts"
    write_checkpoints(directory, 3)
    return directory


@dataclass
class World:
    """A checkpoint directory and a canary tree around it."""

    root: Path
    ckpts: Path  # root/run/ckpts (beside it: root/run/thesis.tex)
    outside: Path  # root/outside

    def canary(self) -> dict[str, str]:
        """Every entry beside and above the checkpoint directory: names, bytes, link targets."""
        found: dict[str, str] = {}
        for top in (self.outside, self.ckpts.parent):
            for here, dirs, files in os.walk(top, followlinks=False):
                if Path(here) == self.ckpts:
                    dirs[:] = []
                    continue
                for name in (*dirs, *files):
                    path = Path(here) / name
                    if path == self.ckpts:
                        continue
                    info = path.lstat()
                    if stat.S_ISLNK(info.st_mode):
                        found[str(path)] = "link " + os.readlink(path)
                    elif stat.S_ISREG(info.st_mode):
                        found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
                    else:
                        found[str(path)] = stat.filemode(info.st_mode)
        return found

    def prefix(self, step: int) -> str:
        return str(self.ckpts / f"ckpt-{step}")


@pytest.fixture
def world(tmp_path: Path, template: Path) -> Iterator[World]:
    ckpts = tmp_path / "run" / "ckpts"
    shutil.copytree(template, ckpts)
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "precious.txt").write_text("the thesis, chapter 1\n")
    (outside / "sub" / "data.bin").write_bytes(os.urandom(64))
    (tmp_path / "run" / "thesis.tex").write_text("\\documentclass{book}\n")
    w = World(tmp_path, ckpts, outside)
    before = w.canary()
    yield w
    assert w.canary() == before, "something outside the checkpoint directory changed"


def run_cli(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def falls_back(world: World, **options: Any) -> Any:
    """Restore with a new manager: it must fall back to ckpt-2 (2.0). Returns the report."""
    trainee = Trainee()
    report = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3, **options).restore()
    assert (report.save_path, trainee.value) == (world.prefix(2), 2.0)
    return report


def object_graph(prefix: str) -> Any:
    """The checkpoint's object graph, read by TensorFlow's reader."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    value = tf.train.load_checkpoint(prefix).get_tensor(GRAPH.decode())
    return trackable_object_graph_pb2.TrackableObjectGraph.FromString(value)


def strict_json(text: str) -> Any:
    """`json.loads` that refuses ``NaN``/``Infinity`` (not JSON)."""

    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


# --- 1. FIFOs: never opened -----------------------------------------------------------------


_WATCHER = """
import ctypes, errno, os, signal, struct, sys, time
IN_OPEN, IN_CLOSE_NOWRITE = 0x20, 0x10
fifos = sys.argv[1:]
libc = ctypes.CDLL(None, use_errno=True)
watch = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
assert watch >= 0
mask = IN_OPEN | IN_CLOSE_NOWRITE
assert all(libc.inotify_add_watch(watch, os.fsencode(f), mask) >= 0 for f in fifos)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
opens = closes = mine = 0

def drain():
    global opens, closes
    while True:
        try:
            data = os.read(watch, 65536)
        except BlockingIOError:
            return
        pos = 0
        while pos < len(data):
            _, mask, _, length = struct.unpack_from("iIII", data, pos)
            opens += bool(mask & IN_OPEN)
            closes += bool(mask & IN_CLOSE_NOWRITE)  # a read-only descriptor closed
            pos += 16 + length

print("ready", flush=True)
while not stop:
    for fifo in fifos:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno not in (errno.ENXIO, errno.ENOENT):
                raise
            continue
        mine += 1  # a reader was waiting in open(): it now sees the end of the file
        os.close(fd)
    drain()
    time.sleep(0.02)
drain()
# inotify merges identical events in a row (the watcher's open and a reader's): both counts
# are lower bounds of the readers' opens.
print(max(opens - mine, closes), flush=True)
"""


class FifoWatch:
    """Counts how often anything but the watcher opened the FIFOs while it watched.

    A separate process (a reader blocked in ``open()`` inside TensorFlow may hold this
    interpreter's lock) counts the opens of the FIFOs with inotify (``IN_OPEN``, and
    ``IN_CLOSE_NOWRITE`` when a reader closes: quick, non-blocking opens too), and lets a
    reader blocked in ``open()`` go by opening the FIFO for writing (which fails with
    ``ENXIO`` unless a reader waits); its own opens are not counted.
    """

    def __init__(self, *fifos: Path) -> None:
        self.fifos, self.opened = fifos, 0

    def __enter__(self) -> FifoWatch:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WATCHER, *map(str, self.fifos)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline() == "ready\n"
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=60)
        assert self._proc.returncode == 0, out
        self.opened = int(out.split()[-1])


def make_fifo(path: Path) -> Path:
    if path.exists():
        path.unlink()
    os.mkfifo(path)
    return path


PLACEMENTS = {"index": "ckpt-3.index", "data": DATA3, "state": "checkpoint"}

ENTRY_POINTS: dict[str, Callable[[World], object]] = {
    "diagnose": lambda w: diagnose(w.ckpts),
    "diagnose deep": lambda w: diagnose(w.ckpts, deep=True),
    "verify": lambda w: verify(w.prefix(3)),
    "verify deep": lambda w: verify(w.prefix(3), deep=True),
    "list_checkpoints": lambda w: list_checkpoints(w.ckpts),
    "restore": lambda w: SafeCheckpointManager(Trainee().checkpoint, w.ckpts, 3).restore(),
    "restore deep": lambda w: SafeCheckpointManager(
        Trainee().checkpoint, w.ckpts, 3, verify="deep"
    ).restore(),
    "latest_checkpoint": lambda w: (
        SafeCheckpointManager(Trainee().checkpoint, w.ckpts, 3).latest_checkpoint
    ),
    "doctor": lambda w: run_cli("doctor", w.ckpts, "--deep", "--json"),
    "ls": lambda w: run_cli("ls", w.ckpts, "--json"),
    "verify cli": lambda w: run_cli("verify", w.ckpts, "--deep"),
    "repair": lambda w: run_cli("repair", w.ckpts, "--dry-run"),
    "inspect": lambda w: run_cli("inspect", w.prefix(3)),
    "diff": lambda w: run_cli("diff", w.prefix(2), w.prefix(3)),
}


@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS))
@pytest.mark.parametrize("placement", list(PLACEMENTS))
def test_a_fifo_where_a_file_belongs_is_never_opened(
    world: World, placement: str, entry_point: str
) -> None:
    fifo = make_fifo(world.ckpts / PLACEMENTS[placement])
    with FifoWatch(fifo) as watch:
        result = ENTRY_POINTS[entry_point](world)
    assert watch.opened == 0, f"{entry_point} opened the FIFO {fifo.name} for reading"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # and left it alone
    if isinstance(result, tuple):  # the command line: a diagnosis, never a traceback
        assert result[0] in (0, 1), result


def test_plain_tensorflow_opens_a_fifo_state_file(world: World) -> None:
    # The control: the watcher sees TensorFlow's constructor open the FIFO (it would block).
    fifo = make_fifo(world.ckpts / "checkpoint")
    with FifoWatch(fifo) as watch, contextlib.suppress(ValueError):
        tf.train.CheckpointManager(Trainee().checkpoint, str(world.ckpts), 3)
    assert watch.opened >= 1


@pytest.mark.parametrize("placement", ["index", "data"])
def test_a_fifo_in_a_checkpoint_is_not_a_regular_file_and_restore_falls_back(
    world: World, placement: str
) -> None:
    fifo = make_fifo(world.ckpts / PLACEMENTS[placement])
    with FifoWatch(fifo) as watch:
        found = verify(world.prefix(3))
        trainee = Trainee()
        report = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3).restore()
        doctor = diagnose(world.ckpts)
    assert watch.opened == 0
    assert found.cause is Cause.NOT_A_REGULAR_FILE
    assert any(fifo.name in line and "FIFO" in line for line in found.evidence), found
    assert (report.outcome, report.save_path, trainee.value) == (
        Outcome.FELL_BACK,
        world.prefix(2),
        2.0,
    )
    assert [d.cause for d in report.skipped] == [Cause.NOT_A_REGULAR_FILE]
    assert doctor.cause is Cause.NOT_A_REGULAR_FILE


def test_a_fifo_state_file_constructs_restores_and_refuses_to_save(world: World) -> None:
    fifo = make_fifo(world.ckpts / "checkpoint")
    with FifoWatch(fifo) as watch:
        trainee = Trainee()
        manager = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3)
        report = manager.restore()
        with pytest.raises(SaveError) as refused:
            manager.save()
        doctor = diagnose(world.ckpts)
    assert watch.opened == 0
    assert (report.save_path, trainee.value) == (world.prefix(3), 3.0)
    assert refused.value.diagnosis is not None
    assert refused.value.diagnosis.cause is Cause.NOT_A_REGULAR_FILE
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert not (world.ckpts / "ckpt-4.index").exists()  # nothing was written
    assert doctor.cause is Cause.NOT_A_REGULAR_FILE


def test_a_fifo_passed_as_the_path(world: World) -> None:
    fifo = make_fifo(world.ckpts / "pipe")
    index_fifo = make_fifo(world.ckpts / "ckpt-9.index")
    with FifoWatch(fifo, index_fifo) as watch:
        found = [diagnose(fifo), verify(fifo), diagnose(index_fifo), verify(world.ckpts / "ckpt-9")]
        code, out, _ = run_cli("doctor", fifo)
        with pytest.raises(RestoreError) as raised:
            SafeCheckpointManager(Trainee().checkpoint, world.ckpts, 3).restore(str(fifo))
        with pytest.raises(CheckpointDirectoryError):
            SafeCheckpointManager(Trainee().checkpoint, fifo, 3)
    assert watch.opened == 0
    assert [d.cause for d in found] == [Cause.NOT_A_REGULAR_FILE] * 4
    assert code == 1 and "[not_a_regular_file]" in out
    assert raised.value.diagnosis is not None
    assert raised.value.diagnosis.cause is Cause.NOT_A_REGULAR_FILE


# --- also seen: a data shard that is a link to /dev/zero -----------------------------------


def test_a_data_shard_linked_to_dev_zero_does_not_pass_the_quick_check(world: World) -> None:
    shard = world.ckpts / DATA3
    shard.unlink()
    shard.symlink_to("/dev/zero")
    found = verify(world.prefix(3))
    assert found.cause is Cause.NOT_A_REGULAR_FILE
    assert any("character device" in line for line in found.evidence), found
    falls_back(world)
    assert shard.is_symlink()


# --- 5. a file name that is not UTF-8 -------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"notes-caf\xe9.txt", b"ckpt-\xff.index", b"ckpt-\xff_temp", b"checkpoint.tmp\xff"]
)
def test_a_non_utf8_file_name_is_reported_and_skipped(world: World, raw: bytes) -> None:
    name = os.fsdecode(raw)
    (world.ckpts / name).write_text("a stray file\n")
    shown = raw.decode("utf-8", "backslashreplace")
    found = diagnose(world.ckpts)
    assert found.cause is Cause.HEALTHY
    assert any(shown in line and "not UTF-8" in line for line in found.evidence), found
    assert [c.step for c in list_checkpoints(world.ckpts)] == [1, 2, 3]
    for argv in (("doctor",), ("ls",), ("verify",), ("repair", "--dry-run")):
        code, out, err = run_cli(argv[0], world.ckpts, *argv[1:], "--json")
        assert code == 0, err
        strict_json(out)
        code, out, err = run_cli(argv[0], world.ckpts, *argv[1:])
        assert code == 0, err
        out.encode("utf-8")  # printable: no lone surrogates
    assert run_cli("inspect", world.prefix(3))[0] == 0
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3)
    assert manager.latest_checkpoint == world.prefix(3)
    assert manager.restore().save_path == world.prefix(3)
    assert trainee.value == 3.0
    assert manager.save() == world.prefix(4)
    assert (world.ckpts / name).read_text() == "a stray file\n"


def test_a_non_utf8_name_starting_like_the_next_save_is_stepped_over(world: World) -> None:
    # Found by the hostile-input harness: TensorFlow's save globs "<prefix>-4*" after writing
    # and hands every name to its C++ API; ckpt-4\xe9... made save() raise a bare TypeError.
    stray = world.ckpts / os.fsdecode(b"ckpt-4\xe9.data-00000-of-00001")
    stray.write_text("a stray file\n")
    copy = world.root / "plain"  # the control, on a copy: plain TensorFlow fails
    shutil.copytree(world.ckpts, copy)
    plain = tf.train.CheckpointManager(Trainee().checkpoint, str(copy), None)
    plain.restore_or_initialize()
    with pytest.raises(TypeError):
        plain.save()
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, world.ckpts, None)
    manager.restore()
    with pytest.raises(SaveError):  # an explicit number is honoured or refused
        manager.save(checkpoint_number=4)
    assert manager.save() == world.prefix(5)
    assert verify(world.prefix(5)).ok
    assert stray.read_text() == "a stray file\n"


# --- 6. absurd step numbers -----------------------------------------------------------------


def test_a_step_of_5000_digits_in_the_state_file_is_not_a_step(world: World) -> None:
    huge = "9" * 5000
    (world.ckpts / "checkpoint").write_text(
        f'model_checkpoint_path: "ckpt-{huge}"\nall_model_checkpoint_paths: "ckpt-{huge}"\n'
    )
    # The state file names "ckpt-999…", which is a name, not a step: not this name's.
    assert diagnose(world.ckpts).cause is Cause.NAME_MISMATCH
    listed = list_checkpoints(world.ckpts)
    assert [c.step for c in listed] == [None, 1, 2, 3]  # the state file's, then the files'
    for command in ("doctor", "ls", "verify"):
        assert run_cli(command, world.ckpts)[0] in (0, 1)
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, world.ckpts, None)
    report = manager.restore()
    assert (report.save_path, trainee.value) == (world.prefix(3), 3.0)
    assert manager.save() == world.prefix(4)


def test_a_step_past_int64_in_a_file_name_is_not_a_step(world: World) -> None:
    # TensorFlow's save counter is an int64: ckpt-<2**64> cannot be one of its saves.
    big = str(2**64)
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(world.ckpts / f"ckpt-1{suffix}", world.ckpts / f"ckpt-{big}{suffix}")
    infos = {c.prefix: c for c in list_checkpoints(world.ckpts)}
    assert infos[str(world.ckpts / f"ckpt-{big}")].step is None
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, world.ckpts, None)
    assert manager.restore().save_path == world.prefix(3)
    assert manager.save() == world.prefix(4)  # numbered after the real steps
    assert run_cli("doctor", world.ckpts)[0] == 0


# --- 7. bit rot in the object graph's string length -----------------------------------------


def _entry_of(prefix: str, key: bytes) -> Any:
    items = dict(read_table(Path(prefix + ".index").read_bytes()))
    return entry(items[key])


def test_bit_rot_in_the_object_graph_length_varint(world: World) -> None:
    graph = _entry_of(world.prefix(3), GRAPH)
    shard = world.ckpts / DATA3
    data = bytearray(shard.read_bytes())
    data[graph.offset : graph.offset + 10] = b"\xff" * 9 + b"\x01"  # a length >= 2**64
    shard.write_bytes(bytes(data))
    for deep in (False, True):  # the quick check reads the object graph too
        found = verify(world.prefix(3), deep=deep)
        assert found.cause is Cause.CORRUPT_DATA, found
    trainee = Trainee()
    report = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3).restore()
    assert (report.outcome, report.save_path, trainee.value) == (
        Outcome.FELL_BACK,
        world.prefix(2),
        2.0,
    )
    assert run_cli("doctor", world.ckpts, "--deep")[0] == 1
    for argv in (("inspect", world.prefix(3)), ("diff", world.prefix(2), world.prefix(3))):
        code, _, err = run_cli(*argv)
        assert code == 1 and "[corrupt_data]" in err, err


# --- 8. offset + size past 2**63 ------------------------------------------------------------


def test_an_offset_past_2_63_is_a_corrupt_index_not_a_seek(world: World) -> None:
    rewrite_entry(world.ckpts / "ckpt-3.index", W, offset=2**63 - 8)  # CRC-valid
    for deep in (False, True):
        assert verify(world.prefix(3), deep=deep).cause is Cause.CORRUPT_INDEX
    report = falls_back(world)
    assert [d.cause for d in report.skipped] == [Cause.CORRUPT_INDEX]


def test_an_offset_past_the_shard_is_truncated_data(world: World) -> None:
    rewrite_entry(world.ckpts / "ckpt-3.index", W, offset=10**12)
    found = verify(world.prefix(3))
    assert found.cause is Cause.TRUNCATED_DATA
    assert any(str(10**12 + 16) in line for line in found.evidence), found


# --- 9. inspect and diff never hand a damaged checkpoint to TensorFlow's reader -------------


def _truncated(w: World) -> None:
    with open(w.ckpts / DATA3, "r+b") as handle:
        handle.truncate(10)


def _negative_dim(w: World) -> None:
    rewrite_entry(w.ckpts / "ckpt-3.index", W, shape=[-1])


def _not_an_entry(w: World) -> None:
    from testing.bundle import write_table

    index = w.ckpts / "ckpt-3.index"
    items = [(k, b"\xff\xff\xff" if k == W else v) for k, v in read_table(index.read_bytes())]
    index.write_bytes(write_table(items))


def _handle_at_2_63(w: World) -> None:
    from testing.bundle import Table, block, varint

    items = read_table((w.ckpts / "ckpt-3.index").read_bytes())
    table = Table()
    table.add(block(items))
    (w.ckpts / "ckpt-3.index").write_bytes(
        table.finish([(items[-1][0], varint(2**63) + varint(10))])
    )


DAMAGES: dict[str, tuple[Callable[[World], None], Cause]] = {
    "truncated shard": (_truncated, Cause.TRUNCATED_DATA),
    "dim of -1": (_negative_dim, Cause.CORRUPT_INDEX),
    "value not a BundleEntryProto": (_not_an_entry, Cause.CORRUPT_INDEX),
    "block handle at 2**63": (_handle_at_2_63, Cause.CORRUPT_INDEX),
}

_CHILD = """
import io, json, sys
from safeckpt._cli.main import main
results = {}
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    results[" ".join(argv[:1] + argv[-1:])] = [code, err.getvalue()]
print(json.dumps(results))
"""


def test_inspect_and_diff_report_damage_instead_of_aborting(world: World) -> None:
    # TensorFlow's reader aborts the process (SIGABRT) on some of these: a child process.
    runs: list[list[str]] = []
    prefixes = {}
    for name, (damage, _cause) in DAMAGES.items():
        where = world.root / "cases" / name.replace(" ", "-").replace("*", "")
        case = World(world.root, where, world.outside)
        shutil.copytree(world.ckpts, case.ckpts)
        damage(case)
        prefixes[name] = case.prefix(3)
        runs += [["inspect", case.prefix(3)], ["inspect", "--json", case.prefix(3)]]
        runs += [["diff", case.prefix(2), case.prefix(3)]]
    proc = _python(_CHILD, json.dumps(runs))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    for name, (_damage, cause) in DAMAGES.items():
        for command in ("inspect", "diff"):
            code, err = results[f"{command} {prefixes[name]}"]
            assert code == 1 and f"[{cause.value}]" in err, (name, command, err)


def _python(code: str, *args: str) -> Any:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_the_graph_reader_never_falls_back_to_tensorflow(world: World) -> None:
    from safeckpt._format.graph import read_checkpoint_graph
    from safeckpt._format.index import IndexFormatError

    _negative_dim(world)
    with pytest.raises(IndexFormatError):
        read_checkpoint_graph(world.prefix(3))


@pytest.mark.parametrize("shape", [[-1], [2] * 300, [2**40, 2**40]])
def test_an_impossible_shape_is_a_corrupt_index_and_restore_falls_back(
    world: World, shape: list[int]
) -> None:
    # Found by the hostile-input harness: TensorFlow aborts the process (SIGABRT, "Check
    # failed: size >= 0", "Too many dimensions") restoring these, CRC-valid.
    rewrite_entry(world.ckpts / "ckpt-3.index", W, shape=shape)
    assert verify(world.prefix(3)).cause is Cause.CORRUPT_INDEX
    falls_back(world)


def test_a_value_of_the_wrong_wire_type_is_a_corrupt_index(world: World) -> None:
    # Found by the hostile-input harness: dtype (field 1) as bytes parses as dtype 0, and
    # restore() raised a bare TypeError.
    from testing.bundle import write_table

    index = world.ckpts / "ckpt-3.index"
    wrong = b"\x0a\x0bnot a dtype"
    items = [(k, wrong if k == W else v) for k, v in read_table(index.read_bytes())]
    index.write_bytes(write_table(items))
    assert verify(world.prefix(3)).cause is Cause.CORRUPT_INDEX
    falls_back(world)


def test_a_socket_as_a_data_shard_is_not_a_regular_file(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the hostile-input harness: a socket was a storage failure (retried, then
    # StorageUnavailableError) although ckpt-2 is intact.
    import socket

    (world.ckpts / DATA3).unlink()
    monkeypatch.chdir(world.ckpts)  # a socket's path is limited to 108 bytes
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(DATA3)
    assert verify(world.prefix(3)).cause is Cause.NOT_A_REGULAR_FILE
    falls_back(world, verify="deep")


@pytest.mark.parametrize("slices", ["one, without its entry", "past the shape", "6,000"])
def test_a_sliced_variable_without_its_slices_is_a_corrupt_index(world: World, slices: str) -> None:
    # Found by the hostile-input harness: w recorded as sliced (what TensorFlow writes for a
    # partitioned variable) but no slice entries: verify said healthy, TensorFlow's reader
    # fails ("Key ... not found"), and restore() raised instead of falling back.
    from testing.bundle import write_table

    index = world.ckpts / "ckpt-3.index"
    items = read_table(index.read_bytes())
    proto = entry(dict(items)[W])
    proto.offset = proto.size = proto.crc32c = 0
    for _ in range(6000 if slices == "6,000" else 1):
        proto.slices.add().extent.add(start=0, length=9 if slices == "past the shape" else 4)
    index.write_bytes(
        write_table([(k, proto.SerializeToString() if k == W else v) for k, v in items])
    )
    found = verify(world.prefix(3))
    assert found.cause is Cause.CORRUPT_INDEX
    assert any("slice" in line for line in found.evidence), found
    falls_back(world)


def test_an_entry_whose_name_is_not_utf8_is_a_corrupt_index(world: World) -> None:
    # Found by the hostile-input harness (H26): TensorFlow's reader decodes every name
    # (UnicodeDecodeError), so restore() failed; verify said healthy.
    from testing.bundle import write_table

    index = world.ckpts / "ckpt-3.index"
    items = read_table(index.read_bytes())
    items = sorted([*items, (b"\xff\xfe\x80 not utf-8", dict(items)[W])])
    index.write_bytes(write_table(items))
    found = verify(world.prefix(3))
    assert found.cause is Cause.CORRUPT_INDEX
    assert any("not UTF-8" in line for line in found.evidence), found
    falls_back(world, verify="deep")


def test_a_link_to_a_fifo_outside_is_never_opened(world: World) -> None:
    # Found by the hostile-input harness (H25): the index a link to a FIFO elsewhere.
    elsewhere = world.root / "elsewhere"
    elsewhere.mkdir()
    fifo = make_fifo(elsewhere / "pipe")
    (world.ckpts / "ckpt-3.index").unlink()
    (world.ckpts / "ckpt-3.index").symlink_to(fifo)
    with FifoWatch(fifo) as watch:
        found = verify(world.prefix(3))
        falls_back(world)
    assert watch.opened == 0
    assert found.cause is Cause.NOT_A_REGULAR_FILE


# --- 10. an unknown dtype -------------------------------------------------------------------


def test_an_unknown_dtype_is_a_corrupt_index_and_restore_falls_back(world: World) -> None:
    rewrite_entry(world.ckpts / "ckpt-3.index", W, dtype=999)  # CRC-valid
    for deep in (False, True):
        found = verify(world.prefix(3), deep=deep)
        assert found.cause is Cause.CORRUPT_INDEX
        assert any("dtype 999" in line for line in found.evidence), found
    falls_back(world)


@pytest.mark.parametrize("version", ["future", "bad consumer"])
def test_a_header_tensorflow_refuses_is_a_corrupt_index(world: World, version: str) -> None:
    # Found by the hostile-input harness: TensorFlow refused the version inside restore(),
    # which was then diagnosed as model_mismatch (no fallback past an intact ckpt-2).
    from tensorflow.core.protobuf import tensor_bundle_pb2

    from testing.bundle import replace_header

    header = tensor_bundle_pb2.BundleHeaderProto(num_shards=1)
    if version == "future":
        header.version.producer, header.version.min_consumer = 99, 99
    else:
        header.version.bad_consumers.append(1)
    replace_header(world.ckpts / "ckpt-3.index", header.SerializeToString())
    found = verify(world.prefix(3))
    assert found.cause is Cause.CORRUPT_INDEX
    assert any("refuses to read it" in line for line in found.evidence), found
    falls_back(world)


# --- 11. object graphs that do not decode ---------------------------------------------------


def _graph_with_a_child_out_of_range(prefix: str) -> bytes:
    graph = object_graph(prefix)
    graph.nodes[0].children[0].node_id = 99
    return graph.SerializeToString()


def _graph_with_the_root_as_a_slot(prefix: str) -> bytes:
    graph = object_graph(prefix)
    graph.nodes[1].slot_variables.add(original_variable_node_id=1, slot_name="m")
    return graph.SerializeToString()  # slot_variable_node_id 0: the root


GRAPHS: dict[str, Callable[[str], bytes]] = {
    "not a TrackableObjectGraph": lambda prefix: b"\xff\xff\xff\xff",
    "no nodes": lambda prefix: b"",
    "child node id out of range": _graph_with_a_child_out_of_range,
    "the root as a slot": _graph_with_the_root_as_a_slot,
}


@pytest.mark.parametrize("kind", list(GRAPHS))
def test_an_object_graph_that_does_not_decode(world: World, kind: str) -> None:
    prefix = world.prefix(3)
    value = GRAPHS[kind](prefix)
    resave(prefix, {GRAPH.decode(): value})  # TensorFlow writes it: every checksum valid
    for deep in (False, True):
        assert verify(prefix, deep=deep).cause is Cause.OBJECT_GRAPH_CORRUPT
    for verify_level in ("quick", "deep", "none"):
        trainee = Trainee()
        manager = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3, verify=verify_level)
        report = manager.restore()
        assert (report.save_path, trainee.value) == (world.prefix(2), 2.0), verify_level
    for argv in (("inspect", prefix), ("diff", world.prefix(2), prefix)):
        code, _, err = run_cli(*argv)
        assert code == 1 and "[object_graph_corrupt]" in err, err
    # An explicit request for such a checkpoint raises, with the diagnosis.
    other = world.prefix(2)
    resave(other, {GRAPH.decode(): b"\xff\xff\xff\xff"})
    with pytest.raises(RestoreError) as raised:
        SafeCheckpointManager(Trainee().checkpoint, world.ckpts, 3).restore(other)
    assert raised.value.diagnosis is not None
    assert raised.value.diagnosis.cause is Cause.OBJECT_GRAPH_CORRUPT


def nest(prefix: str, depth: int, *, values: bool) -> None:
    """Write `prefix` again with a chain of `depth` nested objects under the root ("c/c/...").

    With `values`, each object of the chain names w's value too.
    """
    graph = object_graph(prefix)
    base = len(graph.nodes)
    graph.nodes[0].children.add(node_id=base, local_name="c")
    for i in range(depth):
        node = graph.nodes.add()
        if values:
            node.attributes.add(name="VARIABLE_VALUE", checkpoint_key=W.decode())
        if i + 1 < depth:
            node.children.add(node_id=base + i + 1, local_name="c")
    resave(prefix, {GRAPH.decode(): graph.SerializeToString()})


def test_a_deeply_nested_object_graph_is_read_in_memory_proportional_to_it(
    world: World,
) -> None:
    # Found by the hostile-input harness: a chain of 50,000 nested objects (a 500 KB graph)
    # took +2.4 GB, one full path string per node.
    import tracemalloc

    prefix = world.prefix(3)
    nest(prefix, 50_000, values=False)
    tracemalloc.start()
    try:
        found = verify(prefix)
        trainee = Trainee()
        report = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3).restore()
        code, out, _ = run_cli("inspect", prefix)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found.ok
    assert (report.save_path, trainee.value) == (prefix, 3.0)
    assert code == 0 and "w " in out
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_object_paths_too_long_to_join_are_an_object_graph_corrupt(world: World) -> None:
    # 20,000 nested objects, each naming a value: their paths would take over a gigabyte.
    prefix = world.prefix(3)
    nest(prefix, 20_000, values=True)
    found = verify(prefix)
    assert found.cause is Cause.OBJECT_GRAPH_CORRUPT
    assert any("too long" in line for line in found.evidence), found
    falls_back(world, verify="none")
    assert run_cli("inspect", prefix)[0] == 1


# --- 13. a million declared shards ----------------------------------------------------------


def test_a_million_declared_shards_cost_one_listing(world: World) -> None:
    import tracemalloc

    from testing.bundle import header, replace_header

    replace_header(world.ckpts / "ckpt-3.index", header(num_shards=2**20))
    tracemalloc.start()
    try:
        found = verify(world.prefix(3))
        trainee = Trainee()
        report = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3).restore()
        code, out, _ = run_cli("doctor", world.ckpts, "--json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found.cause is Cause.MISSING_DATA_SHARD
    assert len(found.evidence) <= 25
    assert any(line.startswith("… and 1,048,5") for line in found.evidence), found
    assert (report.save_path, trainee.value) == (world.prefix(2), 2.0)
    assert code == 1 and len(out) < 100_000
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"  # a dict per shard took +1 GB


# --- links that lead nowhere, and a save's _temp that is no directory (harness findings) ---


@pytest.mark.parametrize("placement", ["index", "data"])
def test_a_link_loop_in_a_checkpoint_is_missing_and_restore_falls_back(
    world: World, placement: str
) -> None:
    # Found by the hostile-input harness: ELOOP was a storage failure (retried, then
    # StorageUnavailableError) although ckpt-2 is intact.
    loop = world.ckpts / PLACEMENTS[placement]
    loop.unlink()
    loop.symlink_to(loop.name)
    found = verify(world.prefix(3))
    cause = Cause.MISSING_INDEX if placement == "index" else Cause.MISSING_DATA_SHARD
    assert found.cause is cause
    assert any("leads nowhere" in line for line in found.evidence), found
    for level in ("quick", "deep"):
        trainee = Trainee()
        report = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3, verify=level).restore()
        assert (report.save_path, trainee.value) == (world.prefix(2), 2.0), level


def test_a_state_file_link_loop_is_a_missing_state_file(world: World) -> None:
    state = world.ckpts / "checkpoint"
    state.unlink()
    state.symlink_to("checkpoint")
    assert diagnose(world.ckpts).cause is Cause.STATE_FILE_MISSING
    trainee = Trainee()
    report = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3).restore()
    assert (report.save_path, trainee.value) == (world.prefix(3), 3.0)


@pytest.mark.parametrize("kind", ["socket", "link to a directory outside", "file"])
def test_a_save_whose_temp_is_no_directory_is_refused(
    world: World, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the hostile-input harness: TensorFlow's save failed with a bare
    # FailedPreconditionError on a socket, and wrote the save's parts through a link.
    import socket

    temp = world.ckpts / "ckpt-4_temp"
    if kind == "socket":
        monkeypatch.chdir(world.ckpts)  # a socket's path is limited to 108 bytes
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(temp.name)
    elif kind == "file":
        temp.write_text("not a directory\n")
    else:
        temp.symlink_to(world.outside, target_is_directory=True)
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, world.ckpts, 3)
    manager.restore()
    with pytest.raises(SaveError) as refused:
        manager.save()
    assert refused.value.diagnosis is not None
    assert refused.value.diagnosis.cause is Cause.NOT_A_DIRECTORY
    assert "ckpt-4_temp" in str(refused.value)
    assert not (world.ckpts / "ckpt-4.index").exists()
    assert os.path.lexists(temp)  # not removed: the user decides
    assert manager.save(checkpoint_number=7) == world.prefix(7)  # another number works


# --- 2. cleanup_temp never follows a link ---------------------------------------------------


def _old(path: Path) -> None:
    """Older than the checkpoints (the age rule removes it), the entry itself, not a target."""
    os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)


def test_cleanup_temp_removes_links_as_links(world: World) -> None:
    targets = {
        "ckpt-0_temp": world.outside,  # a leftover-looking link to a directory outside
        "checkpoint.tmp1234": world.outside / "sub",
        "ckpt-0.data-00000-of-00001": world.outside,  # data of a save that never got an index
    }
    for name, target in targets.items():
        (world.ckpts / name).symlink_to(target, target_is_directory=True)
        _old(world.ckpts / name)
    temp = world.ckpts / "ckpt-1_temp"  # a real leftover directory holding a link outside
    temp.mkdir()
    (temp / "part").symlink_to(world.outside / "precious.txt")
    (temp / "dir").symlink_to(world.outside, target_is_directory=True)
    _old(temp)
    for target in (world.outside, world.outside / "sub", world.outside / "precious.txt"):
        _old(target)  # old targets too: an age rule that stats through a link chooses them
    manager = SafeCheckpointManager(Trainee().checkpoint, world.ckpts, None, cleanup_temp=True)
    assert manager.save() == world.prefix(4)
    left = sorted(os.listdir(world.ckpts))
    assert not any(name in left for name in (*targets, "ckpt-1_temp")), left
    # the canary tree (checked by the fixture) is intact, and so is its content:
    assert (world.outside / "precious.txt").read_text() == "the thesis, chapter 1\n"


@pytest.mark.parametrize("manager_class", [tf.train.CheckpointManager, SafeCheckpointManager])
def test_tensorflows_own_rotation_deletes_a_link_not_its_target(
    world: World, manager_class: type
) -> None:
    # max_to_keep rotation is TensorFlow's _sweep (file_io.delete_file, an unlink): verified
    # here for docs/reliability.md, for plain TF and for SafeCheckpointManager alike.
    link = world.ckpts / "ckpt-1.data-00000-of-00001"
    link.unlink()
    link.symlink_to(world.outside / "sub" / "data.bin")
    manager = manager_class(Trainee().checkpoint, str(world.ckpts), max_to_keep=3)
    assert manager.restore_or_initialize() == world.prefix(3)
    assert manager.save() == world.prefix(4)  # ckpt-1 leaves the rotation and is swept
    assert not os.path.lexists(link)
    assert not os.path.lexists(world.ckpts / "ckpt-1.index")
    # world's canary: data.bin is intact


# --- 3. quarantine refuses a folder that is not a real directory inside ---------------------


@pytest.mark.parametrize(
    "kind", ["link to a directory outside", "relative link up", "a file", "a FIFO"]
)
def test_quarantine_never_moves_files_through_a_link(world: World, kind: str) -> None:
    place = world.ckpts / "quarantine"
    if kind.startswith("link"):
        place.symlink_to(world.outside, target_is_directory=True)
    elif kind.startswith("relative"):
        place.symlink_to("..", target_is_directory=True)
    elif kind == "a file":
        place.write_text("not a directory\n")
    else:
        os.mkfifo(place)
    with open(world.ckpts / DATA3, "r+b") as handle:
        handle.truncate(10)
    falls_back(world, quarantine=True)
    assert (world.ckpts / "ckpt-3.index").exists() and (world.ckpts / DATA3).exists()
    # nothing moved outside: the canary tree is checked by the fixture


def test_quarantine_into_a_real_directory_still_works(world: World) -> None:
    with open(world.ckpts / DATA3, "r+b") as handle:
        handle.truncate(10)
    (world.ckpts / "ckpt-3.index").rename(world.ckpts / "moved.index")
    (world.ckpts / "ckpt-3.index").symlink_to(world.ckpts / "moved.index")  # a link inside
    SafeCheckpointManager(Trainee().checkpoint, world.ckpts, 3, quarantine=True).restore()
    moved = world.ckpts / "quarantine" / "ckpt-3.index"
    assert moved.is_symlink()  # moved as a link
    assert not os.path.lexists(world.ckpts / "ckpt-3.index")


# --- 4. repair writes a new file under a unique name ---------------------------------------


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_repair_never_writes_through_an_existing_temporary_file(world: World, link: str) -> None:
    thesis = world.root / "run" / "thesis.tex"
    planted = world.ckpts / "checkpoint.safeckpt-tmp"
    if link == "symlink":
        planted.symlink_to(Path("..") / "thesis.tex")
    else:
        os.link(thesis, planted)
    (world.ckpts / "checkpoint").unlink()  # something to repair
    code, _, err = run_cli("repair", world.ckpts)
    assert code == 0, err
    assert 'model_checkpoint_path: "ckpt-3"' in (world.ckpts / "checkpoint").read_text()
    assert thesis.read_text() == "\\documentclass{book}\n"
    assert os.path.lexists(planted)
    assert not any(".safeckpt-tmp-" in n for n in os.listdir(world.ckpts))


def test_repair_never_writes_a_backup_through_a_dangling_link(world: World) -> None:
    import datetime as dt

    (world.ckpts / "checkpoint").write_text('model_checkpoint_path: "ckpt-9"\n')
    now = dt.datetime.now()
    planted = []
    for second in range(-2, 30):  # every backup name the next half minute could use
        stamp = (now + dt.timedelta(seconds=second)).strftime("%Y%m%d-%H%M%S")
        link = world.ckpts / f"checkpoint.bak-{stamp}"
        if not os.path.lexists(link):
            link.symlink_to(world.outside / f"created-{stamp}")
            planted.append(link)
    code, _, err = run_cli("repair", world.ckpts)
    assert code == 0, err
    backups = [n for n in os.listdir(world.ckpts) if n.startswith("checkpoint.bak-")]
    real = [n for n in backups if not (world.ckpts / n).is_symlink()]
    assert len(real) == 1
    assert (world.ckpts / real[0]).read_text() == 'model_checkpoint_path: "ckpt-9"\n'
    assert all(link.is_symlink() and not link.exists() for link in planted)


def test_workertemp_removal_unlinks_a_link(world: World) -> None:
    from safeckpt._multiworker.context import WorkerContext, remove_write_directory

    link = world.ckpts / "workertemp_1"
    link.symlink_to(world.outside, target_is_directory=True)
    context = WorkerContext(is_chief=False, task_type="worker", task_id=1, num_workers=2)
    remove_write_directory(str(world.ckpts), context)
    assert not os.path.lexists(link)


# --- also seen: a directory the user cannot traverse ---------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="permission bits as on Linux")
@pytest.mark.parametrize("closed", ["its parent", "the directory itself"])
def test_an_untraversable_directory_is_permission_denied(unprivileged: Path, closed: str) -> None:
    out = run_unprivileged(
        f"""
import safeckpt
d = pathlib.Path({str(unprivileged)!r}) / {closed!r}.replace(" ", "-") / "ckpts"
base = d.parent if {closed!r} == "its parent" else d
m = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), str(d), None)
m.save(); m.save()
base.chmod(0o600)  # readable, not searchable
results = {{"verify": safeckpt.verify(d / "ckpt-2").cause.value,
            "diagnose": safeckpt.diagnose(d).cause.value}}
try:
    safeckpt.list_checkpoints(d)
except tf.errors.PermissionDeniedError as exc:
    results["list_checkpoints"] = "PermissionDeniedError"
base.chmod(0o700)
print(json.dumps(results))
"""
    )
    results = json.loads(out.splitlines()[-1])
    assert results == {
        "verify": "permission_denied",
        "diagnose": "permission_denied",
        "list_checkpoints": "PermissionDeniedError",
    }
