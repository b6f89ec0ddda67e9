"""The writer lease: who saves checkpoints of one name into a directory, and the second writer.

The manager that saves holds a small file, ``<directory>/.safeckpt-writer-<checkpoint_name>``
(`Holder`, JSON): its host, process id and start time, a unique writer id, its last save.
Before each save it reads the file and `judge` decides (docs/fallback.md, "Two writers"):

1. No lease, or an unreadable one: take it.
2. Our own: keep it (refresh it).
3. Another writer's in this very process (an earlier manager): take it over.
4. Another writer's on this host (same host name, boot and process namespace): live while its
   process runs with the recorded start time; else take it over, with a warning.
5. Another writer's on another host: live when the lease changed after this manager first
   saw it (the other writer saved while this one ran) and has not stayed unchanged for
   `STALE_SECONDS` since (by this manager's clock); else take it over, with a warning. A
   preempted job that restarts on another host within minutes finds its old lease unchanged
   and takes it over; the old job, should it come back, finds the new lease at its next save
   and is refused.

A live other writer makes the save raise `ConcurrentWriterError` before anything is written.
Locally the file is replaced atomically (a new file created with ``O_EXCL``, then renamed) at
every save and read back. On ``gs://`` there is no atomic create-if-absent through
``tf.io.gfile``: the lease is read before every save (one request) and written only when it
changes hands or is older than `REMOTE_REFRESH_SECONDS`; it is read (and judged) only then
too, so that a save costs the requests of TensorFlow's save. A second writer that takes the
lease over is therefore refused at its own next check, but the first one finds out only at
its next refresh, up to `REMOTE_REFRESH_SECONDS` later; two writers that check in the same
instant can both go ahead (best effort).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from safeckpt._causes import Cause, Vocabulary
from safeckpt._diagnosis import Diagnosis
from safeckpt._format.layout import LEASE_PREFIX
from safeckpt._io import fs
from safeckpt._io.errors import io_errors, not_found
from safeckpt._io.tf import tf

if TYPE_CHECKING:
    from safeckpt._errors import ConcurrentWriterError

logger = logging.getLogger("safeckpt")

#: A lease another host's writer refreshed after this manager started, and that then stayed
#: unchanged this long (seconds, by this manager's clock), is taken over.
STALE_SECONDS = 900.0
#: On remote storage the holder rewrites its lease only when it is older than this.
REMOTE_REFRESH_SECONDS = STALE_SECONDS / 5
_FORMAT = "safeckpt-writer-lease/1"
_MAX_BYTES = 1 << 16


def lease_name(checkpoint_name: str) -> str:
    """The lease file's name for `checkpoint_name`."""
    return LEASE_PREFIX + checkpoint_name


@dataclass(frozen=True)
class Holder:
    """What a lease file says about the writer that holds it.

    Attributes:
        writer: A unique id of the manager (a new one per `SafeCheckpointManager`).
        host: The host name.
        machine: The boot id and process namespace (``""`` where unknown): with the host
            name, what makes two processes "on the same host".
        pid: The process id.
        started: The process's start time in clock ticks since boot (``""`` where unknown),
            so that a reused process id is not taken for the old process.
        step: The step of its last save (None when unknown).
        saved: When it last wrote the lease (seconds since the epoch, its own clock).
    """

    writer: str
    host: str
    machine: str
    pid: int
    started: str
    step: int | None = None
    saved: float = 0.0

    def to_bytes(self) -> bytes:
        """The file's content."""
        return json.dumps({"format": _FORMAT, **asdict(self)}, sort_keys=True).encode()

    @classmethod
    def parse(cls, raw: bytes) -> Holder | None:
        """The holder a file's bytes describe, or None when they describe none."""
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.pop("format", None) != _FORMAT:
                return None
            holder = cls(**data)
        except (ValueError, TypeError, UnicodeDecodeError):
            return None
        texts = (holder.writer, holder.host, holder.machine, holder.started)
        numbers = (holder.pid, 0 if holder.step is None else holder.step, holder.saved)
        if not all(isinstance(f, str) for f in texts) or isinstance(holder.pid, bool):
            return None
        if not all(isinstance(n, (int, float)) for n in numbers) or not isinstance(holder.pid, int):
            return None
        return holder

    def same_process(self, other: Holder) -> bool:
        """Whether `other` is the same process (host, machine, pid and start time)."""
        return self.same_host(other) and (self.pid, self.started) == (other.pid, other.started)

    def same_host(self, other: Holder) -> bool:
        """Whether `other` runs on this host (the name, and the boot and namespace if known)."""
        return (self.host, self.machine) == (other.host, other.machine)

    def describe(self) -> str:
        """``host <h>, pid <p>, last save step <n> at <time>``."""
        try:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.saved))
        except (OverflowError, OSError, ValueError):
            when = "?"
        step = "?" if self.step is None else self.step
        return f"host {self.host}, pid {self.pid}, last save step {step} at {when}"


