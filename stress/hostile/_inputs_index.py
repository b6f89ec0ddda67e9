"""Mutations of real ``.index`` files and data shards, raw and CRC-valid.

Each generator takes the case's random generator and the pristine checkpoints (read by the
harness's own table reader, `stress.hostile._wire`) and returns an `Input`: the operations
that damage the case directory and the facts the oracle may check (``expect``):

* ``not_healthy``: the target cannot be a valid checkpoint whatever the level of checking
  (an index that is not a table, an entry whose offset/size/shard/dtype its files cannot
  hold, a missing or garbled header, an entry that does not parse);
* ``deep_not_healthy``: the damage is in the data (tensor bytes, the object graph, a string
  length), so a deep verification must find it.

Raw mutations (bit flips, truncation, random bytes) carry no expectation unless they
certainly break the table. CRC-valid ones are written with `_wire.build_table`.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from stress.hostile import _wire as w
from stress.hostile._case import DATA, INDEX, NAME, STEPS, Op, in_dir

BIG = (1 << 63) - 1


@dataclass
class Input:
    """What one generator produced."""

    detail: str
    ops: list[Op]
    target: str = f"{NAME}-{STEPS[-1]}"
    path: str = ""
    expect: tuple[str, ...] = ()
    unprivileged: bool = False
    intact: bool = True  # an intact checkpoint is left: a restore must resume from it


@dataclass
class Pristine:
    """The pristine checkpoints as bytes, parsed by the harness's own reader."""

    files: dict[str, bytes]
    tables: dict[int, w.ParsedTable] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for k in STEPS:
            self.tables[k] = w.parse_table(self.index(k))

    def index(self, k: int) -> bytes:
        return self.files[f"{NAME}-{k}{INDEX}"]

    def data(self, k: int) -> bytes:
        return self.files[f"{NAME}-{k}{DATA}"]

    def entries(self, k: int) -> list[tuple[bytes, w.Entry]]:
        """Every tensor entry (not the header), decoded."""
        return [(key, w.Entry.decode(v)) for key, v in self.tables[k].items if key]


Generator = Callable[[random.Random, Pristine, int], Input]


def _write_index(k: int, data: bytes) -> Op:
    return Op("write", in_dir(f"{NAME}-{k}{INDEX}"), data=data)


def _with_items(items: list[tuple[bytes, bytes]], per_block: int = 16) -> bytes:
    return w.build_table(w.split_blocks(items, per_block)).data


