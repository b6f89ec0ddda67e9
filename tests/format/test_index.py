"""Tests for the pure-Python `.index` reader, deep data verification and CRC32C backends.

Every checkpoint here is written by TensorFlow itself; corruption is applied to real files.
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import struct
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from safeckpt import Cause, verify
from safeckpt._format import crc32c as crc32c_module
from safeckpt._format import shards
from safeckpt._format.crc32c import crc32c, mask, unmask
from safeckpt._format.index import BundleIndex, IndexFormatError, read_index
from safeckpt._format.shards import verify_data
from safeckpt._io.tf import tf
from testing.bundle import read_varint

BACKENDS = ["google_crc32c", "tensorflow-tfrecord", "numpy", "python"]


# --- checkpoints ----------------------------------------------------------------------------


def _variables(for_sharding: bool = False) -> dict[str, tf.Variable]:
    """Variables of many dtypes. TF 2.21's MaxShardSizePolicy loops forever on a string
    larger than max_shard_size and crashes on rank-2 strings, so `for_sharding` avoids both."""
    rng = np.random.default_rng(7)
    text = ["a", "", "héllo", "x" * (7 if for_sharding else 70_000), "end"]
    variables = {
        "f32": tf.Variable(np.arange(12, dtype=np.float32).reshape(3, 4)),
        "i64": tf.Variable(np.array([1, -2, 3], dtype=np.int64)),
        "bf16": tf.Variable(tf.constant([1.5, -2.5, 3.0], dtype=tf.bfloat16)),
        "scalar": tf.Variable(3.25),
        "empty": tf.Variable(tf.zeros([0, 3])),
        "big": tf.Variable(rng.standard_normal((128, 96)).astype(np.float32)),  # 48 KiB
        "text": tf.Variable(tf.constant(text)),
    }
    if not for_sharding:
        variables["words"] = tf.Variable(tf.constant([["ab", "c"], ["", "defg"]]))
    return variables


def _copy_checkpoint(prefix: str, dest: Path) -> str:
    dest.mkdir()
    base = os.path.basename(prefix)
    for name in tf.io.gfile.glob(prefix + ".*"):
        shutil.copy(name, dest / os.path.basename(name))
    return str(dest / base)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Prefixes of real checkpoints, keyed by kind."""
    root = tmp_path_factory.mktemp("ckpts")
    variables = _variables()
    out = {"plain": tf.train.Checkpoint(**variables).write(str(root / "plain" / "ckpt"))}
    out["saved"] = tf.train.Checkpoint(model=tf.Module(), **variables).save(
        str(root / "saved" / "ckpt")
    )
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=12_000)
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    out["sharded"] = tf.train.Checkpoint(**_variables(for_sharding=True)).write(
        str(root / "sharded" / "ckpt"), options=options
    )
    iterator = iter(tf.data.Dataset.range(10).shuffle(5, seed=1))
    next(iterator)
    out["variant"] = tf.train.Checkpoint(it=iterator).write(str(root / "variant" / "ckpt"))
    return out


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "google_crc32c" and request.param not in crc32c_module.available_backends():
        pytest.skip("the optional google-crc32c extra is not installed")  # others must work
    crc32c_module.set_backend(request.param)
    yield request.param
    crc32c_module.set_backend()


def _is_slice(key: bytes) -> bool:
    return key.startswith(b"\x00")  # slice keys: OrderedCode(0) + name + binary slice spec


def _is_utf8(key: bytes) -> bool:
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _shard(prefix: str, index: BundleIndex, shard: int) -> str:
    return f"{prefix}.data-{shard:05d}-of-{index.num_shards:05d}"


