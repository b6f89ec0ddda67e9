"""Crash-consistency harness: SIGKILL a training process while it saves, then resume.

A child process (`stress._crash_child`) trains a model of ``size_mb`` MiB and saves
checkpoints with `safeckpt.SafeCheckpointManager` (``max_to_keep=3``); checkpoint ``k``
holds every variable filled with ``k`` plus a random tag naming the save that wrote it. The
harness kills the child with SIGKILL

* at deterministic points of a save, injected at the exact system call with ``strace
  -e inject=<syscall>:signal=SIGKILL`` (inside TensorFlow's C++ save) or by the child itself
  just before the call (the Python-level state-file writes and the sweep), and
* at random moments of a save (a random delay after the child announced it).

Then an oracle that does not use safeckpt decides which checkpoints are complete: every
tensor of every ``ckpt-N`` is read back with TensorFlow's ``CheckpointReader`` (which checks
each tensor's CRC32C) and must hold ``N``; the child's side log says which saves returned.
A fresh process resumes with ``SafeCheckpointManager(..., max_to_keep=3,
cleanup_temp=True/False alternately).restore()``, saves once more, and the harness checks:

* it resumed from the newest complete checkpoint (the restored values and tag prove which),
  also when the state file does not list that checkpoint yet; it never started fresh while
  a complete checkpoint existed;
* nothing complete was lost or overwritten by the resumed run: the restored checkpoint,
  anything newer and the ``max_to_keep - 1`` newest complete checkpoints keep byte-identical
  files; older ones may only disappear (TensorFlow's documented ``max_to_keep`` rotation),
  never change;
* metadata files never outlive their checkpoints, name their checkpoint and are never
  older than its index (`metadata_findings`), and the resumed save has one;
* with ``cleanup_temp=True`` nothing but complete checkpoints (with their metadata files),
  the state file and the writer lease remains after that save (each leftover is reported
  once, by the first such save it survives).

The resumed process then becomes the training process of the next kill, so each directory
(a *chain*, restarted empty every few kills) accumulates what real crashes leave behind.
Processes are forked from a multiprocessing forkserver that has imported TensorFlow and
safeckpt and nothing else (no model, no checkpoint, no TensorFlow runtime), so a "fresh
process" starts in milliseconds instead of seconds; strace attaches to it by pid.

Run ``python -m stress.crash --kills 200 [--size-mb 200] [--seed N] [--json PATH]``; the
exit status is 1 when a check failed (a *violation*), 2 when the harness itself could not
do what it meant to (an injection that did not fire, a timeout), else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stress._crash_child import (
    CHECKPOINT_NAME,
    COUNTER_KEY,
    PYTHON_POINTS,
    STATE_FILE,
    TAG_KEY,
    child_main,
    elements_per_var,
    var_key,
    var_names,
)

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
MAX_TO_KEEP = 3
#: safeckpt's writer lease (docs/fallback.md, "Two writers"): it stays, by design.
LEASE = ".safeckpt-writer-" + CHECKPOINT_NAME
N_VARS = 4
TIMEOUT = 900.0  # seconds for any single step of a child (imports on a loaded machine)

#: Deterministic kill points in save order: what the process is killed just before.
POINTS: dict[str, str] = {
    "temp_mkdir": "mkdir of <prefix>_temp (the save has written nothing)",
    "tmp_data_rename": "rename of the part data .tempstate file (data fully written)",
    "tmp_index_rename": "rename of the part index .tempstate file",
    "data_rename": "MergeV2Checkpoints renames the data shard to its final name",
    "index_create": "creation of <prefix>.index (data shard already final)",
    "index_write": "writing <prefix>.index (created, still empty)",
    "part_index_unlink": "unlink of the part index (checkpoint complete, _temp left)",
    "temp_rmdir": "rmdir of <prefix>_temp (checkpoint complete)",
    "state_write": "1st state-file rename (complete checkpoint not yet listed)",
    "sweep_index": "the sweep deletes an evicted checkpoint's .index",
    "sweep_data": "the sweep deletes an evicted checkpoint's data shard",
    "state_rewrite": "2nd state-file rename, after the sweep",
}
RANDOM = "random"
#: How a resume chose what to restore. The first three are right; the others violations.
OUTCOMES = {
    "resumed-newest": "restored the newest complete checkpoint",
    "fell-back": "skipped an incomplete newer one, restored the newest complete checkpoint",
    "initialized-correctly": "started fresh, nothing complete on disk",
    "wrong-checkpoint": "restored something else than the newest complete checkpoint",
    "started-fresh": "started fresh although a complete checkpoint existed",
    "restore-failed": "restore() raised",
}
STRACE_POINTS = tuple(p for p in POINTS if p not in PYTHON_POINTS)
_PART = "part-00000-of-00001"
_RENAMES = "rename,renameat,renameat2"


def _strace_args(point: str, directory: str, step: int) -> list[str]:
    """Options for strace that SIGKILL the traced process at `point` of the save of `step`.

    Paths are matched with ``-P`` (strace matches the first path argument of a call, or the
    file behind a file descriptor). The two ``.tempstate`` renames have random source names,
    so they are counted instead: they are the 2nd and 3rd ``rename`` of a fresh process
    (``PYTHONDONTWRITEBYTECODE`` keeps Python from renaming ``.pyc`` files). The 1st is
    safeckpt's writer lease, which a save replaces (a new file, renamed) before TensorFlow
    writes anything (docs/fallback.md, "Two writers").
    """
    prefix = f"{directory}/{CHECKPOINT_NAME}-{step}"
    temp = prefix + "_temp"
    table: dict[str, tuple[str, str | None, int]] = {
        "temp_mkdir": ("mkdir,mkdirat", temp, 1),
        "tmp_data_rename": (_RENAMES, None, 2),
        "tmp_index_rename": (_RENAMES, None, 3),
        "data_rename": (_RENAMES, f"{temp}/{_PART}.data-00000-of-00001", 1),
        "index_create": ("open,openat,creat", prefix + ".index", 1),
        "index_write": ("write,writev,pwrite64", prefix + ".index", 1),
        "part_index_unlink": ("unlink,unlinkat", f"{temp}/{_PART}.index", 1),
        "temp_rmdir": ("rmdir,unlinkat", temp, 1),
    }
    calls, path, when = table[point]
    args = ["-f", "-qq", "-o", "/dev/null", "-e", f"trace={calls}"]
    args += ["-e", f"inject={calls}:signal=SIGKILL:when={when}"]
    return args + (["-P", path] if path else [])


def strace_available() -> bool:
    """Whether ``strace`` is installed and may trace here (ptrace can be forbidden)."""
    exe = shutil.which("strace")
    if exe is None:
        return False
    try:
        done = subprocess.run(
            [exe, "-f", "-qq", "-o", "/dev/null", "true"], capture_output=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


# Oracle -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the oracle found for one ``ckpt-N`` (TensorFlow's reader only, no safeckpt)."""

    step: int
    status: str  # "complete", "incomplete" or "inconsistent"
    reason: str = ""
    tag: int | None = None
    hashes: tuple[tuple[str, str], ...] = ()  # (file name, blake2b) of a complete one