def _replace(p: Pristine, k: int, key: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    return [(kk, value if kk == key else vv) for kk, vv in p.tables[k].items]


def _pick_entry(rng: random.Random, p: Pristine, k: int, *, graph: bool = True) -> bytes:
    keys = [key for key, _ in p.entries(k) if graph or key != w.GRAPH_KEY]
    return rng.choice(keys)


# ------------------------------------------------------------------------------------------
# Raw mutations


def bitflip(rng: random.Random, p: Pristine, k: int) -> Input:
    raw = p.index(k)
    ops = [
        Op(
            "xor",
            in_dir(f"{NAME}-{k}{INDEX}"),
            num=rng.randrange(len(raw)),
            mask=1 << rng.randrange(8),
        )
        for _ in range(rng.randint(1, 8))
    ]
    return Input(f"{len(ops)} bit flips in ckpt-{k}.index", ops)


def truncate_index(rng: random.Random, p: Pristine, k: int) -> Input:
    size = len(p.index(k))
    keep = rng.choice([0, 1, rng.randrange(size), size - rng.randint(1, 48), size - 1])
    return Input(
        f"ckpt-{k}.index truncated to {keep} of {size} bytes",
        [Op("truncate", in_dir(f"{NAME}-{k}{INDEX}"), num=keep)],
        expect=("not_healthy",),
    )


def extend_index(rng: random.Random, p: Pristine, k: int) -> Input:
    junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
    return Input(
        f"{len(junk)} random bytes appended to ckpt-{k}.index",
        [Op("append", in_dir(f"{NAME}-{k}{INDEX}"), data=junk)],
        expect=("not_healthy",),  # the footer is no longer at the end
    )


def random_index(rng: random.Random, p: Pristine, k: int) -> Input:
    size = rng.choice([1, 47, 48, 49, len(p.index(k)), 4096])
    junk = bytes(rng.getrandbits(8) for _ in range(size))
    return Input(
        f"ckpt-{k}.index replaced by {size} random bytes",
        [_write_index(k, junk)],
        expect=("not_healthy",),
    )


def magic(rng: random.Random, p: Pristine, k: int) -> Input:
    raw = p.index(k)
    pos = len(raw) - 8 + rng.randrange(8)
    return Input(
        f"magic number byte {pos} of ckpt-{k}.index flipped",
        [Op("xor", in_dir(f"{NAME}-{k}{INDEX}"), num=pos, mask=rng.randint(1, 255))],
        expect=("not_healthy",),
    )


_HUGE = [BIG, BIG - 7, 1 << 62, (1 << 64) - 1, 1 << 40, 1 << 32]


def footer_handle(rng: random.Random, p: Pristine, k: int) -> Input:
    """The footer has no checksum: point its index (or meta-index) handle anywhere."""
    t = p.tables[k]
    raw = p.index(k)
    which = rng.choice(["index", "metaindex"])
    off, size = t.index if which == "index" else t.metaindex
    choice = rng.choice(["offset", "size", "both", "past_end", "data_block", "zero"])
    if choice == "offset":
        off = rng.choice(_HUGE)
    elif choice == "size":
        size = rng.choice(_HUGE)
    elif choice == "both":
        off, size = rng.choice(_HUGE), rng.choice(_HUGE)
    elif choice == "past_end":
        off = len(raw) + rng.randint(0, 1000)
    elif choice == "data_block":
        off, size = t.blocks[0]
    else:
        size = 0
    meta, index = (t.metaindex, (off, size)) if which == "index" else ((off, size), t.index)
    foot = w.footer(meta, index)
    expect = ("not_healthy",) if which == "index" and choice != "data_block" else ()
    return Input(
        f"ckpt-{k}.index footer {which} handle -> offset {off}, size {size} ({choice})",
        [Op("patch", in_dir(f"{NAME}-{k}{INDEX}"), data=foot, num=len(raw) - w.FOOTER_SIZE)],
        expect=expect,
    )


# ------------------------------------------------------------------------------------------
# CRC-valid tables with impossible contents


def index_handles(rng: random.Random, p: Pristine, k: int) -> Input:
    """The index block's handles (CRC-valid) pointing anywhere."""
    t = p.tables[k]
    raw = p.index(k)
    blocks = [list(w.read_block(raw[o : o + s])) for o, s in t.blocks]
    choice = rng.choice(
        ["huge_offset", "huge_size", "past_end", "self", "footer", "empty", "overlap"]
    )
    off, size = t.blocks[0]
    if choice == "huge_offset":
        off = rng.choice(_HUGE)
    elif choice == "huge_size":
        size = rng.choice(_HUGE)
    elif choice == "past_end":
        off = len(raw) + rng.randint(1, 1 << 20)
    elif choice == "self":
        off, size = t.index
    elif choice == "footer":
        off, size = len(raw) - w.FOOTER_SIZE, w.FOOTER_SIZE
    elif choice == "empty":
        size = 0
    else:
        off, size = off + 1, size - 1
    # Rebuild the table from the real blocks, with the first handle replaced.
    table = w.build_table(blocks)
    separators = [w.successor(b[-1][0]) for b in blocks]
    entries = [(separators[0], w.handle(off, size))] + [
        (sep, w.handle(*where)) for sep, where in zip(separators[1:], table.blocks[1:], strict=True)
    ]
    rebuilt = w.build_table(blocks, index_entries=entries).data
    return Input(
        f"ckpt-{k}.index first block handle -> ({off}, {size}) ({choice}), CRC-valid",
        [_write_index(k, rebuilt)],
        expect=("not_healthy",),
    )


def block_varints(rng: random.Random, p: Pristine, k: int) -> Input:
    """A data block whose entry lengths or restart count are absurd, with a valid CRC."""
    blocks = w.split_blocks(p.tables[k].items, 16)
    bodies = [bytearray(w.block(b)) for b in blocks]
    first = bodies[0]
    choice = rng.choice(["restarts", "value_len", "key_len", "shared"])
    if choice == "restarts":
        struct.pack_into("<I", first, len(first) - 4, rng.choice([0xFFFFFFFF, 1 << 28, 0]))
    else:
        # The first entry starts at 0: shared, unshared and value-length varints.
        data = bytes(first)
        _, after_shared = w.read_varint(data, 0)
        _, after_unshared = w.read_varint(data, after_shared)
        _, after_value = w.read_varint(data, after_unshared)
        start, end = {
            "shared": (0, after_shared),
            "key_len": (after_shared, after_unshared),
            "value_len": (after_unshared, after_value),
        }[choice]
        first[start:end] = w.varint(rng.choice([(1 << 32) - 1, 1 << 62, (1 << 64) - 1]))
    separators = [w.successor(b[-1][0]) for b in blocks]
    table = w.assemble([bytes(b) for b in bodies], separators).data
    return Input(
        f"ckpt-{k}.index first data block: absurd {choice}, CRC-valid",
        [_write_index(k, table)],
        expect=("not_healthy",),
    )


def _entry_edit(
    rng: random.Random,
    p: Pristine,
    k: int,
    what: str,
    edit: Callable[[w.Entry], None],
    expect: tuple[str, ...] = ("not_healthy",),
    graph: bool = True,
) -> Input:
    key = _pick_entry(rng, p, k, graph=graph)
    entry = dict(p.entries(k))[key]
    edit(entry)
    items = _replace(p, k, key, entry.encode())
    return Input(
        f"ckpt-{k}.index entry {key.decode(errors='replace')}: {what}, CRC-valid",
        [_write_index(k, _with_items(items))],
        expect=expect,
    )


def entry_offset(rng: random.Random, p: Pristine, k: int) -> Input:
    value = rng.choice([BIG, BIG - 7, 1 << 62, -1, -5, len(p.data(k)) + 1, 1 << 40])

    def edit(e: w.Entry) -> None:
        e.offset = value

    return _entry_edit(rng, p, k, f"offset {value}", edit)


def entry_size(rng: random.Random, p: Pristine, k: int) -> Input:
    value = rng.choice([BIG, 1 << 62, -1, len(p.data(k)) * 2, 1 << 33])

    def edit(e: w.Entry) -> None:
        e.size = value

    return _entry_edit(rng, p, k, f"size {value}", edit)


def entry_overflow(rng: random.Random, p: Pristine, k: int) -> Input:
    off = rng.choice([1 << 62, BIG - 3, (1 << 63) - (1 << 20)])

    def edit(e: w.Entry) -> None:
        e.offset, e.size = off, (1 << 63) - off + rng.randint(0, 1 << 20)

    return _entry_edit(rng, p, k, "offset + size >= 2^63", edit)


def dtype(rng: random.Random, p: Pristine, k: int) -> Input:
    value = rng.choice([999, 0, (1 << 31) - 1, -1, 30000, 250])

    def edit(e: w.Entry) -> None:
        e.dtype = value

    return _entry_edit(rng, p, k, f"dtype {value} (not a TensorFlow dtype)", edit)


def dims(rng: random.Random, p: Pristine, k: int) -> Input:
    value = rng.choice(
        [[-1], [-5, 2], [4, -1], [1 << 40], [1 << 31, 1 << 31, 1 << 31], [1] * 2000, [BIG, 2]]
    )

    def edit(e: w.Entry) -> None:
        e.dims = list(value)

    shown = value if len(value) < 5 else f"{len(value)} dims"
    return _entry_edit(rng, p, k, f"shape {shown}", edit, expect=("deep_not_healthy",), graph=False)


def string_count(rng: random.Random, p: Pristine, k: int) -> Input:
    """A string tensor declaring far more elements than its bytes can hold."""
    value = rng.choice([[1_000_000], [1 << 40], [1 << 62], [3, 1 << 30]])
    key = b"model/names/.ATTRIBUTES/VARIABLE_VALUE"
    entry = dict(p.entries(k))[key]
    entry.dims = list(value)
    items = _replace(p, k, key, entry.encode())
    return Input(
        f"ckpt-{k}.index: the 3-element string tensor `names` declares shape {value}, CRC-valid",
        [_write_index(k, _with_items(items))],
        expect=("deep_not_healthy",),
    )


def _slice(extents: list[tuple[int, int | None]]) -> bytes:
    fields: list[w.Field] = []
    for start, length in extents:
        extent: list[w.Field] = [(1, w.VARINT, start)]
        if length is not None:
            extent.append((2, w.VARINT, length))
        fields.append((1, w.BYTES, w.encode_fields(extent)))
    return w.encode_fields(fields)


def slices(rng: random.Random, p: Pristine, k: int) -> Input:
    """A variable recorded as sliced (TensorSliceProto extents) whose slices are not there."""
    choice = rng.choice(["missing_slices", "negative_start", "huge_length", "garbage", "many"])
    key = b"model/inner/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    entry = dict(p.entries(k))[key]
    entry.offset = entry.size = entry.crc = 0
    entry.slices = {
        "missing_slices": [_slice([(0, 3), (0, 2)])],
        "negative_start": [_slice([(-5, 3), (0, None)])],
        "huge_length": [_slice([(0, 1 << 62), (0, 2)])],
        "garbage": [b"\xff\xff\xff"],
        "many": [_slice([(i, 1), (0, 2)]) for i in range(3)] * 2000,
    }[choice]
    items = _replace(p, k, key, entry.encode())
    return Input(
        f"ckpt-{k}.index: kernel recorded as sliced ({choice}), no slice entries, CRC-valid",
        [_write_index(k, _with_items(items))],
        expect=("not_healthy",),  # TensorFlow cannot restore a slice that is not there
    )


def shard_id(rng: random.Random, p: Pristine, k: int) -> Input:
    value = rng.choice([1, 5, -1, (1 << 31) - 1])

    def edit(e: w.Entry) -> None:
        e.shard_id = value

    return _entry_edit(rng, p, k, f"shard_id {value} of 1 shard", edit)


def num_shards(rng: random.Random, p: Pristine, k: int) -> Input:
    value = rng.choice([0, -1, 2, 1 << 20, (1 << 31) - 1, 1 << 16])
    items = [(key, w.header(num_shards=value) if key == b"" else v) for key, v in p.tables[k].items]
    return Input(
        f"ckpt-{k}.index header num_shards = {value}, CRC-valid",
        [_write_index(k, _with_items(items))],
        expect=("not_healthy",),
    )


def header_bad(rng: random.Random, p: Pristine, k: int) -> Input:
    choice = rng.choice(["missing", "garbage", "big_endian", "future", "bad_consumer"])
    items = list(p.tables[k].items)
    if choice == "missing":
        items = [(key, v) for key, v in items if key]
    else:
        value = {
            "garbage": b"\xff\xff\xff",
            "big_endian": w.header(endianness=1),
            "future": w.header(producer=99, min_consumer=99),
            "bad_consumer": w.header(bad_consumer=1),
        }[choice]
        items = [(key, value if key == b"" else v) for key, v in items]
    expect = ("not_healthy",) if choice in ("missing", "garbage") else ()
    return Input(
        f"ckpt-{k}.index header {choice}, CRC-valid",
        [_write_index(k, _with_items(items))],
        expect=expect,
    )


def not_entry(rng: random.Random, p: Pristine, k: int) -> Input:
    """A value that is not a BundleEntryProto."""
    choice = rng.choice(["truncated_varint", "wrong_wire_type", "random", "empty_group", "huge"])
    value = {
        "truncated_varint": b"\x08\xff",
        "wrong_wire_type": w.encode_fields([(1, w.BYTES, b"not a dtype")]),
        "random": bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))),
        "empty_group": b"\x0b",  # start-group wire type, never closed
        "huge": w.encode_fields([(2, w.BYTES, b"\x12\x02\x08\x01" * 250_000)]),
    }[choice]
    key = _pick_entry(rng, p, k)
    items = _replace(p, k, key, value)
    expect = (
        ("not_healthy",) if choice in ("truncated_varint", "wrong_wire_type", "empty_group") else ()
    )
    return Input(
        f"ckpt-{k}.index entry {key.decode(errors='replace')} holds {choice} bytes, CRC-valid",
        [_write_index(k, _with_items(items))],
        expect=expect,
    )


