"""The bytes of TensorFlow's tensor bundle, written and read by the harness itself.

Independent of safeckpt (never imported here) and of TensorFlow's protobuf modules, so that
the harness can build what neither would: CRC-valid tables with offsets near 2^63, unknown
dtypes, negative dims, thousands of block handles to one block, values that are not protos.

* CRC32C (Castagnoli) and LevelDB's mask, table-driven;
* varints and the protobuf wire format as a list of ``(field, wire_type, value)`` fields;
* the LevelDB-style table (``.index``): blocks of prefix-compressed entries with a restart
  array, a 5-byte trailer (type byte + masked CRC32C), an index block of block handles, an
  empty meta-index block and a 48-byte footer ending in the magic number;
* ``BundleEntryProto`` / ``BundleHeaderProto`` / ``TrackableObjectGraph`` field numbers, and
  the string tensor layout of a data shard (varint lengths, a masked CRC32C of the lengths
  as uint32, the bytes).

The format is described in /work/shared/notes/tf-2.21-checkpoint-internals.md section 5 and
TensorFlow's ``tensor_bundle.cc`` / ``table_builder.cc``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# ------------------------------------------------------------------------------------------
# CRC32C


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32C of `data`, continuing from `crc` (0 for a fresh checksum)."""
    c = crc ^ 0xFFFFFFFF
    for byte in data:
        c = _TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    """LevelDB's masked CRC (what tables and bundle entries store)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------------
# Varints and the protobuf wire format

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


def varint(value: int) -> bytes:
    """Unsigned LEB128; a negative value is written as its 64-bit two's complement (10 bytes)."""
    if value < 0:
        value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """``(value, next position)``; raises ValueError past the end or after 10 bytes."""
    result = shift = 0
    for i in range(10):
        if pos + i >= len(data):
            raise ValueError("varint runs past the end")
        byte = data[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos + i + 1
        shift += 7
    raise ValueError("varint longer than 10 bytes")


Field = tuple[int, int, "int | bytes"]


def encode_fields(fields: Iterable[Field]) -> bytes:
    """Serialize ``(number, wire_type, value)`` fields in the given order."""
    out = bytearray()
    for number, wire, value in fields:
        out += varint(number << 3 | wire)
        if wire == VARINT:
            assert isinstance(value, int)
            out += varint(value)
        elif wire == BYTES:
            assert isinstance(value, bytes)
            out += varint(len(value)) + value
        elif wire == FIXED32:
            assert isinstance(value, int)
            out += struct.pack("<I", value & 0xFFFFFFFF)
        elif wire == FIXED64:
            assert isinstance(value, int)
            out += struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF)
        else:  # pragma: no cover - generator bug
            raise ValueError(f"wire type {wire}")
    return bytes(out)


def decode_fields(data: bytes) -> list[Field]:
    """Parse serialized protobuf into fields; raises ValueError on malformed input."""
    fields: list[Field] = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == VARINT:
            value, pos = read_varint(data, pos)
        elif wire == BYTES:
            n, pos = read_varint(data, pos)
            if pos + n > len(data):
                raise ValueError("length-delimited field runs past the end")
            value, pos = data[pos : pos + n], pos + n
        elif wire == FIXED32:
            if pos + 4 > len(data):
                raise ValueError("fixed32 runs past the end")
            (value,) = struct.unpack_from("<I", data, pos)
            pos += 4
        elif wire == FIXED64:
            if pos + 8 > len(data):
                raise ValueError("fixed64 runs past the end")
            (value,) = struct.unpack_from("<Q", data, pos)
            pos += 8
        else:
            raise ValueError(f"wire type {wire}")
        fields.append((number, wire, value))
    return fields


