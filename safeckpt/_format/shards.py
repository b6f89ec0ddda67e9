"""Streaming verification of a checkpoint's data shards against its index (CRC32C).

Remote shards are read through `tf.io.gfile`, so ``ram://`` and ``gs://`` prefixes work. Local
data shards are streamed with plain ``readinto`` into reused buffers (``GFile.read`` allocates
every chunk anew and reads at a fifth of the disk's speed), with a reader thread overlapping
I/O and CRC for large ranges.
"""

from __future__ import annotations

import io
import math
import os
import queue
import struct
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from safeckpt._causes import Cause
from safeckpt._format.crc32c import crc32c, unmask
from safeckpt._format.index import BundleEntry, BundleIndex
from safeckpt._io import fs, safeio
from safeckpt._io.errors import io_errors, not_found, out_of_range
from safeckpt._io.tf import tf
from safeckpt._io.translate import cause_of

__all__ = ["DataProblem", "DataProblemKind", "read_string_scalar", "verify_data"]

_DT_STRING, _DT_VARIANT = 7, 21
_CHUNK = 8 * 1024 * 1024
_SCRATCH = 1024 * 1024  # reused read buffers of the local fast path; stay in the L2 cache
_PIPELINE = 8 * _SCRATCH  # from this size on, a reader thread overlaps reads and CRC32C

#: What is wrong with the data of one tensor (or of a whole shard, for ``missing_shard``).
#: ``unreadable`` is a permission refused; ``unavailable`` a read the storage failed (a
#: dropped connection, a 5xx answer, a timeout), which says nothing about the bytes.
DataProblemKind = Literal[
    "missing_shard",
    "truncated",
    "checksum_mismatch",
    "unreadable",
    "unavailable",
    "not_a_regular_file",
]


@dataclass(frozen=True)
class DataProblem:
    """Something wrong with the tensor data found by `verify_data`."""

    key_name: str  # "" for a problem with a whole shard
    shard_file: str
    kind: DataProblemKind
    detail: str


class _Stream:
    """Sequential reader of one entry's byte range, at most `_CHUNK` bytes per read."""

    def __init__(self, f: Any, entry: BundleEntry, tick: Callable[[int], None]) -> None:
        if f.tell() != entry.offset:
            f.seek(entry.offset)
        self._f, self._left, self._tick = f, entry.size, tick
        self._buf, self._pos = b"", 0
        self._scratch: memoryview | None = getattr(f, "scratch", None)

    def remaining(self) -> int:
        return len(self._buf) - self._pos + self._left

    def take(self, n: int) -> bytes:
        if n > self.remaining():
            raise ValueError(f"content overruns the entry's size by {n - self.remaining()} bytes")
        while len(self._buf) - self._pos < n:
            want = min(_CHUNK, self._left)
            data = bytes(self._f.read(want))
            if len(data) != want:
                raise EOFError(f"shard ended {want - len(data)} bytes early")
            self._buf, self._pos, self._left = self._buf[self._pos :] + data, 0, self._left - want
            self._tick(want)
        self._pos += n
        return self._buf[self._pos - n : self._pos]

    def varint(self) -> int:
        value = shift = 0
        while shift < 64:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise ValueError("varint longer than 10 bytes")

    def feed(self, n: int, crc: int) -> int:
        """Consumes `n` bytes, returning `crc` extended over them."""
        scratch = self._scratch
        if scratch is not None:
            while n and self._pos < len(self._buf):  # bytes already buffered by take()
                piece = self.take(min(n, len(self._buf) - self._pos))
                crc, n = crc32c(piece, crc), n - len(piece)
            if n > self._left:
                raise ValueError(f"content overruns the entry's size by {n - self._left} bytes")
            if n >= _PIPELINE:
                return self._pipelined(n, crc)
            while n:  # straight from the file into the reused buffer: no allocation, no copy
                want = min(n, len(scratch))
                got = self._f.readinto(scratch[:want])
                if got != want:
                    raise EOFError(f"shard ended {want - (got or 0)} bytes early")
                crc, n, self._left = crc32c(scratch[:want], crc), n - want, self._left - want
                self._tick(want)
            return crc
        while n:
            piece = self.take(min(n, _CHUNK))
            crc, n = crc32c(piece, crc), n - len(piece)
        return crc

    def _pipelined(self, n: int, crc: int) -> int:
        """`feed` for large ranges: a thread reads the next buffers while this one checksums."""
        free: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
        full: queue.SimpleQueue[tuple[memoryview, int, int] | BaseException] = queue.SimpleQueue()
        for view in self._f.buffers:
            free.put(view)

        def reader(todo: int) -> None:
            try:
                while todo:
                    view = free.get()
                    if view is None:
                        return
                    want = min(todo, len(view))
                    got = self._f.readinto(view[:want])
                    full.put((view, got, want))
                    if got != want:
                        return
                    todo -= want
            except BaseException as exc:  # handed to the consumer, raised there
                full.put(exc)

        thread = threading.Thread(target=reader, args=(n,), daemon=True)
        thread.start()
        try:
            while n:
                item = full.get()
                if isinstance(item, BaseException):
                    raise item
                view, got, want = item
                if got != want:
                    raise EOFError(f"shard ended {want - got} bytes early")
                crc, n, self._left = crc32c(view[:want], crc), n - want, self._left - want
                self._tick(want)
                free.put(view)
        finally:
            free.put(None)
            thread.join()
        return crc