def keys(rng: random.Random, p: Pristine, k: int) -> Input:
    choice = rng.choice(["duplicate", "unsorted", "binary_key", "long_key", "nested_key"])
    items = list(p.tables[k].items)
    if choice == "duplicate":
        items.insert(2, items[1])
    elif choice == "unsorted":
        items[1], items[-1] = items[-1], items[1]
    elif choice == "binary_key":
        items.append((b"\xff\xfe\x80 not utf-8", items[1][1]))
    elif choice == "long_key":
        items.append((b"z" * 100_000, items[1][1]))
    else:
        items.append((b"zz/" + b"a/" * 5000 + b".ATTRIBUTES/VARIABLE_VALUE", items[1][1]))
    return Input(f"ckpt-{k}.index keys: {choice}, CRC-valid", [_write_index(k, _with_items(items))])


def quadratic(rng: random.Random, p: Pristine, k: int) -> Input:
    """One data block of N entries and M index handles to it (a small file, N*M work)."""
    n = rng.choice([500, 2000])
    m = rng.choice([2000, 5000])
    real = list(p.tables[k].items)
    _, sample = real[-1]
    items = real + [(b"zz/%06d" % i, sample) for i in range(n - len(real))]
    contents = w.block(items)
    handle = w.handle(0, len(contents))
    index = [(b"zz/%06d/%06d" % (n, i), handle) for i in range(m)]
    table = w.build_table([items], index_entries=index).data
    return Input(
        f"ckpt-{k}.index: one block of {n} entries, {m} handles to it ({len(table):,} bytes)",
        [_write_index(k, table)],
    )


