"""Reads a checkpoint's ``<prefix>.index`` in pure Python (the table parser).

The index is TensorFlow's LevelDB-style table (``tsl/lib/io/table``), always uncompressed for
bundles: data blocks of prefix-compressed ``(key, value)`` entries with a restart array, each
block followed by a 5-byte trailer (type byte, masked CRC32C of block + type), an index block of
``BlockHandle``s, an empty meta-index block and a 48-byte footer ending in a magic number. Key
``""`` holds a ``BundleHeaderProto``, every other key a ``BundleEntryProto``.
The index is read through `safeckpt._io.safeio` (only a regular file locally; `tf.io.gfile` on
``ram://`` and ``gs://``). The tensor data is checked against it by
`safeckpt._format.shards.verify_data`.

The work is linear in the file's size: data-block handles must be strictly increasing and
non-overlapping (checked as they are read), so each block is decoded once; keys are checked
in order as they are read; the decoded keys may not exceed a fixed multiple of the file's
size (prefix compression could otherwise expand a small file quadratically); offsets, sizes
and shapes must be possible (below 2**63, the size a shape and dtype need).
"""

from __future__ import annotations

import bisect
import math
import re
import struct
from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf.message import DecodeError

from safeckpt._format import dtypes
from safeckpt._format.crc32c import crc32c, unmask
from safeckpt._format.protos import BIG_ENDIAN, BundleEntryProto, BundleHeaderProto
from safeckpt._io import safeio
from safeckpt._io.errors import io_errors, not_found

__all__ = [
    "FOOTER_SIZE",
    "TABLE_MAGIC",
    "BundleEntry",
    "BundleIndex",
    "IndexFormatError",
    "IndexProblem",
    "read_index",
]

#: The magic number that ends every table's footer (a fully written ``.index``).
TABLE_MAGIC = 0xDB4775248B80FB57
#: The footer's size: two BlockHandles padded to 40 bytes + the 8-byte magic.
FOOTER_SIZE = 48

#: What is wrong with an index, as `IndexFormatError.reason`.
IndexProblem = Literal[
    "too_short", "bad_magic", "block_checksum", "malformed", "unreadable", "not_a_regular_file"
]
_TRAILER = 5  # compression type + masked CRC32C
_MAX_SHARDS = 1 << 20  # sanity bound (TensorFlow names shards with 5 digits)
_INT64 = 1 << 63  # offsets, sizes and element counts are int64 in TensorFlow
#: The decoded keys of an index may take this many times its size (+ 1 MiB): real keys
#: share prefixes, but take a few times their encoded size at most.
_KEY_EXPANSION = 32
_DT_STRING, _DT_VARIANT = dtypes.STRING, dtypes.VARIANT  # sized per element, not by shape
_MAX_DIMS = 254  # TensorShape's limit
_ESCAPED = re.compile(b"[\x00\xff]")  # OrderedCode's string escapes
_ESCAPES = {b"\x00": b"\x00\xff", b"\xff": b"\xff\x00"}


class IndexFormatError(Exception):
    """A ``.index`` file that is not a valid tensor-bundle table.

    Attributes:
        path: The file that was read.
        reason: One of ``"too_short"``, ``"bad_magic"``, ``"block_checksum"``, ``"malformed"``,
            ``"unreadable"``, ``"not_a_regular_file"`` (a FIFO, socket or device).
        detail: What exactly is wrong, with byte offsets where they help.
    """

    def __init__(self, path: str, reason: IndexProblem, detail: str) -> None:
        super().__init__(path, reason, detail)
        self.path, self.reason, self.detail = path, reason, detail

    def __str__(self) -> str:
        return f"bad checkpoint index {self.path} ({self.reason}): {self.detail}"


def _bad(reason: IndexProblem, detail: str) -> IndexFormatError:
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
    slices: int = 0  # how many slices a container lists (each has an entry of its own)

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
        return {**dict.fromkeys(range(self.num_shards), 0), **self.shard_needs()}

    def shard_needs(self) -> dict[int, int]:
        """`required_shard_sizes` of the shards entries use (not one item per declared shard)."""
        sizes: dict[int, int] = {}
        for e in self.entries:
            if not e.is_slice_container:
                sizes[e.shard_id] = max(sizes.get(e.shard_id, 0), e.offset + e.size)
        return sizes


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