# --- index parsing --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "saved", "sharded", "variant"])
def test_entries_match_tf_reader(ckpts: dict[str, str], kind: str) -> None:
    prefix = ckpts[kind]
    index = read_index(prefix + ".index")
    reader = tf.train.load_checkpoint(prefix)
    full = {e.name: e for e in index.entries if not _is_slice(e.key)}
    assert set(full) == set(reader.get_variable_to_shape_map())
    for name, shape in reader.get_variable_to_shape_map().items():
        assert list(full[name].shape) == shape, name
        assert tf.as_dtype(full[name].dtype) == reader.get_variable_to_dtype_map()[name], name
    assert index.size_bytes == tf.io.gfile.stat(prefix + ".index").length
    assert [e.key for e in index.entries] == sorted(e.key for e in index.entries)


@pytest.mark.parametrize("kind", ["plain", "saved", "sharded", "variant"])
def test_required_shard_sizes_are_exact(ckpts: dict[str, str], kind: str) -> None:
    index = read_index(ckpts[kind] + ".index")
    actual = {
        i: tf.io.gfile.stat(_shard(ckpts[kind], index, i)).length for i in range(index.num_shards)
    }
    assert index.required_shard_sizes() == actual


def test_plain_entry_offsets_point_at_the_tensor_bytes(ckpts: dict[str, str]) -> None:
    prefix = ckpts["plain"]
    index = read_index(prefix + ".index")
    by_name = {e.name.split("/")[0]: e for e in index.entries}
    data = Path(_shard(prefix, index, 0)).read_bytes()
    expected = {
        "f32": (1, (3, 4), np.arange(12, dtype=np.float32).tobytes()),
        "i64": (9, (3,), np.array([1, -2, 3], dtype="<i8").tobytes()),
        "bf16": (14, (3,), tf.constant([1.5, -2.5, 3.0], tf.bfloat16).numpy().tobytes()),
        "scalar": (1, (), np.float32(3.25).tobytes()),
        "empty": (1, (0, 3), b""),
    }
    for short, (dtype, shape, raw) in expected.items():
        e = by_name[short]
        assert (e.dtype, e.shape, e.size, e.shard_id) == (dtype, shape, len(raw), 0)
        assert data[e.offset : e.offset + e.size] == raw
        assert unmask(e.crc32c) == crc32c(raw)
    assert by_name["text"].dtype == 7 and by_name["text"].shape == (5,)
    assert not any(e.is_slice_container for e in index.entries)


def test_sharded_checkpoint_has_binary_slice_entries(ckpts: dict[str, str]) -> None:
    index = read_index(ckpts["sharded"] + ".index")
    assert index.num_shards > 2
    container = next(e for e in index.entries if e.name == "big/.ATTRIBUTES/VARIABLE_VALUE")
    assert container.is_slice_container and container.size == 0 and container.shape == (128, 96)
    slices = [e for e in index.entries if _is_slice(e.key)]
    assert len(slices) >= 2 and len({e.shard_id for e in slices}) >= 2
    assert sum(e.size for e in slices) == 128 * 96 * 4
    assert sum(int(np.prod(e.shape)) for e in slices) == 128 * 96
    assert not all(_is_utf8(e.key) for e in slices)
    assert all(e.name.startswith("\x00big/") and "\\x" in e.name for e in slices)
    # TF 2.21's MaxShardSizePolicy silently drops zero-element variables.
    assert not any(e.name.startswith("empty/") for e in index.entries)


def test_ram_filesystem_checkpoint() -> None:
    prefix = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0]), s=tf.Variable("hi")).write(
        f"ram://safeckpt-test-{uuid.uuid4().hex}/ckpt"
    )
    index = read_index(prefix + ".index")
    assert {e.name for e in index.entries} == {
        "_CHECKPOINTABLE_OBJECT_GRAPH",
        "s/.ATTRIBUTES/VARIABLE_VALUE",
        "v/.ATTRIBUTES/VARIABLE_VALUE",
    }
    assert verify_data(prefix, index) == []
    tf.io.gfile.remove(_shard(prefix, index, 0))
    assert [p.kind for p in verify_data(prefix, index)] == ["missing_shard"]


def test_missing_index_raises_not_found(tmp_path: Path) -> None:
    # Locally a FileNotFoundError worded as TensorFlow's NotFoundError (no TF import).
    with pytest.raises(FileNotFoundError, match="nope.index: No such file or directory"):
        read_index(str(tmp_path / "nope.index"))