def many_entries(rng: random.Random, p: Pristine, k: int) -> Input:
    """Thousands of well-formed entries to the first 4 bytes of the shard (linear work)."""
    n = rng.choice([5000, 20000])
    head = p.data(k)[:4]
    value = w.Entry(dtype=1, dims=[1], offset=0, size=4, crc=w.mask(w.crc32c(head))).encode()
    real = list(p.tables[k].items)
    items = real + [(b"zz/%06d/.ATTRIBUTES/VARIABLE_VALUE" % i, value) for i in range(n)]
    table = _with_items(items, per_block=64)
    return Input(
        f"ckpt-{k}.index with {n} extra entries ({len(table):,} bytes)", [_write_index(k, table)]
    )


# ------------------------------------------------------------------------------------------
# Data shards and the object graph


def _graph(p: Pristine, k: int) -> tuple[w.Entry, bytes]:
    entry = dict(p.entries(k))[w.GRAPH_KEY]
    payload = p.data(k)[entry.offset : entry.offset + entry.size]
    (graph,) = w.read_string_tensor(payload)
    return entry, graph


def _new_graph(p: Pristine, k: int, graph: bytes, what: str) -> Input:
    """Append `graph` as the object-graph tensor (CRC-valid) and point the entry at it."""
    entry, _ = _graph(p, k)
    data = p.data(k)
    tensor, crc = w.string_tensor([graph])
    entry.offset, entry.size, entry.crc = len(data), len(tensor), crc
    items = _replace(p, k, w.GRAPH_KEY, entry.encode())
    return Input(
        f"ckpt-{k} object graph: {what} (data and index CRC-valid)",
        [
            Op("append", in_dir(f"{NAME}-{k}{DATA}"), data=tensor),
            _write_index(k, _with_items(items)),
        ],
        expect=("deep_not_healthy",),
    )


