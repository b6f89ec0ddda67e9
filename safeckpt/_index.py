"""Reads a checkpoint's ``<prefix>.index`` in pure Python (the table parser).

The index is TensorFlow's LevelDB-style table (``tsl/lib/io/table``), always uncompressed for
bundles: data blocks of prefix-compressed ``(key, value)`` entries with a restart array, each
block followed by a 5-byte trailer (type byte, masked CRC32C of block + type), an index block of
``BlockHandle``s, an empty meta-index block and a 48-byte footer ending in a magic number. Key
``""`` holds a ``BundleHeaderProto``, every other key a ``BundleEntryProto``.
The index is read through `tf.io.gfile`, so ``ram://`` and ``gs://`` prefixes work. The tensor
data is checked against it by `safeckpt._shards.verify_data`.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf.message import DecodeError

from safeckpt import _tf
from safeckpt._crc32c import crc32c, unmask
from safeckpt._tf import tf

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
IndexProblem = Literal["too_short", "bad_magic", "block_checksum", "malformed", "unreadable"]
_TRAILER = 5  # compression type + masked CRC32C
_MAX_SHARDS = 1 << 20  # sanity bound: verification stats every shard


class IndexFormatError(Exception):
    """A ``.index`` file that is not a valid tensor-bundle table.

    Attributes:
        path: The file that was read.
        reason: One of ``"too_short"``, ``"bad_magic"``, ``"block_checksum"``, ``"malformed"``,
            ``"unreadable"``.
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
    end, stop = offset + size, len(data) - FOOTER_SIZE
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
    if len(data) < FOOTER_SIZE:
        raise _bad("too_short", f"{len(data)} bytes, less than the {FOOTER_SIZE}-byte footer")
    footer = data[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise _bad("bad_magic", f"footer at byte {len(data) - FOOTER_SIZE} has magic {magic:#018x}")
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
    header = _proto(_tf.BundleHeaderProto, b"", items[0][1])
    if not 1 <= header.num_shards <= _MAX_SHARDS:
        raise _bad("malformed", f"header says num_shards={header.num_shards}")
    return BundleIndex(
        path=path,
        num_shards=header.num_shards,
        entries=tuple(_entry(key, value, header.num_shards) for key, value in items[1:]),
        size_bytes=len(data),
        big_endian=header.endianness == _tf.BundleHeaderProto.BIG,
    )


def _proto(cls: Any, key: bytes, value: bytes) -> Any:
    try:
        return cls.FromString(value)
    except DecodeError as exc:
        raise _bad("malformed", f"value of key {key!r} is not a {cls.__name__}: {exc}") from None


def _entry(key: bytes, value: bytes, num_shards: int) -> BundleEntry:
    proto = _proto(_tf.BundleEntryProto, key, value)
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
