"""Reads a checkpoint's ``<prefix>.index`` in pure Python and re-checks tensor data CRCs.

The index is TensorFlow's LevelDB-style table (``tsl/lib/io/table``), always uncompressed for
bundles: data blocks of prefix-compressed ``(key, value)`` entries with a restart array, each
block followed by a 5-byte trailer (type byte, masked CRC32C of block + type), an index block of
``BlockHandle``s, an empty meta-index block and a 48-byte footer ending in a magic number. Key
``""`` holds a ``BundleHeaderProto``, every other key a ``BundleEntryProto``.
Indexes and remote shards are read through `tf.io.gfile`, so ``ram://`` and ``gs://``
prefixes work. Local data shards are streamed with plain ``readinto`` into reused buffers
(``GFile.read`` allocates every chunk anew and reads at a fifth of the disk's speed), with a
reader thread overlapping I/O and CRC for large ranges.
"""

from __future__ import annotations

import itertools
import math
import os
import queue
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import tensor_bundle_pb2

from safeckpt import _paths
from safeckpt._crc32c import crc32c, unmask
from safeckpt._tf import tf

__all__ = [
    "BundleEntry",
    "BundleIndex",
    "DataProblem",
    "IndexFormatError",
    "read_index",
    "verify_data",
]

_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48  # two BlockHandles padded to 40 bytes + 8-byte magic
_TRAILER = 5  # compression type + masked CRC32C
_DT_STRING, _DT_VARIANT = 7, 21
_CHUNK = 8 * 1024 * 1024
_SCRATCH = 1024 * 1024  # reused read buffers of the local fast path; stay in the L2 cache
_PIPELINE = 8 * _SCRATCH  # from this size on, a reader thread overlaps reads and CRC32C
_MAX_SHARDS = 1 << 20  # sanity bound: verify_data stats every shard


class IndexFormatError(Exception):
    """A ``.index`` file that is not a valid tensor-bundle table.

    Attributes:
        path: The file that was read.
        reason: One of ``"too_short"``, ``"bad_magic"``, ``"block_checksum"``, ``"malformed"``,
            ``"unreadable"``.
        detail: What exactly is wrong, with byte offsets where they help.
    """

    def __init__(self, path: str, reason: str, detail: str) -> None:
        super().__init__(path, reason, detail)
        self.path, self.reason, self.detail = path, reason, detail

    def __str__(self) -> str:
        return f"bad checkpoint index {self.path} ({self.reason}): {self.detail}"


def _bad(reason: str, detail: str) -> IndexFormatError:
    return IndexFormatError("", reason, detail)  # read_index fills in the path


@dataclass(frozen=True)
class BundleEntry:
    """One tensor (or tensor slice) listed in the index."""

    key: bytes
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked, as stored
    is_slice_container: bool  # lists `slices` and holds no data itself

    @property
    def name(self) -> str:
        """The key as text (slice keys embed binary ``TensorSliceProto`` bytes)."""
        return self.key.decode("utf-8", errors="backslashreplace")


@dataclass(frozen=True)
class BundleIndex:
    """The parsed contents of one ``<prefix>.index`` file."""

    path: str
    num_shards: int
    entries: tuple[BundleEntry, ...]
    size_bytes: int
    big_endian: bool = False

    def required_shard_sizes(self) -> dict[int, int]:
        """Returns, per shard id, the smallest data-file size holding all its entries' bytes."""
        sizes = dict.fromkeys(range(self.num_shards), 0)
        for e in self.entries:
            if not e.is_slice_container:
                sizes[e.shard_id] = max(sizes[e.shard_id], e.offset + e.size)
        return sizes


@dataclass(frozen=True)
class DataProblem:
    """Something wrong with the tensor data found by `verify_data`."""

    key_name: str  # "" for a problem with a whole shard
    shard_file: str
    kind: str  # missing_shard, truncated, checksum_mismatch, unreadable, unverifiable
    detail: str