def to_int64(value: int) -> int:
    """A decoded varint as the signed int64 a proto field would hold."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


# ------------------------------------------------------------------------------------------
# Bundle protos (field numbers of tensor_bundle.proto / tensor_shape.proto)


@dataclass
class Entry:
    """A ``BundleEntryProto``, with every field free to hold what a real one cannot."""

    dtype: int = 1
    dims: list[int] = field(default_factory=list)
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc: int = 0
    unknown_rank: bool = False
    slices: list[bytes] = field(default_factory=list)
    extra: list[Field] = field(default_factory=list)  # fields this class does not model

    def encode(self) -> bytes:
        """Serialize (fields with default values are omitted, as protobuf does)."""
        shape = encode_fields([(2, BYTES, encode_fields([(1, VARINT, d)])) for d in self.dims])
        if self.unknown_rank:
            shape += encode_fields([(3, VARINT, 1)])
        fields: list[Field] = []
        if self.dtype:
            fields.append((1, VARINT, self.dtype))
        if shape:
            fields.append((2, BYTES, shape))
        if self.shard_id:
            fields.append((3, VARINT, self.shard_id))
        if self.offset:
            fields.append((4, VARINT, self.offset))
        if self.size:
            fields.append((5, VARINT, self.size))
        if self.crc:
            fields.append((6, FIXED32, self.crc))
        fields += [(7, BYTES, s) for s in self.slices]
        return encode_fields(fields + self.extra)

    @classmethod
    def decode(cls, data: bytes) -> Entry:
        """Parse a real entry (raises ValueError on malformed bytes)."""
        entry = cls()
        for number, _wire, value in decode_fields(data):
            if number == 1 and isinstance(value, int):
                entry.dtype = value
            elif number == 2 and isinstance(value, bytes):
                for n, _w, v in decode_fields(value):
                    if n == 2 and isinstance(v, bytes):
                        size = next((x for k, _, x in decode_fields(v) if k == 1), 0)
                        assert isinstance(size, int)
                        entry.dims.append(to_int64(size))
                    elif n == 3:
                        entry.unknown_rank = True
            elif number == 3 and isinstance(value, int):
                entry.shard_id = to_int64(value)
            elif number == 4 and isinstance(value, int):
                entry.offset = to_int64(value)
            elif number == 5 and isinstance(value, int):
                entry.size = to_int64(value)
            elif number == 6 and isinstance(value, int):
                entry.crc = value
            elif number == 7 and isinstance(value, bytes):
                entry.slices.append(value)
            else:
                entry.extra.append((number, _wire, value))
        return entry


def header(num_shards: int = 1, endianness: int = 0, producer: int = 1, **more: int) -> bytes:
    """A ``BundleHeaderProto`` (``min_consumer`` / ``bad_consumer`` go into the VersionDef)."""
    version: list[Field] = [(1, VARINT, producer)]
    if "min_consumer" in more:
        version.append((2, VARINT, more["min_consumer"]))
    if "bad_consumer" in more:
        version.append((3, VARINT, more["bad_consumer"]))
    fields: list[Field] = []
    if num_shards:
        fields.append((1, VARINT, num_shards))
    if endianness:
        fields.append((2, VARINT, endianness))
    fields.append((3, BYTES, encode_fields(version)))
    return encode_fields(fields)


GRAPH_KEY = b"_CHECKPOINTABLE_OBJECT_GRAPH"
DT_STRING = 7


def string_tensor(values: Sequence[bytes]) -> tuple[bytes, int]:
    """The data-shard bytes of a DT_STRING tensor and the entry's masked CRC32C."""
    lengths = b"".join(varint(len(v)) for v in values)
    crc = 0
    for v in values:
        crc = crc32c(struct.pack("<I", len(v)), crc)
    length_crc = struct.pack("<I", mask(crc))
    crc = crc32c(length_crc, crc)
    for v in values:
        crc = crc32c(v, crc)
    return lengths + length_crc + b"".join(values), mask(crc)


def read_string_tensor(data: bytes, count: int = 1) -> list[bytes]:
    """Inverse of `string_tensor` on a real tensor (raises ValueError when malformed)."""
    pos = 0
    lengths = []
    for _ in range(count):
        n, pos = read_varint(data, pos)
        lengths.append(n)
    pos += 4
    out = []
    for n in lengths:
        out.append(data[pos : pos + n])
        pos += n
    return out


# ------------------------------------------------------------------------------------------
# The table (.index)

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48


def block(entries: Sequence[tuple[bytes, bytes]], restart_interval: int = 16) -> bytes:
    """A block of `entries` (keys in the order given), without its trailer."""
    out = bytearray()
    restarts = []
    last = b""
    for i, (key, value) in enumerate(entries):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            limit = min(len(last), len(key))
            while shared < limit and last[shared] == key[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        last = key
    if not restarts:
        restarts = [0]
    for r in restarts:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts))
    return bytes(out)


def trailer(contents: bytes, kind: int = 0) -> bytes:
    """The 5 bytes after a block: compression type and the masked CRC32C of block + type."""
    return bytes([kind]) + struct.pack("<I", mask(crc32c(contents + bytes([kind]))))


def handle(offset: int, size: int) -> bytes:
    """A BlockHandle: varint64 offset, varint64 size."""
    return varint(offset) + varint(size)