def _content_crc(s: _Stream, entry: BundleEntry, fmt: str) -> int:
    """Recomputes an entry's CRC32C the way ``tensor_bundle.cc`` wrote it."""
    if entry.dtype not in (_DT_STRING, _DT_VARIANT) or entry.size == 0:
        return s.feed(entry.size, 0)
    count = math.prod(entry.shape)
    if count > entry.size:
        raise ValueError(f"{count} elements cannot fit in {entry.size} bytes")
    crc = 0
    if entry.dtype == _DT_VARIANT:  # per element: varint len, bytes, masked crc so far
        for i in range(count):
            n = _length(s, entry)
            crc = s.feed(n, crc32c(struct.pack(fmt + "Q", n), crc))
            raw = s.take(4)
            if unmask(struct.unpack(fmt + "I", raw)[0]) != crc:
                raise ValueError(f"checksum after variant element {i} does not match")
            crc = crc32c(raw, crc)
    else:  # varint lengths, masked crc of lengths, string bytes
        lengths = [_length(s, entry) for _ in range(count)]
        packed = [struct.pack(fmt + ("I" if n <= 0xFFFFFFFF else "Q"), n) for n in lengths]
        crc = crc32c(b"".join(packed))
        raw = s.take(4)
        if unmask(struct.unpack(fmt + "I", raw)[0]) != crc:
            raise ValueError("the checksum of the string lengths does not match")
        crc = s.feed(sum(lengths), crc32c(raw, crc))
    if s.remaining():
        raise ValueError(f"{s.remaining()} bytes left over after the last element")
    return crc


def _length(s: _Stream, entry: BundleEntry) -> int:
    """An element's length; never more than the entry's size (so it fits its 64-bit field)."""
    n = s.varint()
    if n > entry.size:
        raise ValueError(f"an element length of {n} bytes overruns the entry's {entry.size}")
    return n


def verify_data(
    prefix: str, index: BundleIndex, *, progress: Callable[[int, int], None] | None = None
) -> list[DataProblem]:
    """Re-reads every tensor's bytes from the data shards and checks its stored CRC32C.

    Shards are ``<prefix>.data-NNNNN-of-MMMMM``, read in offset order, one open file each,
    at most 8 MiB at a time. String and variant tensors are checksummed the way
    ``tensor_bundle.cc`` writes them (lengths as fixed-width integers, embedded checksums).

    Args:
        prefix: The checkpoint prefix (any `tf.io.gfile` URI).
        index: The checkpoint's parsed index, from `read_index`.
        progress: Called as ``progress(bytes_done, bytes_total)`` after each chunk.

    Returns:
        Every problem found; empty when all data is intact. A missing or unreadable shard
        is reported once (``key_name`` is "" or the tensor being read).
    """
    todo = [e for e in index.entries if not e.is_slice_container]
    meter = _Progress(sum(e.size for e in todo), progress)
    by_shard: dict[int, list[BundleEntry]] = defaultdict(list)
    for e in todo:
        by_shard[e.shard_id].append(e)
    problems: list[DataProblem] = []
    for shard in range(index.num_shards):
        entries = sorted(by_shard.pop(shard, ()), key=lambda e: e.offset)
        name = f"{prefix}.data-{shard:05d}-of-{index.num_shards:05d}"
        problems += _verify_shard(name, entries, ">" if index.big_endian else "<", meter)
    if meter.total == 0 and progress is not None:
        progress(0, 0)
    return problems