_INDEX_RE = re.compile(rf"^{CHECKPOINT_NAME}-(\d+)\.index$")


def _hash(path: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Oracle:
    """Decides which checkpoints are complete by reading back every tensor with TensorFlow.

    Results are cached by file identity (inode, size, mtime, ctime of every file of the
    checkpoint), so each version of a checkpoint is read once.
    """

    def __init__(self, n_vars: int, elements: int) -> None:
        self._names = var_names(n_vars)
        self._elements = elements
        self._cache: dict[tuple[Any, ...], Facts] = {}

    def scan(self, directory: str) -> dict[int, Facts]:
        """Facts for every ``ckpt-N`` with an index file in `directory`, by N."""
        names = sorted(os.listdir(directory))
        found: dict[int, Facts] = {}
        for name in names:
            match = _INDEX_RE.match(name)
            if not match:
                continue
            step = int(match.group(1))
            base = f"{CHECKPOINT_NAME}-{step}"
            files = [name] + [n for n in names if n.startswith(base + ".data-")]
            identity: list[Any] = [directory, step]
            for f in files:
                try:
                    st = os.stat(os.path.join(directory, f))
                except OSError:
                    continue
                identity.append((f, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
            key = tuple(identity)
            if key not in self._cache:
                self._cache[key] = self._read(directory, step, files)
            found[step] = self._cache[key]
        return found

    def _read(self, directory: str, step: int, files: list[str]) -> Facts:
        import tensorflow as tf

        prefix = os.path.join(directory, f"{CHECKPOINT_NAME}-{step}")
        try:
            reader = tf.train.load_checkpoint(prefix)
            keys = reader.get_variable_to_shape_map()
            expected = {var_key(n) for n in self._names} | {TAG_KEY, COUNTER_KEY}
            if expected - set(keys):
                return Facts(step, "incomplete", f"keys missing: {sorted(expected - set(keys))}")
            tensors = {k: reader.get_tensor(k) for k in keys}  # every tensor, CRC-checked
        except Exception as exc:  # TF raises OpError, IndexError, ValueError, RuntimeError
            return Facts(step, "incomplete", f"{type(exc).__name__}: {str(exc)[:200]}")
        tag = int(tensors[TAG_KEY])
        wrong = [
            n
            for n in self._names
            if tensors[var_key(n)].shape != (self._elements,)
            or not (tensors[var_key(n)] == float(step)).all()
        ]
        if int(tensors[COUNTER_KEY]) != step:
            wrong.append(f"save_counter={int(tensors[COUNTER_KEY])}")
        if wrong:
            return Facts(step, "inconsistent", f"not filled with {step}: {wrong}", tag)
        hashes = tuple((f, _hash(os.path.join(directory, f))) for f in sorted(files))
        return Facts(step, "complete", "", tag, hashes)


def _state_paths(directory: str) -> tuple[str | None, list[str]]:
    """The state file's latest and listed basenames, read with TensorFlow (None, [] if none)."""
    import tensorflow as tf

    try:
        state = tf.train.get_checkpoint_state(directory)
    except (ValueError, UnicodeDecodeError, tf.errors.OpError):
        return None, []
    if state is None:
        return None, []
    listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
    return os.path.basename(state.model_checkpoint_path), listed


def _leftovers(directory: str, complete: Iterable[Facts]) -> list[str]:
    """Entries of `directory` but the state file, the lease and complete checkpoints.

    A complete checkpoint's metadata file (docs/metadata.md) belongs to it.
    """
    keep = {STATE_FILE, LEASE}
    for facts in complete:
        keep.update(name for name, _ in facts.hashes)
        keep.add(f"{CHECKPOINT_NAME}-{facts.step}{METADATA_SUFFIX}")
    out = []
    for name in sorted(os.listdir(directory)):
        if name in keep:
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            inside = sorted(os.listdir(path))
            out.append(f"{name}/ [{', '.join(inside) if inside else 'empty'}]")
        else:
            out.append(name)
    return out


METADATA_SUFFIX = ".safeckpt.json"


def _leftover_prefix(name: str) -> str:
    """The checkpoint a leftover entry belongs to (``ckpt-3`` of a data or metadata file)."""
    return name.split(".data-")[0].removesuffix(METADATA_SUFFIX)


def metadata_findings(directory: str, complete: dict[int, Facts]) -> list[str]:
    """Violations of "metadata files never outlive their checkpoints" (docs/metadata.md).

    Decided from the files alone: a ``ckpt-N.safeckpt.json`` must sit next to a file of
    ``ckpt-N`` (its index or data), name that checkpoint, and, next to a complete one, be
    no older than its index (it is written after the checkpoint: an older file would
    describe an earlier checkpoint of that number).
    """
    names = set(os.listdir(directory))
    bad = []
    for name in sorted(n for n in names if n.endswith(METADATA_SUFFIX)):
        base = name[: -len(METADATA_SUFFIX)]
        if not any(n.startswith(base + ".") and n != name for n in names):
            bad.append(f"{name} outlived its checkpoint")
            continue
        try:
            data = json.loads(Path(directory, name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            bad.append(f"{name} is not readable JSON: {exc}")
            continue
        if data.get("checkpoint") != base:
            bad.append(f"{name} describes {data.get('checkpoint')!r}")
        step = int(base.rsplit("-", 1)[1]) if base.rsplit("-", 1)[-1].isdigit() else None
        if step in complete:
            index = os.stat(os.path.join(directory, base + ".index")).st_mtime_ns
            if os.stat(os.path.join(directory, name)).st_mtime_ns < index:
                bad.append(f"{name} is older than {base}.index (a stale file)")
    return bad


def _listing(directory: str) -> list[str]:
    """``name size mtime`` of every entry of `directory` (one level into subdirectories)."""
    out = []
    for root, dirs, files in os.walk(directory):
        depth = os.path.relpath(root, directory).count(os.sep)
        if depth > 0:
            dirs[:] = []
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            rel = os.path.relpath(path, directory)
            out.append(f"{rel} {st.st_size} {st.st_mtime_ns / 1e9:.6f}")
    return out


def _landed(directory: str, step: int, model_bytes: int, oracle: dict[int, Facts]) -> str:
    """Where in the save of `step` a kill landed, judged from the files it left."""
    base = f"{CHECKPOINT_NAME}-{step}"
    prefix = os.path.join(directory, base)
    temp = prefix + "_temp"
    latest, _listed = _state_paths(directory)
    if latest == base:
        return "state_written"  # the sweep, the 2nd state write or safeckpt's cleanup
    facts = oracle.get(step)
    if facts is not None and facts.status == "complete":
        if os.path.isdir(temp):
            inside = os.listdir(temp)
            return "part_index_unlink" if f"{_PART}.index" in inside else "temp_rmdir"
        return "state_write"
    if os.path.exists(prefix + ".index"):
        return "index_write"
    if os.path.exists(prefix + ".data-00000-of-00001"):
        return "index_create"
    if not os.path.isdir(temp):
        return "temp_mkdir"
    inside = os.listdir(temp)
    if f"{_PART}.data-00000-of-00001" in inside:
        return "data_rename" if f"{_PART}.index" in inside else "tmp_index_rename"
    partial = [n for n in inside if ".data-" in n and ".tempstate" in n]
    if partial and os.path.getsize(os.path.join(temp, partial[0])) >= model_bytes:
        return "tmp_data_rename"
    return "data_write"


# Child processes ----------------------------------------------------------------------


class ChildEndedError(RuntimeError):
    """The child process ended while an event was awaited."""


class _TrialAbortedError(Exception):
    """A violation ended the trial early (already recorded)."""


_CONTEXT: Any = None


def _context() -> Any:
    """The multiprocessing forkserver context; its server imports TensorFlow once."""
    global _CONTEXT
    if _CONTEXT is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # no .pyc renames in traced children
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["tensorflow", "safeckpt", "stress._crash_child"])
        _CONTEXT = context
    return _CONTEXT


class Child:
    """One training process (`stress._crash_child.child_main`) and its event stream.

    The process is forked from the forkserver, which has imported TensorFlow and safeckpt
    but never created a model, a checkpoint or TensorFlow's runtime: each child builds
    everything itself, like a freshly started training script.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        context = _context()
        self._conn, theirs = context.Pipe()
        self.proc = context.Process(target=child_main, args=(theirs, options))
        self.proc.start()
        theirs.close()
        self.pid: int = self.proc.pid
        self.log = options["log"]
        self.tracer: subprocess.Popen[bytes] | None = None

    def attach_strace(self, args: list[str], stderr: str) -> None:
        """Trace the process (all threads) with strace `args`; returns once attached."""
        with open(stderr, "ab") as err:
            self.tracer = subprocess.Popen(
                [shutil.which("strace") or "strace", *args, "-p", str(self.pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.tracer.poll() is not None:
                raise ChildEndedError(f"strace exited with {self.tracer.returncode}")
            if traced_by(self.pid, self.tracer.pid):
                return
            time.sleep(0.02)
        raise TimeoutError("strace did not attach within 120 s")

    def next_event(self, timeout: float) -> dict[str, Any] | None:
        """The next event; None once the process has ended; raises TimeoutError."""
        if not self._conn.poll(timeout):
            raise TimeoutError(f"no event from the child within {timeout:.0f} s")
        try:
            event: dict[str, Any] = self._conn.recv()
        except (EOFError, OSError):
            return None
        return event

    def wait_for(self, *names: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Skip events until one named in `names`; raises ChildEndedError at the end."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if event is None:
                self.proc.join(60)
                raise ChildEndedError(f"the child ended (exit code {self.proc.exitcode})")
            if event["event"] in names:
                return event

    def send(self, **command: Any) -> None:
        """Send one command to the child."""
        self._conn.send(command)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return bool(self.proc.is_alive())

    def kill(self) -> None:
        """SIGKILL the child."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def join(self) -> int | None:
        """Wait for the process (and its tracer) to end; returns the exit code."""
        self.proc.join(120)
        if self.tracer is not None:
            try:
                self.tracer.wait(60)
            except subprocess.TimeoutExpired:
                self.tracer.kill()
                self.tracer.wait()
        return self.proc.exitcode  # type: ignore[no-any-return]

    def close(self) -> None:
        """Ask the child to exit, or kill it."""
        if self.alive():
            try:
                self.send(cmd="exit")
                self.proc.join(60)
            except OSError:
                pass
            if self.alive():
                self.kill()
        self.join()
        self._conn.close()

    def logged(self) -> list[dict[str, Any]]:
        """Every event in the child's side log (what it wrote before it died)."""
        try:
            with open(self.log, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []


def _one_line(text: str) -> str:
    """`text` with its lines joined by `` / ``."""
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def traced_by(pid: int, tracer: int) -> bool:
    """Whether every thread of `pid` has `tracer` as its TracerPid."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for task in tasks:
            with open(f"/proc/{pid}/task/{task}/status", encoding="ascii") as f:
                line = next(x for x in f if x.startswith("TracerPid:"))
            if int(line.split()[1]) != tracer:
                return False
    except (OSError, StopIteration, ValueError):
        return False
    return bool(tasks)


# Trials -----------------------------------------------------------------------------


@dataclass
class Trial:
    """One kill and the resume after it."""

    index: int
    chain: int
    point: str
    cleanup_temp: bool
    target: int | None = None  # the save the kill was aimed at
    landed: str = ""  # where it landed (see `_landed`), or "after_save"
    killed_step: int | None = None  # the save that was running when the process died
    complete_before: list[int] = field(default_factory=list)
    leftovers_before: list[str] = field(default_factory=list)
    disk_before: list[str] = field(default_factory=list)  # "name size mtime" after the kill
    newest_complete: int | None = None
    newest_unlisted: bool = False  # the state file did not list the newest complete one
    outcome: str = ""  # how the resume chose; see `OUTCOMES` (violations are kept apart)
    restore_outcome: str | None = None
    restored: int | None = None
    skipped: list[str] = field(default_factory=list)
    saved: int | None = None
    complete_after: list[int] = field(default_factory=list)
    leftovers_after: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the harness failed, not safeckpt
    kill_delay: float | None = None  # random kills: seconds after the save started
    logs: list[str] = field(default_factory=list)  # side logs of the killed and resumed process
    seconds: float = 0.0

    @property
    def as_intended(self) -> bool | None:
        """Whether a deterministic kill landed where it was aimed (None for random kills)."""
        if self.point == RANDOM:
            return None
        return self.landed == self.point


@dataclass
class Summary:
    """The result of `run`."""

    kills: int
    size_mb: float
    seed: int
    workdir: str
    strace: bool
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0
    skipped_points: list[str] = field(default_factory=list)
    safeckpt: str = ""  # the package the children imported

    @property
    def violations(self) -> list[str]:
        """Every failed check, as ``trial N (point): message``."""
        return [f"trial {t.index} ({t.point}): {v}" for t in self.trials for v in t.violations]

    @property
    def errors(self) -> list[str]:
        """Everything the harness could not do as planned."""
        return [f"trial {t.index} ({t.point}): {e}" for t in self.trials for e in t.errors]

    @property
    def ok(self) -> bool:
        """No violation and no harness error."""
        return not self.violations and not self.errors

    def outcomes(self) -> Counter[str]:
        """How many trials ended in each outcome."""
        return Counter(t.outcome for t in self.trials)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable summary with every trial."""
        return {
            "kills": self.kills,
            "size_mb": self.size_mb,
            "seed": self.seed,
            "workdir": self.workdir,
            "strace": self.strace,
            "seconds": round(self.seconds, 1),
            "skipped_points": self.skipped_points,
            "safeckpt": self.safeckpt,
            "outcomes": dict(self.outcomes()),
            "resumed_from_unlisted": sum(
                1 for t in self.trials if t.newest_unlisted and t.restored == t.newest_complete
            ),
            "violations": self.violations,
            "errors": self.errors,
            "trials": [asdict(t) | {"as_intended": t.as_intended} for t in self.trials],
        }

    def table(self) -> str:
        """A human-readable summary table."""
        lines = [
            f"crash harness: {len(self.trials)} kills of a {self.size_mb:g} MiB model, "
            f"seed {self.seed}, max_to_keep={MAX_TO_KEEP}, {self.seconds:.0f} s, "
            f"safeckpt from {self.safeckpt or '?'}"
            + ("" if self.strace else " (strace unavailable: C++-level points skipped)"),
            "",
            f"{'kill point':<18} {'kills':>5} {'landed':>7} {'newest':>7} {'fell':>5} "
            f"{'init':>5} {'wrong':>6} {'unlisted':>8} {'violations':>10}",
        ]
        order = [*POINTS, RANDOM]
        for point in order:
            trials = [t for t in self.trials if t.point == point]
            if not trials:
                continue
            landed = "-" if point == RANDOM else str(sum(1 for t in trials if t.as_intended))
            count = Counter(t.outcome for t in trials)
            unlisted = sum(1 for t in trials if t.newest_unlisted)
            bad = sum(1 for t in trials if t.violations)
            lines.append(
                f"{point:<18} {len(trials):>5} {landed:>7} {count['resumed-newest']:>7} "
                f"{count['fell-back']:>5} {count['initialized-correctly']:>5} "
                f"{_wrong(count):>6} {unlisted:>8} {bad:>10}"
            )
        total = self.outcomes()
        lines.append(
            f"{'total':<18} {len(self.trials):>5} {'':>7} {total['resumed-newest']:>7} "
            f"{total['fell-back']:>5} {total['initialized-correctly']:>5} {_wrong(total):>6} "
            f"{sum(1 for t in self.trials if t.newest_unlisted):>8} "
            f"{sum(1 for t in self.trials if t.violations):>10}"
        )
        randoms = [t for t in self.trials if t.point == RANDOM]
        if randoms:
            where = Counter(t.landed for t in randoms)
            lines += [
                "",
                "random kills landed: " + ", ".join(f"{k} {v}" for k, v in where.most_common()),
            ]
        left = Counter(
            "cleanup_temp=True" if t.cleanup_temp else "cleanup_temp=False"
            for t in self.trials
            if t.leftovers_after
        )
        lines += [
            "",
            "columns: landed = deterministic kill landed at the aimed point; newest = resumed "
            "from the newest complete checkpoint; fell = fell back past an incomplete newer "
            "one to the newest complete; init = started fresh with nothing complete on disk; "
            "wrong = resumed from anything else, started fresh although a complete checkpoint "
            "existed, or restore() raised; unlisted = the newest complete checkpoint was not in "
            "the state file yet; violations = trials with any failed check (wrong resume, a "
            "complete checkpoint lost or overwritten, leftovers with cleanup_temp=True).",
            f"trials with leftovers after the resumed save: {dict(left) or 0}",
            f"violations: {len(self.violations)}; harness errors: {len(self.errors)}",
        ]
        lines += [f"  VIOLATION {v}" for v in self.violations]
        lines += [f"  ERROR {e}" for e in self.errors]
        return "\n".join(lines)


def _wrong(count: Counter[str]) -> int:
    return sum(n for outcome, n in count.items() if outcome in _WRONG)


_WRONG = ("wrong-checkpoint", "started-fresh", "restore-failed")


def schedule(kills: int, seed: int, strace: bool) -> list[str]:
    """Kill points for `kills` trials: every other one random, the others deterministic.

    The deterministic points come in rounds, each round every point once in a new random
    order, so that every point meets every position in a chain (the first kill of a chain
    hits a run whose first save is in progress).
    """
    rng = random.Random(seed)
    points = [p for p in POINTS if strace or p in PYTHON_POINTS]
    out: list[str] = []
    round_: list[str] = []
    for i in range(kills):
        if i % 2:
            out.append(RANDOM)
            continue
        if not round_:
            round_ = points[:]
            rng.shuffle(round_)
        out.append(round_.pop())
    return out


def cleanup_flags(plan: Sequence[str], seed: int) -> list[bool]:
    """``cleanup_temp`` of each resuming process: alternating per kill point."""
    rng = random.Random(seed + 1)
    phase: dict[str, bool] = {}
    seen: Counter[str] = Counter()
    flags = []
    for point in plan:
        phase.setdefault(point, rng.random() < 0.5)
        flags.append(phase[point] != (seen[point] % 2 == 1))
        seen[point] += 1
    return flags


class _Harness:
    def __init__(
        self,
        size_mb: float,
        seed: int,
        workdir: Path,
        chain_length: int,
        summary: Summary,
        log: Any,
    ) -> None:
        self.size_mb = size_mb
        self.rng = random.Random(seed)
        self.workdir = workdir
        self.chain_length = chain_length
        self.summary = summary
        self.say = log
        self.elements = elements_per_var(size_mb, N_VARS)
        self.model_bytes = self.elements * 4 * N_VARS
        self.oracle = Oracle(N_VARS, self.elements)
        self.proc: Child | None = None
        self.chain = -1
        self.chain_dir = ""
        self.chain_trials = 0
        self.chain_bad = False
        self.kept_dirs = 0
        self.nproc = 0
        self.save_seconds: list[float] = []
        self.counter = 0  # the save_counter of the live process
        self.reported: set[str] = set()  # leftovers reported in this chain
        self.listed_at_start: set[str] = set()  # state-file entries when the resume starts
        self.stderr = str(workdir / "strace.stderr")

    # processes ------------------------------------------------------------------

    def _start(self, cleanup_temp: bool) -> Child:
        self.nproc += 1
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        self.stderr = str(logs / f"proc-{self.nproc:04d}.stderr")
        return Child(
            {
                "directory": self.chain_dir,
                "log": str(logs / f"proc-{self.nproc:04d}.log"),
                "stderr": self.stderr,
                "size_mb": self.size_mb,
                "vars": N_VARS,
                "max_to_keep": MAX_TO_KEEP,
                "cleanup_temp": cleanup_temp,
            }
        )

    def _new_chain(self) -> None:
        self._drop_process()
        if self.chain_dir:
            self._drop_chain_dir()
        self.chain += 1
        self.chain_dir = str(self.workdir / f"chain-{self.chain:03d}")
        os.makedirs(self.chain_dir)
        self.chain_trials = 0
        self.chain_bad = False
        self.counter = 0
        self.reported = set()

    def _drop_chain_dir(self) -> None:
        if self.chain_bad and self.kept_dirs < 5:
            self.kept_dirs += 1
            self.say(f"  keeping {self.chain_dir} for inspection")
        else:
            shutil.rmtree(self.chain_dir, ignore_errors=True)

    def _drop_process(self) -> None:
        if self.proc is not None:
            self.proc.close()
            self.proc = None

    def close(self) -> None:
        self._drop_process()
        if self.chain_dir:
            self._drop_chain_dir()

    # one trial --------------------------------------------------------------------

    def trial(self, index: int, point: str, cleanup_temp: bool) -> Trial:
        started = time.monotonic()
        if self.proc is None or self.chain_trials >= self.chain_length:
            self._new_chain()
        self.chain_trials += 1
        trial = Trial(index=index, chain=self.chain, point=point, cleanup_temp=cleanup_temp)
        aborted = False
        try:
            self._kill(trial)
            self._resume(trial)
        except _TrialAbortedError:
            aborted = True
        except (ChildEndedError, TimeoutError, OSError) as exc:
            trial.errors.append(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # keep the run (and its summary) going
            trial.errors.append(f"harness failure {type(exc).__name__}: {exc}")
        if trial.violations or trial.errors:
            self.chain_bad = True
        if trial.errors or aborted:  # start over in a new directory
            self._drop_process()
        trial.seconds = time.monotonic() - started
        return trial

    def _launch(self, trial: Trial) -> None:
        """Start the training process of a new chain (an empty directory)."""
        if self.proc is not None:
            return
        self.proc = self._start(self.rng.random() < 0.5)
        event = self.proc.wait_for("restored", "restore_failed")
        started = [e for e in self.proc.logged() if e["event"] == "started"]
        if started and not self.summary.safeckpt:
            self.summary.safeckpt = started[0]["safeckpt"]
        if event["event"] == "restore_failed" or event["outcome"] != "initialized":
            trial.violations.append(f"the first process in an empty directory: {event}")
            raise _TrialAbortedError
        self.counter = event["save_counter"]

    def _kill(self, trial: Trial) -> None:
        self._launch(trial)
        proc = self.proc
        assert proc is not None
        trial.target = self.counter + 1
        if point_needs_strace(trial.point):
            proc.attach_strace(_strace_args(trial.point, self.chain_dir, trial.target), self.stderr)
        commanded = time.time()
        if trial.point == RANDOM:
            count = self.rng.randint(1, 3)
            trial.target = self.counter + count
            proc.send(cmd="save", count=count)
            for _ in range(count):
                proc.wait_for("saving")
            estimate = (
                statistics.median(self.save_seconds[-20:])
                if self.save_seconds
                else (0.1 + self.size_mb * 0.01)
            )
            if self.rng.random() < 0.65:
                delay = self.rng.uniform(0.0, estimate)
            else:  # aim at the end of the save: merge, state writes, sweep, cleanup
                delay = estimate * self.rng.uniform(0.8, 1.0)
            trial.kill_delay = round(delay, 4)
            time.sleep(delay)
            proc.kill()
        else:
            proc.send(
                cmd="save", count=5, arm=trial.point if trial.point in PYTHON_POINTS else None
            )
            try:
                proc.wait_for("done")
            except ChildEndedError:
                pass
            else:
                trial.errors.append("the injection never fired (the child finished its saves)")
                proc.kill()
        proc.close()
        self.proc = None
        trial.logs.append(proc.log)
        events = proc.logged()
        saved = [e for e in events if e["event"] == "saved"]
        self.save_seconds += [e["seconds"] for e in saved if e["t"] >= commanded]
        saving = [e for e in events if e["event"] == "saving"]
        injected = [e for e in events if e["event"] == "injected"]
        running = saving[-1]["step"] if saving else None
        if saved and running == saved[-1]["step"]:
            running = None
        trial.killed_step = running
        before = self.oracle.scan(self.chain_dir)
        if injected:
            trial.landed = injected[-1]["point"]
        elif running is None:
            trial.landed = "after_save"
        else:
            trial.landed = _landed(self.chain_dir, running, self.model_bytes, before)
        if trial.point not in (RANDOM, *PYTHON_POINTS) and trial.landed != trial.point:
            trial.errors.append(f"aimed at {trial.point}, landed at {trial.landed}")
        self._check_crash(trial, before, saved)

    def _check_crash(
        self, trial: Trial, before: dict[int, Facts], saved: list[dict[str, Any]]
    ) -> None:
        complete = {k: f for k, f in before.items() if f.status == "complete"}
        for found in before.values():
            if found.status == "inconsistent":
                trial.violations.append(f"ckpt-{found.step} is readable but {found.reason}")
        if saved:
            last = saved[-1]
            facts = complete.get(last["step"])
            if facts is None:
                trial.violations.append(
                    f"the save of ckpt-{last['step']} returned, but it is not complete "
                    f"({before.get(last['step'])})"
                )
            elif facts.tag != last["tag"]:
                trial.violations.append(f"ckpt-{last['step']} does not hold what its save wrote")
        trial.complete_before = sorted(complete)
        trial.newest_complete = max(complete) if complete else None
        if trial.newest_complete is not None:
            _latest, listed = _state_paths(self.chain_dir)
            trial.newest_unlisted = f"{CHECKPOINT_NAME}-{trial.newest_complete}" not in listed
        trial.leftovers_before = _leftovers(self.chain_dir, complete.values())
        trial.disk_before = _listing(self.chain_dir)

    def _resume(self, trial: Trial) -> None:
        before = {
            k: f for k, f in self.oracle.scan(self.chain_dir).items() if f.status == "complete"
        }
        # Files of checkpoints the state file lists when the manager starts are never
        # housekeeping's to remove (docs/fallback.md), even when only data is left of them
        # (a kill during the sweep): the next manager, whose state file no longer lists
        # them, removes them.
        self.listed_at_start = set(_state_paths(self.chain_dir)[1])
        newest = trial.newest_complete
        proc = self.proc = self._start(trial.cleanup_temp)
        trial.logs.append(proc.log)
        event = proc.wait_for("restored", "restore_failed")
        if event["event"] == "restore_failed":
            trial.outcome = "restore-failed"
            trial.violations.append(f"restore() raised {_one_line(event['error'])}")
            raise _TrialAbortedError
        trial.restore_outcome = event["outcome"]
        trial.restored = event["step"] if event["save_path"] else None
        trial.skipped = event["skipped"]
        self._check_restore(trial, event, before)
        self.counter = event["save_counter"]
        proc.send(cmd="save", count=1)
        try:
            saved = proc.wait_for("saved")
            proc.wait_for("done")
        except ChildEndedError:
            trial.violations.append(f"the save after resuming failed (see {self.stderr})")
            raise _TrialAbortedError from None
        self.counter = saved["step"]
        self.save_seconds.append(saved["seconds"])
        trial.saved = saved["step"]
        after = self.oracle.scan(self.chain_dir)
        self._check_save(trial, saved, before, after, newest)

    def _check_restore(self, trial: Trial, event: dict[str, Any], before: dict[int, Facts]) -> None:
        newest = trial.newest_complete
        values = event["values"]
        bad = trial.violations
        if trial.restored is None:
            trial.outcome = "initialized-correctly" if newest is None else "started-fresh"
            if newest is not None:
                bad.append(f"started fresh ({event['outcome']}) although ckpt-{newest} is complete")
            elif any(v != [0.0, 0.0] for v in values.values()):
                bad.append(f"initialized, but the variables hold checkpoint values {values}")
            return
        r = trial.restored
        if r != newest:
            trial.outcome = "wrong-checkpoint"
            bad.append(
                f"resumed from ckpt-{r}, but the newest complete checkpoint is ckpt-{newest}"
            )
        else:
            trial.outcome = "resumed-newest" if event["outcome"] == "restored" else "fell-back"
        if any(v != [float(r), float(r)] for v in values.values()):
            bad.append(f"restored ckpt-{r}, but the variables hold {values}")
        if event["save_counter"] != r:
            bad.append(f"restored ckpt-{r}, but save_counter is {event['save_counter']}")
        facts = before.get(r)
        if facts is not None and event["tag"] != facts.tag:
            bad.append(f"restored ckpt-{r}, but its tag is not the one on disk")
        if event["consumed"] != "ok":
            bad.append(f"assert_consumed() failed: {event['consumed']}")

    def _check_save(
        self,
        trial: Trial,
        saved: dict[str, Any],
        before: dict[int, Facts],
        after: dict[int, Facts],
        newest: int | None,
    ) -> None:
        bad = trial.violations
        s = saved["step"]
        if not saved["path"] or not saved["path"].endswith(f"/{CHECKPOINT_NAME}-{s}"):
            bad.append(f"save() returned {saved['path']!r} for the values of step {s}")
        facts = after.get(s)
        if facts is None or facts.status != "complete" or facts.tag != saved["tag"]:
            bad.append(f"the resumed run's ckpt-{s} is not complete: {facts}")
        complete_after = {k: f for k, f in after.items() if f.status == "complete"}
        trial.complete_after = sorted(complete_after)
        protected = set(sorted(before)[-(MAX_TO_KEEP - 1) :])
        if trial.restored is not None:
            protected |= {k for k in before if k >= trial.restored}
        for k, old in sorted(before.items()):
            new = complete_after.get(k)
            if new is None:
                if k in protected:
                    bad.append(f"the resumed run deleted the complete ckpt-{k}")
            elif new.hashes != old.hashes:
                bad.append(f"the resumed run overwrote the complete ckpt-{k}")
        latest, _listed = _state_paths(self.chain_dir)
        if latest != f"{CHECKPOINT_NAME}-{s}":
            bad.append(f"after the save the state file names {latest}, not ckpt-{s}")
        trial.leftovers_after = _leftovers(self.chain_dir, complete_after.values())
        bad.extend(metadata_findings(self.chain_dir, complete_after))
        if facts is not None and not os.path.exists(
            os.path.join(self.chain_dir, f"{CHECKPOINT_NAME}-{s}{METADATA_SUFFIX}")
        ):
            bad.append(f"the resumed run's ckpt-{s} has no metadata file after save() returned")
        if trial.cleanup_temp:
            # Each leftover is reported once, by the first cleanup_temp=True save it survives.
            fresh = [
                x
                for x in trial.leftovers_after
                if x not in self.reported and _leftover_prefix(x) not in self.listed_at_start
            ]
            self.reported.update(fresh)
            if fresh:
                bad.append(f"cleanup_temp=True left {fresh} after the save")
        else:
            # quarantine/ is where a cleanup_temp=False manager deliberately keeps files it
            # would otherwise write over; a later cleanup_temp=True manager leaves it alone.
            self.reported.update(x for x in trial.leftovers_after if x.startswith("quarantine/"))


def point_needs_strace(point: str) -> bool:
    """Whether `point` is injected with strace (a C++-level point of the save)."""
    return point in STRACE_POINTS


def run(
    kills: int,
    size_mb: float,
    seed: int,
    workdir: str | os.PathLike[str],
    *,
    points: Sequence[str] | None = None,
    cleanup: Sequence[bool] | None = None,
    chain_length: int = 8,
    log: Any = None,
) -> Summary:
    """Kill a training process `kills` times and check every resume; see the module doc.

    Args:
        kills: How many kills (trials).
        size_mb: Model size in MiB (the checkpoint's data shard is about this big).
        seed: Seeds the schedule, the random delays and the children's cleanup options.
        workdir: An existing directory for the checkpoint directories and the child logs.
        points: The kill point of each trial (`POINTS` names or ``"random"``); by default
            every other kill is random and the others cycle through `POINTS`. Points that
            need strace are skipped (recorded in ``skipped_points``) when it is unavailable.
        cleanup: The resuming process's ``cleanup_temp`` for each trial (cycled); by
            default it alternates between the kills at each point.
        chain_length: Kills per checkpoint directory before starting over in an empty one.
        log: A callable for progress lines (default: silent).

    Returns:
        The `Summary`.
    """
    say = log or (lambda _line: None)
    have_strace = strace_available()
    plan = list(points) if points is not None else schedule(kills, seed, have_strace)
    plan = plan[:kills]
    unknown = [p for p in plan if p != RANDOM and p not in POINTS]
    if unknown:
        raise ValueError(f"unknown kill points {unknown}; choose from {[*POINTS, RANDOM]}")
    summary = Summary(kills, size_mb, seed, str(workdir), have_strace)
    if not have_strace:
        summary.skipped_points = sorted({p for p in plan if point_needs_strace(p)})
        plan = [p for p in plan if not point_needs_strace(p)]
    flags = list(cleanup) if cleanup else cleanup_flags(plan, seed)
    harness = _Harness(size_mb, seed, Path(workdir), chain_length, summary, say)
    started = time.monotonic()
    try:
        for i, point in enumerate(plan):
            trial = harness.trial(i, point, flags[i % len(flags)])
            summary.trials.append(trial)
            say(
                f"[{i + 1}/{len(plan)}] {point:<17} landed={trial.landed:<17} "
                f"complete={trial.complete_before} -> {trial.restore_outcome} "
                f"ckpt-{trial.restored} saved ckpt-{trial.saved} cleanup={trial.cleanup_temp} "
                f"{trial.outcome} {'; '.join(trial.violations + trial.errors)}"
            )
    finally:
        harness.close()
        summary.seconds = time.monotonic() - started
    return summary


def main(argv: list[str] | None = None) -> int:
    """The ``python -m stress.crash`` command line."""
    parser = argparse.ArgumentParser(
        prog="python -m stress.crash", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kills", type=int, default=200, help="number of kills (default 200)")
    parser.add_argument("--size-mb", type=float, default=200, help="model size in MiB (200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
    parser.add_argument("--workdir", help="where to work (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--points", help="comma-separated kill points to cycle instead of the default schedule"
    )
    parser.add_argument("--chain-length", type=int, default=8, help="kills per directory (8)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="safeckpt-crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    points = None
    if args.points:
        cycle = [p.strip() for p in args.points.split(",") if p.strip()]
        points = [cycle[i % len(cycle)] for i in range(args.kills)]

    def say(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    say(f"work directory: {workdir}")
    summary = run(
        args.kills,
        args.size_mb,
        args.seed,
        workdir,
        points=points,
        chain_length=args.chain_length,
        log=say,
    )
    print(summary.table())
    if args.json:
        Path(args.json).write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    if summary.ok and not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"work directory kept: {workdir}")
    if summary.violations:
        return 1
    return 2 if summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