def graph_not_proto(rng: random.Random, p: Pristine, k: int) -> Input:
    choice = rng.choice(["random", "header_proto", "text", "truncated", "wrong_wire_type"])
    _, real = _graph(p, k)
    graph = {
        "random": bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))),
        "header_proto": w.encode_fields([(1, w.BYTES, w.header())]) + b"\x0b",
        "text": b"this is not a TrackableObjectGraph\n",
        "truncated": real[: len(real) // 2] + b"\x0a\xff\xff\xff\x0f",
        "wrong_wire_type": w.encode_fields([(1, w.VARINT, 5)]),
    }[choice]
    return _new_graph(p, k, graph, f"not a TrackableObjectGraph ({choice})")


def _nodes(graph: bytes) -> list[list[w.Field]]:
    return [
        w.decode_fields(v) for n, _t, v in w.decode_fields(graph) if n == 1 and isinstance(v, bytes)
    ]


def _encode_nodes(nodes: list[list[w.Field]]) -> bytes:
    return w.encode_fields([(1, w.BYTES, w.encode_fields(node)) for node in nodes])


def graph_node_range(rng: random.Random, p: Pristine, k: int) -> Input:
    _, real = _graph(p, k)
    nodes = _nodes(real)
    # node_id is an int32: a larger varint is truncated to its low 32 bits (2^32 + 99 -> 99)
    bad = rng.choice([len(nodes), 99, -1, (1 << 31) - 1, (1 << 32) + 99])
    which = rng.choice(["child", "slot"])
    if which == "child":
        reference = w.encode_fields([(1, w.VARINT, bad), (2, w.BYTES, b"ghost")])
        nodes[0] = [*nodes[0], (1, w.BYTES, reference)]
    else:
        slot = w.encode_fields([(1, w.VARINT, 1), (2, w.BYTES, b"m"), (3, w.VARINT, bad)])
        nodes[0] = [*nodes[0], (3, w.BYTES, slot)]
    return _new_graph(
        p, k, _encode_nodes(nodes), f"a {which} reference to node {bad} of {len(nodes)}"
    )