class _Progress:
    def __init__(self, total: int, callback: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self._callback = total, 0, callback

    def tick(self, n: int) -> None:
        self.done += n
        if self._callback is not None:
            self._callback(self.done, self.total)

    def settle(self, mark: int) -> None:
        """Counts bytes up to `mark` as done (skipped or partly read entries)."""
        if mark > self.done:
            self.tick(mark - self.done)


class _LocalShard:
    """A local data shard read without `tf.io.gfile` (which allocates every chunk anew)."""

    def __init__(self, name: str) -> None:
        self._f = safeio.open_read(name, buffered=False)  # a regular file only
        size = min(_SCRATCH, _CHUNK)  # progress is reported at most every _CHUNK bytes
        self.buffers = [memoryview(bytearray(size)) for _ in range(3)]
        self.scratch = self.buffers[0]

    def __enter__(self) -> _LocalShard:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def size(self) -> int:
        return os.fstat(self._f.fileno()).st_size

    def tell(self) -> int:
        return int(self._f.tell())

    def seek(self, offset: int) -> None:
        self._f.seek(offset)

    def read(self, n: int) -> bytes:
        return self._f.read(n) or b""

    def readinto(self, view: memoryview) -> int:
        return self._f.readinto(view) or 0


def _open_shard(name: str) -> Any:
    """Local shards through `_LocalShard` (regular files only); URIs through `tf.io.gfile`.

    Raises:
        tf.errors.NotFoundError: The shard does not exist.
        NotRegularFileError, IsADirectoryError: It is not a regular file (local).
        tf.errors.OpError, OSError: It cannot be opened.
    """
    if fs.local_path(name) is not None:
        return _LocalShard(name)
    return tf.io.gfile.GFile(name, "rb")


def _verify_shard(
    name: str, entries: list[BundleEntry], fmt: str, meter: _Progress
) -> list[DataProblem]:
    """Checks the entries of one data shard (sorted by offset)."""
    out: list[DataProblem] = []
    mark, end_mark, current = meter.done, meter.done + sum(e.size for e in entries), ""
    try:
        with _open_shard(name) as f:
            size = f.size()
            for e in entries:
                current, span = e.name, f"bytes {e.offset}..{e.offset + e.size}"
                try:
                    if e.offset + e.size > size:
                        raise EOFError(f"the shard has only {size} bytes")
                    crc = _content_crc(_Stream(f, e, meter.tick), e, fmt)
                    if crc != unmask(e.crc32c):
                        raise ValueError(f"CRC32C {crc:#010x}, index says {unmask(e.crc32c):#010x}")
                except EOFError as exc:
                    out.append(DataProblem(e.name, name, "truncated", f"{span}: {exc}"))
                except ValueError as exc:
                    out.append(DataProblem(e.name, name, "checksum_mismatch", f"{span}: {exc}"))
                mark += e.size
                meter.settle(mark)
    except not_found():
        detail = f"missing; it should hold {len(entries)} tensors ({end_mark - mark} bytes)"
        out.append(DataProblem("", name, "missing_shard", detail))
    except out_of_range() as exc:  # the storage answered: the bytes end early
        out.append(DataProblem(current, name, "truncated", f"{type(exc).__name__}: {exc}"))
    except io_errors() as exc:
        kinds: dict[Cause, DataProblemKind] = {
            Cause.PERMISSION_DENIED: "unreadable",
            Cause.NOT_A_REGULAR_FILE: "not_a_regular_file",
            Cause.NOT_A_DIRECTORY: "missing_shard",  # "Is a directory": no data file there
        }
        kind = kinds.get(cause_of(exc), "unavailable")
        out.append(DataProblem(current, name, kind, f"{type(exc).__name__}: {exc}"))
    meter.settle(end_mark)
    return out


def read_string_scalar(prefix: str, index: BundleIndex, entry: BundleEntry) -> bytes:
    """The value of a scalar string tensor (the object graph), checked against its CRC32C.

    One read of the entry's bytes (a single ranged request on remote storage up to 8 MiB).

    Raises:
        ValueError: The bytes do not hold a scalar string, or their checksum does not match.
        EOFError: The shard ends before the entry.
        tf.errors.OpError, OSError: The shard cannot be read.
    """
    if entry.dtype != _DT_STRING or entry.shape != () or entry.is_slice_container:
        raise ValueError(f"{entry.name!r} is not a scalar string tensor")
    name = f"{prefix}.data-{entry.shard_id:05d}-of-{index.num_shards:05d}"
    chunks: list[bytes] = []
    with _open_shard(name) as f:
        f.seek(entry.offset)
        left = entry.size
        while left:  # in pieces: memory grows with the bytes there, not with a claimed size
            want = min(left, _CHUNK)
            piece = bytes(f.read(want))
            chunks.append(piece)
            left -= len(piece)
            if len(piece) < want:
                break
    raw = b"".join(chunks)
    if len(raw) != entry.size:
        raise EOFError(
            f"{name} ends {entry.size - len(raw)} bytes before the end of {entry.name!r}"
        )
    fmt = ">" if index.big_endian else "<"
    local = BundleEntry(entry.key, entry.dtype, (), 0, 0, entry.size, entry.crc32c, False)
    stream = _Stream(io.BytesIO(raw), local, lambda _: None)
    if _content_crc(stream, local, fmt) != unmask(entry.crc32c):
        raise ValueError(f"the checksum of {entry.name!r} does not match")
    again = _Stream(io.BytesIO(raw), local, lambda _: None)
    length = again.varint()
    again.take(4)  # the masked checksum of the length
    return again.take(length)