class _Reader:
    """Reads one index's blocks, each once, keeping the work linear in the file's size."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.stop = len(data) - FOOTER_SIZE
        self.key_budget = _KEY_EXPANSION * len(data) + (1 << 20)

    def handle(self, handle: bytes, what: str) -> tuple[int, int]:
        """``(offset, size)`` of a block handle, checked to lie before the footer."""
        try:
            offset, pos = _varint(handle, 0, len(handle))
            size, _ = _varint(handle, pos, len(handle))
        except IndexFormatError as exc:
            detail = f"{what}: bad block handle {handle.hex()}: {exc.detail}"
            raise _bad("malformed", detail) from None
        if offset + size + _TRAILER > self.stop:
            detail = f"{what} at bytes {offset}..{offset + size + _TRAILER}"
            raise _bad("malformed", f"{detail} runs past byte {self.stop}, where the footer starts")
        return offset, size

    def items(self, offset: int, size: int, what: str) -> list[tuple[bytes, bytes]]:
        """The block at `offset` (checking its CRC and type), decoded."""
        data, end = self.data, offset + size
        where = f"{what} at bytes {offset}..{end + _TRAILER}"
        (stored,) = struct.unpack_from("<I", data, end + 1)
        actual = crc32c(memoryview(data)[offset : end + 1])
        if unmask(stored) != actual:
            detail = f"{where}: stored CRC32C {unmask(stored):#010x}, computed {actual:#010x}"
            raise _bad("block_checksum", detail)
        if data[end] != 0:
            raise _bad("malformed", f"{where} has compression type {data[end]}, not 0 (none)")
        return self._decode(data[offset:end], where)

    def _decode(self, block: bytes, where: str) -> list[tuple[bytes, bytes]]:
        """Decodes a block's prefix-compressed entries, checking the restart array."""
        if len(block) < 4:
            raise _bad("malformed", f"{where}: {len(block)} bytes is too small for a block")
        (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
        limit = len(block) - 4 * (restarts + 1)
        if restarts == 0 or limit < 0:
            raise _bad("malformed", f"{where}: bad restart count {restarts}")
        items: list[tuple[bytes, bytes]] = []
        fresh, key, pos = set(), b"", 0
        while pos < limit:
            start = pos
            shared, pos = _varint(block, pos, limit, 5)
            unshared, pos = _varint(block, pos, limit, 5)
            vlen, pos = _varint(block, pos, limit, 5)
            if shared > len(key) or pos + unshared + vlen > limit:
                raise _bad("malformed", f"{where}: entry at block byte {start} overruns")
            self.key_budget -= shared + unshared
            if self.key_budget < 0:
                detail = f"{where}: the keys decode to more than {_KEY_EXPANSION}x the file"
                raise _bad("malformed", detail)
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
    if len(data) < FOOTER_SIZE:
        raise _bad("too_short", f"{len(data)} bytes, less than the {FOOTER_SIZE}-byte footer")
    footer = data[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise _bad("bad_magic", f"footer at byte {len(data) - FOOTER_SIZE} has magic {magic:#018x}")
    meta_end = _varint(footer, _varint(footer, 0, 40)[1], 40)[1]  # handle = 2 varints
    index_end = _varint(footer, _varint(footer, meta_end, 40)[1], 40)[1]
    reader = _Reader(data)
    reader.items(*reader.handle(footer[:meta_end], "meta-index block"), "meta-index block")
    handles = reader.items(*reader.handle(footer[meta_end:index_end], "index block"), "index block")
    items: list[tuple[bytes, bytes]] = []
    after = 0  # where the previous data block's trailer ends
    for n, (separator, handle) in enumerate(handles):
        what = f"data block {n}"
        offset, size = reader.handle(handle, what)
        if offset < after:
            detail = f"{what} starts at byte {offset}, before the end of the previous one ({after})"
            raise _bad("malformed", detail)
        after = offset + size + _TRAILER
        block = reader.items(offset, size, what)
        for key, value in block:
            if items and key <= items[-1][0]:
                raise _bad("malformed", f"{what}: keys are not strictly increasing at {key!r}")
            items.append((key, value))
        if block and block[-1][0] > separator:
            raise _bad("malformed", f"{what}: last key is past its index separator")
    if not items or items[0][0] != b"":
        raise _bad("malformed", "no BundleHeaderProto under key ''")
    header = _proto(BundleHeaderProto, b"", items[0][1])
    if not 1 <= header.num_shards <= _MAX_SHARDS:
        raise _bad("malformed", f"header says num_shards={header.num_shards}")
    version = header.version  # TensorFlow's CheckVersions for bundles (consumer 1, min producer 0)
    if version.producer < 0 or version.min_consumer > 1 or 1 in version.bad_consumers:
        detail = (
            f"header version: producer {version.producer}, min_consumer {version.min_consumer}, "
            f"bad_consumers {list(version.bad_consumers)}: TensorFlow (bundle version 1) "
            "refuses to read it"
        )
        raise _bad("malformed", detail)
    entries = tuple(_entry(key, value, header.num_shards) for key, value in items[1:])
    _check_slices(entries)
    return BundleIndex(
        path=path,
        num_shards=header.num_shards,
        entries=entries,
        size_bytes=len(data),
        big_endian=header.endianness == BIG_ENDIAN,
    )


def _proto(cls: Any, key: bytes, value: bytes) -> Any:
    try:
        return cls.FromString(value)
    except DecodeError as exc:
        raise _bad("malformed", f"value of key {key!r} is not a {cls.__name__}: {exc}") from None


def _entry(key: bytes, value: bytes, num_shards: int) -> BundleEntry:
    proto = _proto(BundleEntryProto, key, value)
    shape = tuple(d.size for d in proto.shape.dim)
    entry = BundleEntry(key, proto.dtype, shape, proto.shard_id, proto.offset, proto.size,
                        proto.crc32c, len(proto.slices) > 0, len(proto.slices))  # fmt: skip
    problem = _impossible(entry, num_shards) or _bad_extents(proto, shape)
    if problem is not None:
        detail = f"shard {entry.shard_id}, offset {entry.offset}, size {entry.size}, shape {shape}"
        raise _bad("malformed", f"entry {entry.name!r} has impossible values ({problem}): {detail}")
    return entry


def _bad_extents(proto: Any, shape: tuple[int, ...]) -> str | None:
    """Why a slice container's slices cannot lie inside its shape, or None."""
    for number, piece in enumerate(proto.slices):
        if len(piece.extent) > len(shape):
            return f"slice {number} has {len(piece.extent)} extents for {len(shape)} dimensions"
        for dim, extent in zip(shape, piece.extent, strict=False):
            full = not extent.HasField("length")
            if extent.start < 0 or (full and extent.start) or extent.length < 0:
                return f"slice {number} has an extent {extent.start}+{extent.length}"
            if not full and extent.start + extent.length > dim:
                return f"slice {number} ends at {extent.start + extent.length}, past {dim}"
    return None


def _slice_prefix(name: bytes) -> bytes:
    """What the keys of a sliced tensor's slices start with (TensorFlow's OrderedCode)."""
    escaped = _ESCAPED.sub(lambda byte: _ESCAPES[byte.group()], name)
    return b"\x00" + escaped + b"\x00\x01"  # the number 0, then the name as a string


def _check_slices(entries: tuple[BundleEntry, ...]) -> None:
    """Every slice a container lists has its entry (keys are sorted: one bisect each)."""
    keys = [e.key for e in entries]
    for entry in entries:
        if not entry.is_slice_container:
            continue
        prefix = _slice_prefix(entry.key)
        start = bisect.bisect_left(keys, prefix)
        found = 0
        while start + found < len(keys) and keys[start + found].startswith(prefix):
            found += 1
            if found >= entry.slices:
                break
        if found < entry.slices:
            detail = f"{entry.name!r} lists {entry.slices} slices; {found} are in the index"
            raise _bad("malformed", detail)


def _impossible(entry: BundleEntry, num_shards: int) -> str | None:
    """Why `entry` cannot describe a tensor TensorFlow wrote, or None."""
    shape = entry.shape
    if not entry.key.startswith(b"\x00"):  # a slice's key is binary; a name is text
        try:
            entry.key.decode("utf-8")
        except UnicodeDecodeError:
            return "its name is not UTF-8 (TensorFlow's reader decodes every name)"
    if min(entry.offset, entry.size, *shape) < 0 or not 0 <= entry.shard_id < num_shards:
        return "negative, or a shard the header does not declare"
    if entry.offset + entry.size >= _INT64:
        return "offset + size is past 2**63"
    if len(shape) > _MAX_DIMS:
        return f"{len(shape)} dimensions, TensorFlow allows {_MAX_DIMS}"
    count = math.prod(shape)
    if count >= _INT64:
        return "more than 2**63 elements"
    try:
        dtype = dtypes.dtype(entry.dtype)
    except TypeError:
        return f"unknown dtype {entry.dtype}"
    if entry.is_slice_container:
        return None
    if entry.dtype in (_DT_STRING, _DT_VARIANT):
        return None if count <= entry.size else f"{count} elements cannot fit in the size"
    itemsize = dtype.size
    if itemsize and count * itemsize != entry.size:
        return f"a {dtype.name} tensor of that shape takes {count * itemsize} bytes"
    return None


def read_index(path: str) -> BundleIndex:
    """Reads and validates ``<prefix>.index``, checking every block's CRC32C.

    Args:
        path: The index file (``<prefix>.index``); any `tf.io.gfile` URI.

    Returns:
        The header and all tensor entries, in key order.

    Raises:
        IndexFormatError: The file is unreadable, not a regular file, or not a valid
            tensor-bundle index.
        tf.errors.NotFoundError: The file does not exist (locally
            `safeckpt._io.errors.NotFoundError`, a `FileNotFoundError`).
    """
    try:
        data = safeio.read_bytes(path)
    except not_found():
        raise
    except safeio.NotRegularFileError as exc:
        raise IndexFormatError(path, "not_a_regular_file", f"it is {exc.kind}") from exc
    except io_errors() as exc:
        raise IndexFormatError(path, "unreadable", f"cannot read it: {exc}") from exc
    try:
        return _parse(path, data)
    except IndexFormatError as exc:
        raise IndexFormatError(path, exc.reason, exc.detail) from None
    except (IndexError, ValueError, struct.error, OverflowError, MemoryError) as exc:  # defensive
        raise IndexFormatError(path, "malformed", f"{type(exc).__name__}: {exc}") from exc