def graph_shapes(rng: random.Random, p: Pristine, k: int) -> Input:
    choice = rng.choice(["empty", "self_cycle", "deep_chain", "wide"])
    _, real = _graph(p, k)
    nodes = _nodes(real)
    if choice == "empty":
        graph = b""
    elif choice == "self_cycle":
        nodes[0] = [
            *nodes[0],
            (1, w.BYTES, w.encode_fields([(1, w.VARINT, 0), (2, w.BYTES, b"me")])),
        ]
        graph = _encode_nodes(nodes)
    elif choice == "deep_chain":
        depth = rng.choice([2000, 50_000])
        base = len(nodes)
        nodes[0] = [
            *nodes[0],
            (1, w.BYTES, w.encode_fields([(1, w.VARINT, base), (2, w.BYTES, b"c")])),
        ]
        for i in range(depth):
            child = w.encode_fields([(1, w.VARINT, base + i + 1), (2, w.BYTES, b"c")])
            nodes.append([(1, w.BYTES, child)] if i + 1 < depth else [])
        graph = _encode_nodes(nodes)
        choice = f"deep_chain of {depth}"
    else:
        width = 20_000
        base = len(nodes)
        refs = [
            (1, w.BYTES, w.encode_fields([(1, w.VARINT, base + i), (2, w.BYTES, b"n%d" % i)]))
            for i in range(width)
        ]
        nodes[0] = [*nodes[0], *refs]
        nodes += [[] for _ in range(width)]
        graph = _encode_nodes(nodes)
        choice = f"wide ({width} children)"
    out = _new_graph(p, k, graph, choice)
    out.expect = ("deep_not_healthy",) if choice == "empty" else ()
    return out