def _varint(buf: bytes, pos: int, limit: int, max_bytes: int = 10) -> tuple[int, int]:
    value = 0
    for i in range(max_bytes):
        if pos >= limit:
            raise _bad("malformed", f"varint runs past byte {limit}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return value, pos
    raise _bad("malformed", f"varint longer than {max_bytes} bytes before byte {pos}")


def _read_items(data: bytes, handle: bytes, what: str) -> list[tuple[bytes, bytes]]:
    """Reads the block `handle` points at (checking bounds, CRC, type) and decodes it."""
    try:
        offset, pos = _varint(handle, 0, len(handle))
        size, _ = _varint(handle, pos, len(handle))
    except IndexFormatError as exc:
        raise _bad("malformed", f"{what}: bad block handle {handle.hex()}: {exc.detail}") from None
    end, stop = offset + size, len(data) - _FOOTER
    where = f"{what} at bytes {offset}..{end + _TRAILER}"
    if end + _TRAILER > stop:
        raise _bad("malformed", f"{where} runs past byte {stop}, where the footer starts")
    (stored,) = struct.unpack_from("<I", data, end + 1)
    actual = crc32c(memoryview(data)[offset : end + 1])
    if unmask(stored) != actual:
        detail = f"{where}: stored CRC32C {unmask(stored):#010x}, computed {actual:#010x}"
        raise _bad("block_checksum", detail)
    if data[end] != 0:
        raise _bad("malformed", f"{where} has compression type {data[end]}, not 0 (none)")
    return _block_items(data[offset:end], where)


def _block_items(block: bytes, where: str) -> list[tuple[bytes, bytes]]:
    """Decodes a block's prefix-compressed entries, checking the restart array."""
    if len(block) < 4:
        raise _bad("malformed", f"{where}: {len(block)} bytes is too small for a block")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 * (restarts + 1)
    if restarts == 0 or limit < 0:
        raise _bad("malformed", f"{where}: bad restart count {restarts}")
    items, fresh, key, pos = [], set(), b"", 0
    while pos < limit:
        start = pos
        shared, pos = _varint(block, pos, limit, 5)
        unshared, pos = _varint(block, pos, limit, 5)
        vlen, pos = _varint(block, pos, limit, 5)
        if shared > len(key) or pos + unshared + vlen > limit:
            raise _bad("malformed", f"{where}: entry at block byte {start} overruns")
        if shared == 0:
            fresh.add(start)
        key = key[:shared] + block[pos : pos + unshared]
        items.append((key, block[pos + unshared : pos + unshared + vlen]))
        pos += unshared + vlen
    offsets = struct.unpack_from(f"<{restarts}I", block, limit)
    if not fresh.issuperset(offsets) if items else offsets != (0,):
        raise _bad("malformed", f"{where}: restart array does not match the entries")
    return items


def _parse(path: str, data: bytes) -> BundleIndex:
    if len(data) < _FOOTER:
        raise _bad("too_short", f"{len(data)} bytes, less than the {_FOOTER}-byte footer")
    footer = data[-_FOOTER:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER - 8)
    if magic != _MAGIC:
        raise _bad("bad_magic", f"footer at byte {len(data) - _FOOTER} has magic {magic:#018x}")
    meta_end = _varint(footer, _varint(footer, 0, 40)[1], 40)[1]  # handle = 2 varints
    index_end = _varint(footer, _varint(footer, meta_end, 40)[1], 40)[1]
    _read_items(data, footer[:meta_end], "meta-index block")
    items: list[tuple[bytes, bytes]] = []
    for n, (separator, handle) in enumerate(
        _read_items(data, footer[meta_end:index_end], "index block")
    ):
        block = _read_items(data, handle, f"data block {n}")
        if block and block[-1][0] > separator:
            raise _bad("malformed", f"data block {n}: last key is past its index separator")
        items += block
    if any(a[0] >= b[0] for a, b in itertools.pairwise(items)):
        raise _bad("malformed", "keys are not strictly increasing")
    if not items or items[0][0] != b"":
        raise _bad("malformed", "no BundleHeaderProto under key ''")
    header = _proto(tensor_bundle_pb2.BundleHeaderProto, b"", items[0][1])
    if not 1 <= header.num_shards <= _MAX_SHARDS:
        raise _bad("malformed", f"header says num_shards={header.num_shards}")
    return BundleIndex(
        path=path,
        num_shards=header.num_shards,
        entries=tuple(_entry(key, value, header.num_shards) for key, value in items[1:]),
        size_bytes=len(data),
        big_endian=header.endianness == tensor_bundle_pb2.BundleHeaderProto.BIG,
    )


def _proto(cls: Any, key: bytes, value: bytes) -> Any:
    try:
        return cls.FromString(value)
    except DecodeError as exc:
        raise _bad("malformed", f"value of key {key!r} is not a {cls.__name__}: {exc}") from None


def _entry(key: bytes, value: bytes, num_shards: int) -> BundleEntry:
    proto = _proto(tensor_bundle_pb2.BundleEntryProto, key, value)
    shape = tuple(d.size for d in proto.shape.dim)
    entry = BundleEntry(key, proto.dtype, shape, proto.shard_id, proto.offset, proto.size,
                        proto.crc32c, is_slice_container=len(proto.slices) > 0)  # fmt: skip
    if min(entry.offset, entry.size, *shape) < 0 or not 0 <= entry.shard_id < num_shards:
        detail = f"shard {entry.shard_id}, offset {entry.offset}, size {entry.size}, shape {shape}"
        raise _bad("malformed", f"entry {entry.name!r} has impossible values: {detail}")
    return entry


def read_index(path: str) -> BundleIndex:
    """Reads and validates ``<prefix>.index``, checking every block's CRC32C.

    Args:
        path: The index file (``<prefix>.index``); any `tf.io.gfile` URI.

    Returns:
        The header and all tensor entries, in key order.

    Raises:
        IndexFormatError: The file is unreadable or not a valid tensor-bundle index.
        tf.errors.NotFoundError: The file does not exist.
    """
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = bytes(f.read())
    except tf.errors.NotFoundError:
        raise
    except (tf.errors.OpError, OSError) as exc:
        raise IndexFormatError(path, "unreadable", f"cannot read it: {exc}") from exc
    try:
        return _parse(path, data)
    except IndexFormatError as exc:
        raise IndexFormatError(path, exc.reason, exc.detail) from None
    except (IndexError, ValueError, struct.error, OverflowError) as exc:  # defensive
        raise IndexFormatError(path, "malformed", f"{type(exc).__name__}: {exc}") from exc


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
            n = s.varint()
            crc = s.feed(n, crc32c(struct.pack(fmt + "Q", n), crc))
            raw = s.take(4)
            if unmask(struct.unpack(fmt + "I", raw)[0]) != crc:
                raise ValueError(f"checksum after variant element {i} does not match")
            crc = crc32c(raw, crc)
    else:  # varint lengths, masked crc of lengths, string bytes
        lengths = [s.varint() for _ in range(count)]
        packed = [struct.pack(fmt + ("I" if n <= 0xFFFFFFFF else "Q"), n) for n in lengths]
        crc = crc32c(b"".join(packed))
        raw = s.take(4)
        if unmask(struct.unpack(fmt + "I", raw)[0]) != crc:
            raise ValueError("the checksum of the string lengths does not match")
        crc = s.feed(sum(lengths), crc32c(raw, crc))
    if s.remaining():
        raise ValueError(f"{s.remaining()} bytes left over after the last element")
    return crc


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
    problems: list[DataProblem] = []
    for shard in range(index.num_shards):
        entries = sorted((e for e in todo if e.shard_id == shard), key=lambda e: e.offset)
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
        self._f = open(name, "rb", buffering=0)  # noqa: SIM115 - closed by __exit__
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
        return self._f.tell()

    def seek(self, offset: int) -> None:
        self._f.seek(offset)

    def read(self, n: int) -> bytes:
        return self._f.read(n) or b""

    def readinto(self, view: memoryview) -> int:
        return self._f.readinto(view) or 0


def _open_shard(name: str) -> Any:
    """Local shards through `_LocalShard`; URIs and unreadable paths through `tf.io.gfile`."""
    if _paths.scheme_of(name) is None:
        try:
            return _LocalShard(name)
        except FileNotFoundError as exc:
            raise tf.errors.NotFoundError(None, None, str(exc)) from exc
        except OSError:
            pass  # e.g. a directory: let tf.io.gfile report it exactly as before
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
    except tf.errors.NotFoundError:
        detail = f"missing; it should hold {len(entries)} tensors ({end_mark - mark} bytes)"
        out.append(DataProblem("", name, "missing_shard", detail))
    except (tf.errors.OpError, OSError) as exc:
        out.append(DataProblem(current, name, "unreadable", f"{type(exc).__name__}: {exc}"))
    meter.settle(end_mark)
    return out