def test_unreadable_index(tmp_path: Path) -> None:
    (tmp_path / "dir.index").mkdir()
    with pytest.raises(IndexFormatError) as info:
        read_index(str(tmp_path / "dir.index"))
    assert info.value.reason == "unreadable"
    assert info.value.path == str(tmp_path / "dir.index")


# --- corrupted indexes ----------------------------------------------------------------------


def _block_spans(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of every block, decoded independently of the module under test."""
    footer = data[-48:]
    meta_off, pos = read_varint(footer, 0)
    meta_size, pos = read_varint(footer, pos)
    index_off, pos = read_varint(footer, pos)
    index_size, pos = read_varint(footer, pos)
    block = data[index_off : index_off + index_size]
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit, pos, spans = len(block) - 4 * (restarts + 1), 0, []
    while pos < limit:
        _, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        vlen, pos = read_varint(block, pos)
        off, p = read_varint(block, pos + unshared)
        size, _ = read_varint(block, p)
        spans.append((off, size))
        pos += unshared + vlen
    return [*spans, (meta_off, meta_size), (index_off, index_size)]


def _parse_bytes(tmp_path: Path, data: bytes) -> BundleIndex:
    path = tmp_path / "x.index"
    path.write_bytes(data)
    return read_index(str(path))


def _reason(tmp_path: Path, data: bytes) -> str | None:
    try:
        _parse_bytes(tmp_path, data)
    except IndexFormatError as exc:
        assert str(tmp_path / "x.index") in str(exc)
        return exc.reason
    return None


@pytest.fixture(scope="module")
def index_bytes(ckpts: dict[str, str]) -> bytes:
    return Path(ckpts["sharded"] + ".index").read_bytes()


def test_blocks_cover_everything_before_the_footer(index_bytes: bytes) -> None:
    spans = sorted(_block_spans(index_bytes))
    assert len(spans) >= 3
    pos = 0
    for off, size in spans:
        assert off == pos
        pos = off + size + 5
    assert pos == len(index_bytes) - 48


def test_truncation_at_every_length(tmp_path: Path, index_bytes: bytes) -> None:
    for n in range(len(index_bytes)):
        expected = "too_short" if n < 48 else "bad_magic"
        assert _reason(tmp_path, index_bytes[:n]) == expected, n


def test_random_bytes(tmp_path: Path) -> None:
    rng = random.Random(1)
    magic = struct.pack("<Q", 0xDB4775248B80FB57)
    for n in [*range(0, 60), 100, 1000, 5000]:
        junk = rng.randbytes(n)
        assert _reason(tmp_path, junk) == ("too_short" if n < 48 else "bad_magic")
        if n >= 40:
            assert _reason(tmp_path, junk + magic) in ("malformed", "block_checksum")


def test_flipping_any_block_byte_is_a_block_checksum_error(
    tmp_path: Path, index_bytes: bytes
) -> None:
    for pos in range(len(index_bytes) - 48):
        bad = bytearray(index_bytes)
        bad[pos] ^= 0x5A
        assert _reason(tmp_path, bytes(bad)) == "block_checksum", pos


def test_flipping_footer_bytes(tmp_path: Path, index_bytes: bytes) -> None:
    good = _parse_bytes(tmp_path, index_bytes)
    for pos in range(len(index_bytes) - 48, len(index_bytes)):
        bad = bytearray(index_bytes)
        bad[pos] ^= 0x01
        try:
            assert _parse_bytes(tmp_path, bytes(bad)).entries == good.entries  # padding
        except IndexFormatError as exc:
            expected = (
                ("bad_magic",) if pos >= len(index_bytes) - 8 else ("malformed", "block_checksum")
            )
            assert exc.reason in expected, pos


def _with_fixed_crcs(data: bytearray, spans: list[tuple[int, int]]) -> bytes:
    for off, size in spans:
        struct.pack_into(
            "<I", data, off + size + 1, mask(crc32c(bytes(data[off : off + size + 1])))
        )
    return bytes(data)


def test_structural_damage_behind_valid_crcs(tmp_path: Path, index_bytes: bytes) -> None:
    rng = random.Random(3)
    spans = _block_spans(index_bytes)  # data blocks..., meta-index, index
    outcomes: dict[bool, set[str | None]] = {True: set(), False: set()}
    for _ in range(800):
        which = rng.randrange(len(spans))
        off, size = spans[which]
        bad = bytearray(index_bytes)
        for _ in range(rng.randint(1, 3)):
            bad[off + rng.randrange(size)] = rng.randrange(256)
        try:
            reason = _reason(tmp_path, _with_fixed_crcs(bad, spans))
        except Exception as exc:  # pragma: no cover - the failure message explains it
            pytest.fail(f"leaked {type(exc).__name__}: {exc}")
        outcomes[which == len(spans) - 1].add(reason)
    # Damaged entries: malformed or (e.g. a changed string value) still valid.
    assert outcomes[False] == {None, "malformed"}
    # A damaged index block may also point at the wrong bytes: their CRC no longer matches.
    assert outcomes[True] <= {None, "malformed", "block_checksum"}
    assert "malformed" in outcomes[True]


def test_compressed_block_is_rejected(tmp_path: Path, index_bytes: bytes) -> None:
    spans = _block_spans(index_bytes)
    bad = bytearray(index_bytes)
    bad[spans[0][0] + spans[0][1]] = 1  # snappy
    with pytest.raises(IndexFormatError, match="compression type 1") as info:
        _parse_bytes(tmp_path, _with_fixed_crcs(bad, spans))
    assert info.value.reason == "malformed"


def test_restart_array_must_point_at_full_keys(tmp_path: Path, index_bytes: bytes) -> None:
    spans = _block_spans(index_bytes)
    off, size = spans[0]
    (restarts,) = struct.unpack_from("<I", index_bytes, off + size - 4)
    first_restart = off + size - 4 * (restarts + 1)
    assert struct.unpack_from("<I", index_bytes, first_restart) == (0,)
    bad = bytearray(index_bytes)
    struct.pack_into("<I", bad, first_restart, 1)  # inside the first entry
    with pytest.raises(IndexFormatError, match="restart array") as info:
        _parse_bytes(tmp_path, _with_fixed_crcs(bad, spans))
    assert info.value.reason == "malformed"


def test_error_message_and_pickle(tmp_path: Path, index_bytes: bytes) -> None:
    bad = bytearray(index_bytes)
    bad[10] ^= 1
    with pytest.raises(IndexFormatError) as info:
        _parse_bytes(tmp_path, bytes(bad))
    err = info.value
    assert err.reason == "block_checksum" and err.path.endswith("x.index")
    assert "at bytes 0.." in str(err) and "CRC32C" in str(err)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.reason, str(copy)) == (err.path, err.reason, str(err))


# --- deep verification ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "saved", "sharded", "variant"])
def test_intact_checkpoint_verifies(ckpts: dict[str, str], kind: str, backend: str) -> None:
    index = read_index(ckpts[kind] + ".index")
    calls: list[tuple[int, int]] = []
    assert verify_data(ckpts[kind], index, progress=lambda d, t: calls.append((d, t))) == []
    total = sum(e.size for e in index.entries if not e.is_slice_container)
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_progress_is_reported_in_bounded_chunks(
    ckpts: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shards, "_CHUNK", 4096)
    index = read_index(ckpts["plain"] + ".index")
    calls: list[int] = []
    assert verify_data(ckpts["plain"], index, progress=lambda d, t: calls.append(d)) == []
    steps = np.diff([0, *calls])
    assert len(calls) > 20 and steps.max() <= 4096 and steps.min() >= 0


@pytest.mark.parametrize("kind", ["plain", "sharded", "variant"])
def test_flipped_data_byte_is_one_mismatch_for_that_key(
    ckpts: dict[str, str], kind: str, tmp_path: Path
) -> None:
    prefix = _copy_checkpoint(ckpts[kind], tmp_path / "copy")
    index = read_index(prefix + ".index")
    entries = [e for e in index.entries if e.size > 0]
    assert len(entries) >= 2
    for e in entries:
        shard = Path(_shard(prefix, index, e.shard_id))
        original = shard.read_bytes()
        for pos in sorted({e.offset, e.offset + e.size // 2, e.offset + e.size - 1}):
            bad = bytearray(original)
            bad[pos] ^= 0x10
            shard.write_bytes(bytes(bad))
            problems = verify_data(prefix, index)
            assert [(p.key_name, p.kind) for p in problems] == [(e.name, "checksum_mismatch")]
            assert problems[0].shard_file == str(shard)
            if kind == "plain":  # TF agrees: its own reader refuses the tensor
                with pytest.raises(tf.errors.OpError):  # DataLossError; UNKNOWN for strings
                    tf.train.load_checkpoint(prefix).get_tensor(e.name)
        shard.write_bytes(original)
    assert verify_data(prefix, index) == []


def test_truncated_shard(ckpts: dict[str, str], tmp_path: Path) -> None:
    prefix = _copy_checkpoint(ckpts["sharded"], tmp_path / "copy")
    index = read_index(prefix + ".index")
    in_shard = sorted(
        (e for e in index.entries if e.shard_id == 0 and e.size), key=lambda e: e.offset
    )
    shard = Path(_shard(prefix, index, 0))
    data = shard.read_bytes()
    shard.write_bytes(data[:-1])
    problems = verify_data(prefix, index)
    assert [(p.key_name, p.kind) for p in problems] == [(in_shard[-1].name, "truncated")]
    shard.write_bytes(data[: in_shard[0].offset + 1])
    problems = verify_data(prefix, index)
    assert {p.key_name for p in problems} == {e.name for e in in_shard}
    assert {p.kind for p in problems} == {"truncated"}


def test_missing_shard_is_reported_once(ckpts: dict[str, str], tmp_path: Path) -> None:
    prefix = _copy_checkpoint(ckpts["sharded"], tmp_path / "copy")
    index = read_index(prefix + ".index")
    assert sum(1 for e in index.entries if e.shard_id == 1 and e.size) >= 1
    os.remove(_shard(prefix, index, 1))
    calls: list[tuple[int, int]] = []
    problems = verify_data(prefix, index, progress=lambda d, t: calls.append((d, t)))
    assert [(p.key_name, p.kind, p.shard_file) for p in problems] == [
        ("", "missing_shard", _shard(prefix, index, 1))
    ]
    assert calls[-1][0] == calls[-1][1]


def test_a_directory_in_place_of_a_shard_is_reported_once(
    ckpts: dict[str, str], tmp_path: Path
) -> None:
    prefix = _copy_checkpoint(ckpts["plain"], tmp_path / "copy")
    index = read_index(prefix + ".index")
    shard = _shard(prefix, index, 0)
    os.remove(shard)
    os.mkdir(shard)  # exists, but is no file: the shard is gone (not a storage hiccup)
    (problem,) = verify_data(prefix, index)
    assert (problem.kind, problem.shard_file) == ("missing_shard", shard)
    assert problem.key_name == ""  # the whole shard, found before any tensor is read


def test_string_length_corruption_is_caught(ckpts: dict[str, str], tmp_path: Path) -> None:
    prefix = _copy_checkpoint(ckpts["plain"], tmp_path / "copy")
    index = read_index(prefix + ".index")
    text = next(e for e in index.entries if e.name.startswith("text/"))
    shard = Path(_shard(prefix, index, 0))
    bad = bytearray(shard.read_bytes())
    bad[text.offset + 2] ^= 0x01  # third string's varint length: 6 -> 7
    shard.write_bytes(bytes(bad))
    (problem,) = verify_data(prefix, index)
    assert problem.kind == "checksum_mismatch" and "lengths" in problem.detail


@pytest.mark.parametrize(
    "rot", [b"\xff" * 9 + b"\x7f", b"\x80" * 9 + b"\x02", b"\xff" * 9 + b"\x01"]
)
def test_a_string_length_of_64_bits_or_more_is_a_mismatch(
    ckpts: dict[str, str], tmp_path: Path, rot: bytes
) -> None:
    # Ten bytes of bit rot in a string tensor's first length varint (2**64 and more): a bare
    # struct.error once (the length was packed as a 64-bit field).
    prefix = _copy_checkpoint(ckpts["plain"], tmp_path / "copy")
    index = read_index(prefix + ".index")
    text = next(e for e in index.entries if e.name.startswith("text/"))
    shard = Path(_shard(prefix, index, 0))
    bad = bytearray(shard.read_bytes())
    bad[text.offset : text.offset + 10] = rot
    shard.write_bytes(bytes(bad))
    (problem,) = verify_data(prefix, index)
    assert problem.kind == "checksum_mismatch" and "overruns" in problem.detail
    assert verify(prefix, deep=True).cause is Cause.CORRUPT_DATA


# --- CRC32C ---------------------------------------------------------------------------------


def test_crc32c_known_values(backend: str) -> None:
    assert backend == crc32c_module.BACKEND
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(b"") == 0


def test_crc32c_streams_and_agrees_across_backends(backend: str) -> None:
    rng = random.Random(5)
    data = rng.randbytes(3 * 1024 * 1024 + 12345)
    reference = crc32c_module._extend_python(0, data)
    assert crc32c(data) == reference
    assert crc32c(memoryview(data)) == reference
    assert crc32c(bytearray(data)) == reference
    for _ in range(5):
        cut = rng.randrange(len(data))
        assert crc32c(data[cut:], crc32c(data[:cut])) == reference


def test_mask_round_trip() -> None:
    rng = random.Random(9)
    for value in [0, 1, 0xFFFFFFFF, *(rng.getrandbits(32) for _ in range(100))]:
        assert unmask(mask(value)) == value
    assert mask(0) == 0xA282EAD8
    assert mask(crc32c(b"foo")) != crc32c(b"foo")


def test_all_fallbacks_work_here() -> None:
    assert {"tensorflow-tfrecord", "numpy", "python"} <= set(crc32c_module.available_backends())


def test_fallback_is_chosen_without_google_crc32c(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google_crc32c", None)  # makes the import fail
    try:
        assert "google_crc32c" not in crc32c_module.available_backends()
        assert crc32c_module.set_backend() == "tensorflow-tfrecord"
        assert crc32c(b"123456789") == 0xE3069283
        with pytest.raises(ValueError, match="not available"):
            crc32c_module.set_backend("google_crc32c")
    finally:
        monkeypatch.undo()
        crc32c_module.set_backend()


@pytest.mark.parametrize("kind", ["plain", "saved", "sharded", "variant"])
def test_the_object_graph_read_from_the_index_equals_tensorflows_reader(
    ckpts: dict[str, str], kind: str
) -> None:
    # safeckpt reads shapes, dtypes and the object graph with its own parser (two reads on
    # remote storage); TensorFlow's CheckpointReader is the reference it must agree with.
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    from safeckpt._format.graph import OBJECT_GRAPH_KEY, read_checkpoint_graph

    own = read_checkpoint_graph(ckpts[kind])
    reader = tf.train.load_checkpoint(ckpts[kind])
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(
        reader.get_tensor(OBJECT_GRAPH_KEY)
    )
    assert own.children == {
        i: {c.local_name: c.node_id for c in node.children} for i, node in enumerate(graph.nodes)
    }
    values = {
        a.checkpoint_key
        for node in graph.nodes
        for a in node.attributes
        if a.name == "VARIABLE_VALUE" and a.checkpoint_key in shapes
    }
    assert sorted(e.key for e in own.entries) == sorted(values)
    for entry in own.entries:
        assert (list(entry.shape), entry.dtype) == (shapes[entry.key], dtypes[entry.key].name)
    assert own.children and not own.name_based


def test_a_damaged_object_graph_is_diagnosed_never_read_by_tensorflow(
    ckpts: dict[str, str], tmp_path: Path
) -> None:
    from safeckpt._format.graph import OBJECT_GRAPH_KEY, read_checkpoint_graph

    prefix = _copy_checkpoint(ckpts["saved"], tmp_path / "copy")
    index = read_index(prefix + ".index")
    entry = next(e for e in index.entries if e.name == OBJECT_GRAPH_KEY)
    shard = _shard(prefix, index, entry.shard_id)
    data = bytearray(Path(shard).read_bytes())
    data[entry.offset + entry.size - 1] ^= 0xFF
    Path(shard).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):  # the CRC32C caught it
        read_checkpoint_graph(prefix)
    found = verify(prefix)  # the quick check reads the object graph too
    assert found.cause is Cause.CORRUPT_DATA
    assert OBJECT_GRAPH_KEY in "".join(found.evidence)


# --- bounded work for hostile tables (issue 19) ---------------------------------------------


def _entry_value(offset: int) -> bytes:
    from tensorflow.core.protobuf import tensor_bundle_pb2

    proto = tensor_bundle_pb2.BundleEntryProto(dtype=1, offset=offset, size=4)
    proto.shape.dim.add(size=1)
    return proto.SerializeToString()


def _measured_parse(
    tmp_path: Path, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> tuple[str | None, int, int]:
    """The parse's outcome, the bytes it checksummed and its peak Python memory."""
    import tracemalloc

    from safeckpt._format import index as index_module

    checksummed = [0]
    real = index_module.crc32c

    def counting(view: object, *args: int) -> int:
        checksummed[0] += len(view)  # type: ignore[arg-type]
        return real(view, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(index_module, "crc32c", counting)
    tracemalloc.start()
    try:
        reason = _reason(tmp_path, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return reason, checksummed[0], peak


def test_many_handles_to_one_block_are_rejected_in_linear_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testing.bundle import Table, block, header

    # One data block of 2,000 entries and an index block of 5,000 handles to it (~100 KB):
    # decoded once per handle, it took 12-22 s and 1.1-1.6 GB before it was rejected.
    items = [(b"", header()), *((b"v%05d" % i, _entry_value(4 * i)) for i in range(1999))]
    table = Table()
    handle = table.add(block(items))
    data = table.finish([(items[-1][0], handle)] * 5000)
    reason, checksummed, peak = _measured_parse(tmp_path, data, monkeypatch)
    assert reason == "malformed"
    assert checksummed <= len(data)  # every block checksummed at most once
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_block_handles_must_increase(tmp_path: Path) -> None:
    from testing.bundle import Table, block, header

    table = Table()
    first = table.add(block([(b"", header()), (b"a", _entry_value(0))]))
    second = table.add(block([(b"b", _entry_value(4))]))
    good = table.finish([(b"a", first), (b"b", second)])
    assert len(_parse_bytes(tmp_path, good).entries) == 2  # the writer is sound
    table = Table()
    first = table.add(block([(b"", header()), (b"a", _entry_value(0))]))
    second = table.add(block([(b"b", _entry_value(4))]))
    assert _reason(tmp_path, table.finish([(b"b", second), (b"a", first)])) == "malformed"


def test_prefix_compressed_keys_cannot_expand_quadratically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testing.bundle import Table, varint

    # Each key repeats the previous one and adds a byte: 20,000 entries (~80 KB) would
    # decode into 200 MB of keys.
    raw = bytearray()
    for i in range(20_000):
        raw += varint(i) + varint(1) + varint(0) + b"a"
    raw += struct.pack("<II", 0, 1)
    table = Table()
    handle = table.add(bytes(raw))
    data = table.finish([(b"b", handle)])
    reason, _, peak = _measured_parse(tmp_path, data, monkeypatch)
    assert reason == "malformed"
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB"