def string_length(rng: random.Random, p: Pristine, k: int) -> Input:
    """Bit rot in a string tensor's length varint (object graph or a string variable)."""
    strings = [(key, e) for key, e in p.entries(k) if e.dtype == w.DT_STRING and e.size]
    key, entry = rng.choice(strings)
    rot = rng.choice(
        [
            b"\xff" * 9 + b"\x7f",  # 2^70 - 1: more than 64 bits
            b"\x80" * 9 + b"\x02",  # 2^64
            b"\xff" * 9 + b"\x01",  # 2^64 - 1
            w.varint(entry.size + 1000),
            b"\xff\xff\xff\xff\x0f",
        ]
    )
    return Input(
        f"ckpt-{k} data: {len(rot)} bytes of rot at the length of {key.decode(errors='replace')}",
        [Op("patch", in_dir(f"{NAME}-{k}{DATA}"), data=rot, num=entry.offset)],
        expect=("deep_not_healthy",),
    )


def data_truncate(rng: random.Random, p: Pristine, k: int) -> Input:
    need = max(e.offset + e.size for _, e in p.entries(k))
    keep = rng.choice([0, 1, rng.randrange(need), need - 1])
    return Input(
        f"ckpt-{k} data shard truncated to {keep} of {len(p.data(k))} bytes",
        [Op("truncate", in_dir(f"{NAME}-{k}{DATA}"), num=keep)],
        expect=("not_healthy",),
    )


def data_flip(rng: random.Random, p: Pristine, k: int) -> Input:
    key, entry = rng.choice([(kk, e) for kk, e in p.entries(k) if e.size])
    ops = [
        Op(
            "xor",
            in_dir(f"{NAME}-{k}{DATA}"),
            num=entry.offset + rng.randrange(entry.size),
            mask=1 << rng.randrange(8),
        )
    ]
    return Input(
        f"ckpt-{k} data: a bit flipped inside {key.decode(errors='replace')}",
        ops,
        expect=("deep_not_healthy",),
    )


def data_extend(rng: random.Random, p: Pristine, k: int) -> Input:
    n = rng.choice([1, 100, 1 << 16])
    return Input(
        f"ckpt-{k} data shard extended by {n} bytes",
        [Op("append", in_dir(f"{NAME}-{k}{DATA}"), data=b"\0" * n)],
    )


INDEX_KINDS: dict[str, Generator] = {
    "bitflip": bitflip,
    "truncate_index": truncate_index,
    "extend_index": extend_index,
    "random_index": random_index,
    "magic": magic,
    "footer_handle": footer_handle,
    "index_handles": index_handles,
    "block_varints": block_varints,
    "entry_offset": entry_offset,
    "entry_size": entry_size,
    "entry_overflow": entry_overflow,
    "dtype": dtype,
    "dims": dims,
    "shard_id": shard_id,
    "string_count": string_count,
    "slices": slices,
    "num_shards": num_shards,
    "header_bad": header_bad,
    "not_entry": not_entry,
    "keys": keys,
    "quadratic": quadratic,
    "many_entries": many_entries,
    "graph_not_proto": graph_not_proto,
    "graph_node_range": graph_node_range,
    "graph_shapes": graph_shapes,
    "string_length": string_length,
    "data_truncate": data_truncate,
    "data_flip": data_flip,
    "data_extend": data_extend,
}
#: Heavier kinds are drawn less often (they cost seconds on unfixed code).
INDEX_WEIGHTS: dict[str, int] = {name: 4 for name in INDEX_KINDS}
INDEX_WEIGHTS.update({"bitflip": 8, "quadratic": 1, "many_entries": 1, "num_shards": 3})