def _read_text(path: str, limit: int = 4096) -> str:
    try:
        with open(path, "rb") as handle:  # bytes: no codec lookup (it can fail as nobody)
            return handle.read(limit).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """A process's start time in clock ticks since boot (``/proc/<pid>/stat``), or ``""``."""
    text = _read_text(f"/proc/{pid}/stat")
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces
    return fields[19] if len(fields) > 19 else ""


def _machine() -> str:
    boot = _read_text("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{boot}/{namespace}" if boot or namespace else ""


def new_holder() -> Holder:
    """This process, as a new writer (a fresh writer id)."""
    pid = os.getpid()
    return Holder(uuid.uuid4().hex, socket.gethostname(), _machine(), pid, process_start(pid))


def process_alive(holder: Holder) -> bool:
    """Whether `holder`'s process runs on this host (its pid, with its start time if known)."""
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    started = process_start(holder.pid)
    return not holder.started or not started or started == holder.started


class Verdict(Vocabulary):
    """What a save does about the lease it found."""

    TAKE = "take"
    """No lease (or an unreadable one): write ours."""
    KEEP = "keep"
    """Ours: refresh it."""
    TAKE_OVER = "take_over"
    """Another writer's that is not live: write ours, with a warning."""
    REFUSE = "refuse"
    """Another live writer's: raise, write nothing."""


@dataclass(frozen=True)
class Decision:
    """A `Verdict` and why (the reason names how liveness was judged)."""

    verdict: Verdict
    reason: str = ""


def judge(
    found: Holder | None,
    me: Holder,
    first_seen: Holder | None,
    unchanged_for: float,
    alive: bool | None,
) -> Decision:
    """The lease rule (see the module docstring), as a pure function.

    Args:
        found: The lease now (None: none, or unreadable).
        me: This manager as a holder.
        first_seen: The lease when this manager first looked (None: there was none).
        unchanged_for: Seconds (this manager's clock) since it first saw `found` as it is.
        alive: Whether `found`'s process runs (asked only on the same host; else None).
    """
    if found is None:
        return Decision(Verdict.TAKE)
    if found.writer == me.writer:
        return Decision(Verdict.KEEP)
    if me.same_process(found):
        return Decision(Verdict.TAKE_OVER, "another manager of this process held it")
    if me.same_host(found):
        if alive:
            return Decision(Verdict.REFUSE, "its process is running on this host")
        return Decision(Verdict.TAKE_OVER, "its process is gone")
    if found == first_seen:
        return Decision(
            Verdict.TAKE_OVER,
            "it has not saved since this manager started (a job that ended or was preempted)",
        )
    if unchanged_for > STALE_SECONDS:
        return Decision(Verdict.TAKE_OVER, f"it has not saved for more than {STALE_SECONDS:.0f} s")
    return Decision(Verdict.REFUSE, "it saved on another host after this manager started")


def conflict_error(directory: str, name: str, holder: Holder, reason: str) -> ConcurrentWriterError:
    """The error of a save refused because `holder` writes here too."""
    path = fs.join(directory, lease_name(name))
    diagnosis = Diagnosis(
        Cause.CONCURRENT_WRITER,
        f"Another writer saves checkpoints named {name!r} into this directory: "
        f"{holder.describe()}.",
        directory,
        evidence=(f"{path} is held by writer {holder.writer}: {holder.describe()}; {reason}.",),
        suggestions=(
            "Stop one of the two jobs, or give each its own directory or checkpoint_name.",
            "If that writer is gone for good, its lease is taken over once its process is "
            f"gone (same host) or it has not saved for {STALE_SECONDS:.0f} s; "
            "writer_lease=False turns this check off.",
        ),
    )
    from safeckpt._errors import ConcurrentWriterError  # imports TensorFlow: only to raise

    return ConcurrentWriterError(f"Nothing was saved: {diagnosis}", diagnosis)


class WriterLease:
    """One manager's lease on (directory, checkpoint name): read, judged, written per save."""

    def __init__(self, directory: str, checkpoint_name: str) -> None:
        self.directory = directory
        self.name = checkpoint_name
        self.path = fs.join(directory, lease_name(checkpoint_name))
        self.me = new_holder()
        self._first_seen: Holder | None = None
        self._looked = False
        self._last: tuple[Holder | None, float] = (None, time.monotonic())
        self._written: Holder | None = None

    def first_look(self, present: bool) -> None:
        """Remember the lease as it is when this manager is first used (`present`: listed)."""
        if self._looked:
            return
        self._looked = True
        self._first_seen = self.read() if present else None
        self._last = (self._first_seen, time.monotonic())

    def read(self) -> Holder | None:
        """The lease now (None: none or unreadable; a storage failure raises)."""
        try:
            if fs.scheme_of(self.path) is None:
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
                try:
                    raw = os.read(fd, _MAX_BYTES)
                finally:
                    os.close(fd)
            else:
                with tf.io.gfile.GFile(self.path, "rb") as handle:
                    raw = handle.read(_MAX_BYTES)
        except not_found(IsADirectoryError):
            return None
        return Holder.parse(bytes(raw))

    def due(self) -> bool:
        """Whether the next save reads (and judges) the lease.

        Always locally; on ``gs://`` only before this manager's first write of it and once
        that write is `REMOTE_REFRESH_SECONDS` old, so that a save costs TensorFlow's
        requests and no more.
        """
        if self._written is None or fs.scheme_of(self.path) != "gs":
            return True
        return time.time() - self._written.saved >= REMOTE_REFRESH_SECONDS

    def check(self) -> Decision:
        """Judge the lease before a save; raise `ConcurrentWriterError` for a live writer."""
        if not self.due():
            return Decision(Verdict.KEEP, "held, and read again once it is due")
        self.first_look(present=True)
        found = self.read()
        if found != self._last[0]:
            self._last = (found, time.monotonic())
        alive = process_alive(found) if found is not None and self.me.same_host(found) else None
        decision = judge(found, self.me, self._first_seen, time.monotonic() - self._last[1], alive)
        if decision.verdict is Verdict.REFUSE:
            assert found is not None
            raise conflict_error(self.directory, self.name, found, decision.reason)
        if decision.verdict is Verdict.TAKE_OVER:
            assert found is not None
            ours = self.me.same_process(found)
            logger.log(
                logging.INFO if ours else logging.WARNING,
                "Taking over the writer lease of %s (checkpoint_name=%r) from writer %s, %s: %s.%s",
                self.directory,
                self.name,
                found.writer,
                found.describe(),
                decision.reason,
                "" if ours else " If it is still running, its next save will be refused.",
            )
        return decision

    def write(self, decision: Decision, step: int | None) -> None:
        """Hold the lease for a save of `step` (on remote storage only when due)."""
        mine = replace(self.me, step=step, saved=time.time())
        due = self._written is None or mine.saved - self._written.saved >= REMOTE_REFRESH_SECONDS
        if decision.verdict is Verdict.KEEP and fs.scheme_of(self.path) == "gs" and not due:
            return
        _write(self.path, mine.to_bytes())
        self._written = mine
        self._last = (mine, time.monotonic())
        if fs.scheme_of(self.path) is None:
            found = self.read()  # another process that renamed its lease in the same instant
            if (
                found is not None
                and found.writer != self.me.writer
                and not self.me.same_process(found)
            ):
                raise conflict_error(
                    self.directory, self.name, found, "it took the lease in the same instant"
                )


def _write(path: str, data: bytes) -> None:
    """Replace `path` with `data`: atomically where the storage can (a new file, renamed)."""
    scheme = fs.scheme_of(path)
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    if scheme is None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            fd = os.open(temporary, flags, 0o644)
        except FileNotFoundError:  # removed since construction: TF's save creates it too
            tf.io.gfile.makedirs(fs.dirname(path))
            fd = os.open(temporary, flags, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        try:
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    elif scheme == "gs":  # one object upload is atomic; a rename would copy and delete
        with tf.io.gfile.GFile(path, "wb") as handle:
            handle.write(data)
    else:  # ram:// appends to an existing file: write a new one and rename it
        with tf.io.gfile.GFile(temporary, "wb") as handle:
            handle.write(data)
        tf.io.gfile.rename(temporary, path, overwrite=True)


def lease_evidence(directory: str, names: tuple[str, ...]) -> list[str]:
    """What the lease files among `names` say (for a diagnosis), one line each."""
    lines = []
    for name in names:
        if not name.startswith(LEASE_PREFIX) or ".tmp-" in name:
            continue
        lease = WriterLease(directory, name[len(LEASE_PREFIX) :])
        try:
            holder = lease.read()
        except io_errors():
            holder = None
        if holder is not None:
            lines.append(
                f"{lease.path}: checkpoints named {lease.name!r} are written by "
                f"{holder.describe()}."
            )
    return lines
