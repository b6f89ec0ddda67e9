"""An independent reader and writer of TensorFlow's ``.index`` tables, for crafting inputs.

Tests use it to change one entry of a real checkpoint's index and write the table back with
valid CRC32Cs (damage a checksum cannot catch), or to build tables no TensorFlow writes (a
million declared shards, 5,000 handles to one block). It shares no code with safeckpt: its
own varints, blocks and CRC32C (table-driven), and TensorFlow's own protos for the values.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

from tensorflow.core.protobuf import tensor_bundle_pb2

MAGIC = 0xDB4775248B80FB57
Items = list[tuple[bytes, bytes]]


def _table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli), table-driven."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    """LevelDB's CRC mask."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    """`value` as a little-endian base-128 varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` of `buf` and the position after it."""
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _block_items(block: bytes) -> Items:
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit, pos, key, items = len(block) - 4 * (restarts + 1), 0, b"", []
    while pos < limit:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        vlen, pos = read_varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        items.append((key, block[pos + unshared : pos + unshared + vlen]))
        pos += unshared + vlen
    return items


def _handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return offset, size, pos


def read_table(data: bytes) -> Items:
    """Every (key, value) of a well-formed table, in order."""
    footer = data[-48:]
    _, _, pos = _handle(footer)
    index_off, index_size, _ = _handle(footer, pos)
    items: Items = []
    for _, handle in _block_items(data[index_off : index_off + index_size]):
        off, size, _ = _handle(handle)
        items += _block_items(data[off : off + size])
    return items


def block(items: Items) -> bytes:
    """A block of unshared keys, one restart point (at 0)."""
    out = bytearray()
    for key, value in items:
        out += varint(0) + varint(len(key)) + varint(len(value)) + key + value
    return bytes(out) + struct.pack("<II", 0, 1)


class Table:
    """Blocks appended one after another, then an index block and the footer."""

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, raw: bytes) -> bytes:
        """Append a block (with its trailer); returns its handle."""
        offset = len(self.data)
        self.data += raw + b"\0" + struct.pack("<I", masked(crc32c(raw + b"\0")))
        return varint(offset) + varint(len(raw))

    def finish(self, index: Items) -> bytes:
        """The table: `index` maps each separator key to a data block's handle."""
        meta = self.add(block([]))
        handles = self.add(block(index))
        footer = (meta + handles).ljust(40, b"\0") + struct.pack("<Q", MAGIC)
        return bytes(self.data) + footer


def write_table(items: Items, per_block: int = 16) -> bytes:
    """A well-formed table holding `items` (sorted), `per_block` entries per data block."""
    table = Table()
    index: Items = []
    for start in range(0, len(items), per_block):
        chunk = items[start : start + per_block]
        index.append((chunk[-1][0], table.add(block(chunk))))
    return table.finish(index)


def header(num_shards: int = 1) -> bytes:
    """A serialized ``BundleHeaderProto`` (the value under the empty key)."""
    return tensor_bundle_pb2.BundleHeaderProto(num_shards=num_shards).SerializeToString()


def entry(value: bytes) -> tensor_bundle_pb2.BundleEntryProto:
    """An index value parsed as a ``BundleEntryProto``."""
    return tensor_bundle_pb2.BundleEntryProto.FromString(value)


def rewrite_entry(index_path: Path, key: bytes, **fields: object) -> None:
    """Change fields of one entry of a real index and write the table back, CRCs valid.

    ``shape=[...]`` replaces the dims; other keyword arguments set proto fields.
    """
    items = read_table(index_path.read_bytes())
    out: Items = []
    for k, value in items:
        if k == key:
            proto = entry(value)
            for name, field in fields.items():
                if name == "shape":
                    del proto.shape.dim[:]
                    for size in field:  # type: ignore[attr-defined]
                        proto.shape.dim.add(size=size)
                else:
                    setattr(proto, name, field)
            value = proto.SerializeToString()
        out.append((k, value))
    assert [k for k, _ in out] == [k for k, _ in items]
    assert key in dict(items)
    index_path.write_bytes(write_table(out))


def replace_header(index_path: Path, value: bytes) -> None:
    """Write a real index back with another header value (key ``""``), CRCs valid."""
    items = read_table(index_path.read_bytes())
    index_path.write_bytes(write_table([(b"", value), *items[1:]]))


def keys(index_path: Path) -> Sequence[bytes]:
    """The keys of the index at `index_path`, in order."""
    return [k for k, _ in read_table(index_path.read_bytes())]


def resave(prefix: str, replace: dict[str, object]) -> None:
    """Write the checkpoint `prefix` again with TensorFlow's own ``SaveV2``, some values replaced.

    Every other tensor keeps its value (read with TensorFlow's reader): the result is a
    checkpoint TensorFlow wrote, every checksum valid, holding what a test needs (an object
    graph that is not a ``TrackableObjectGraph``, say).
    """
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    names = sorted(reader.get_variable_to_shape_map())
    values = [replace[name] if name in replace else reader.get_tensor(name) for name in names]
    for path in tf.io.gfile.glob(prefix + ".data-*"):
        tf.io.gfile.remove(path)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(v) for v in values],
    )