def footer(metaindex: tuple[int, int], index: tuple[int, int], magic: int = MAGIC) -> bytes:
    """The 48-byte footer: two handles padded to 40 bytes, then the magic number."""
    handles = handle(*metaindex) + handle(*index)
    return handles.ljust(40, b"\0")[:40] + struct.pack("<Q", magic)


def successor(key: bytes) -> bytes:
    """A key strictly greater than `key` (used as an index separator)."""
    return key + b"\0"


@dataclass
class Table:
    """What `build_table` wrote: the bytes and where each block went (for targeted edits)."""

    data: bytes
    blocks: list[tuple[int, int]]  # (offset, size) of each data block
    index: tuple[int, int]
    metaindex: tuple[int, int]


def build_table(
    blocks: Sequence[Sequence[tuple[bytes, bytes]]],
    *,
    index_entries: Sequence[tuple[bytes, bytes]] | None = None,
    restart_interval: int = 16,
) -> Table:
    """A complete, CRC-valid table of the given data blocks.

    `index_entries` replaces the index block's ``(separator, handle)`` entries (to point
    handles anywhere); by default one entry per block, keyed by the block's last key.
    """
    bodies = [block(entries, restart_interval) for entries in blocks]
    separators = [successor(entries[-1][0]) if entries else b"" for entries in blocks]
    return assemble(bodies, separators, index_entries=index_entries)


def assemble(
    bodies: Sequence[bytes],
    separators: Sequence[bytes],
    *,
    index_entries: Sequence[tuple[bytes, bytes]] | None = None,
) -> Table:
    """A table of already-encoded block bodies (each gets its valid trailer)."""
    out = bytearray()
    placed = []
    for contents in bodies:
        placed.append((len(out), len(contents)))
        out += contents + trailer(contents)
    if index_entries is None:
        index_entries = [
            (sep, handle(*where)) for sep, where in zip(separators, placed, strict=True)
        ]
    meta = block([])
    metaindex = (len(out), len(meta))
    out += meta + trailer(meta)
    idx = block(index_entries, restart_interval=1)
    index = (len(out), len(idx))
    out += idx + trailer(idx)
    out += footer(metaindex, index)
    return Table(bytes(out), placed, index, metaindex)


def split_blocks(
    items: Sequence[tuple[bytes, bytes]], per_block: int
) -> list[list[tuple[bytes, bytes]]]:
    """`items` in blocks of `per_block` entries (at least one block)."""
    return [list(items[i : i + per_block]) for i in range(0, len(items), per_block)] or [[]]


def read_block(contents: bytes) -> list[tuple[bytes, bytes]]:
    """The entries of one block (of a real table; raises ValueError when malformed)."""
    if len(contents) < 4:
        raise ValueError("block shorter than its restart count")
    (restarts,) = struct.unpack_from("<I", contents, len(contents) - 4)
    end = len(contents) - 4 - 4 * restarts
    if end < 0:
        raise ValueError("restart array larger than the block")
    pos, last, entries = 0, b"", []
    while pos < end:
        shared, pos = read_varint(contents, pos)
        unshared, pos = read_varint(contents, pos)
        size, pos = read_varint(contents, pos)
        key = last[:shared] + contents[pos : pos + unshared]
        pos += unshared
        entries.append((key, contents[pos : pos + size]))
        pos += size
        last = key
    return entries


@dataclass
class ParsedTable:
    """A real table, as the harness reads it (to mutate it knowingly)."""

    items: list[tuple[bytes, bytes]]  # every (key, value) in order
    blocks: list[tuple[int, int]]  # (offset, size) of each data block
    index: tuple[int, int]
    metaindex: tuple[int, int]
    index_entries: list[tuple[bytes, bytes]]


def parse_table(data: bytes) -> ParsedTable:
    """Read a table TensorFlow wrote (no CRC checks: the input is known to be good)."""
    if len(data) < FOOTER_SIZE:
        raise ValueError("shorter than a footer")
    foot = data[-FOOTER_SIZE:]
    meta_off, pos = read_varint(foot, 0)
    meta_size, pos = read_varint(foot, pos)
    idx_off, pos = read_varint(foot, pos)
    idx_size, pos = read_varint(foot, pos)
    index_entries = read_block(data[idx_off : idx_off + idx_size])
    items, blocks = [], []
    for _key, value in index_entries:
        off, p = read_varint(value, 0)
        size, _ = read_varint(value, p)
        blocks.append((off, size))
        items += read_block(data[off : off + size])
    return ParsedTable(items, blocks, (idx_off, idx_size), (meta_off, meta_size), index_entries)
