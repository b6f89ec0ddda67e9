"""safeckpt's own protocol buffer classes decode what TensorFlow's do, field by field (issue 24).

`safeckpt._format.protos` builds ``CheckpointState``, ``BundleHeaderProto``,
``BundleEntryProto`` and ``TrackableObjectGraph`` without TensorFlow. The oracle is
TensorFlow's own generated classes, fed the same bytes from real checkpoints (written by
`tf.train.Checkpoint.write`, a manager, a sharding policy and a Keras model); the index is read
by the tests' independent table reader (testing/bundle.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import descriptor_pb2, text_format
from tensorflow.core.protobuf import tensor_bundle_pb2, trackable_object_graph_pb2
from tensorflow.python.training import checkpoint_state_pb2

from safeckpt._format import dtypes, protos
from testing.bundle import read_table

PAIRS = [
    (protos.CheckpointState, checkpoint_state_pb2.CheckpointState),
    (protos.BundleHeaderProto, tensor_bundle_pb2.BundleHeaderProto),
    (protos.BundleEntryProto, tensor_bundle_pb2.BundleEntryProto),
    (protos.TrackableObjectGraph, trackable_object_graph_pb2.TrackableObjectGraph),
]
ENUM = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
INT32 = descriptor_pb2.FieldDescriptorProto.TYPE_INT32


def _repeated(field: Any) -> bool:
    """Whether a field is repeated (protobuf 7 dropped ``label`` for ``is_repeated``)."""
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return bool(field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)


def same(ours: Any, theirs: Any, where: str = "") -> None:
    """Every field of TensorFlow's message equals ours (recursively; enums as numbers)."""
    for field in theirs.DESCRIPTOR.fields:
        name, at = field.name, f"{where}.{field.name}"
        mine, tf_value = getattr(ours, name), getattr(theirs, name)
        if field.message_type is not None and _repeated(field):
            assert len(mine) == len(tf_value), at
            for n, (a, b) in enumerate(zip(mine, tf_value, strict=True)):
                same(a, b, f"{at}[{n}]")
        elif field.message_type is not None:
            assert ours.HasField(name) == theirs.HasField(name), at
            same(mine, tf_value, at)
        elif _repeated(field):
            assert list(mine) == list(tf_value), at
        else:
            assert mine == tf_value, at
        if field.containing_oneof is not None:  # its name differs between TF versions
            assert ours.HasField(name) == theirs.HasField(name), at


def _descriptor_fields(descriptor: Any, prefix: str = "") -> dict[str, tuple[Any, ...]]:
    found = {}
    for field in descriptor.fields:
        kind = INT32 if field.type == ENUM else field.type
        message = field.message_type.name if field.message_type else None
        oneof = field.containing_oneof is not None  # TF 2.16 "has_length", 2.21 "..._hack"
        found[f"{prefix}{field.name}"] = (field.number, _repeated(field), kind, message, oneof)
        if field.message_type is not None and field.message_type is not descriptor:
            found |= _descriptor_fields(field.message_type, f"{prefix}{field.name}.")
    return found


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=lambda c: c.DESCRIPTOR.name)
def test_the_descriptors_are_tensorflows(ours: Any, theirs: Any) -> None:
    assert ours.DESCRIPTOR.name == theirs.DESCRIPTOR.name
    assert ours.DESCRIPTOR.full_name.startswith("safeckpt_format.")  # never TF's names
    assert _descriptor_fields(ours.DESCRIPTOR) == _descriptor_fields(theirs.DESCRIPTOR)


def _keras_checkpoint(directory: Path) -> str:
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    optimizer = keras.optimizers.Adam(0.01)
    model.compile(optimizer, "mse")
    x = np.arange(24, dtype="float32").reshape(8, 3)
    model.fit(x, x.sum(axis=1), epochs=1, verbose=0)
    return str(tf.train.Checkpoint(model=model, optimizer=optimizer).write(str(directory / "k")))


@pytest.fixture(scope="module")
def prefixes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("protos")
    variables = {
        "f32": tf.Variable(np.arange(12, dtype=np.float32).reshape(3, 4)),
        "i64": tf.Variable(np.array([1, -2, 3], dtype=np.int64)),
        "text": tf.Variable(tf.constant(["a", "", "héllo"])),
        "big": tf.Variable(np.ones((64, 64), dtype=np.float32)),
    }
    found = {"write": str(tf.train.Checkpoint(**variables).write(str(root / "w" / "ckpt")))}
    step = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(step=step, **variables), str(root / "m"), max_to_keep=2
    )
    for _ in range(3):
        step.assign_add(1)
        found["manager"] = manager.save()
    if hasattr(tf.train.experimental, "MaxShardSizePolicy"):
        policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=8_000)
        options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
        prefix = tf.train.Checkpoint(**variables).write(str(root / "s" / "ckpt"), options=options)
        found["sharded"] = str(prefix)
    found["keras"] = _keras_checkpoint(root)
    return found


@pytest.mark.parametrize("kind", ["write", "manager", "sharded", "keras"])
def test_index_values_decode_as_tensorflow_decodes_them(
    prefixes: dict[str, str], kind: str
) -> None:
    if kind not in prefixes:
        pytest.skip("this TensorFlow has no MaxShardSizePolicy")
    items = read_table(Path(prefixes[kind] + ".index").read_bytes())
    assert items[0][0] == b""
    header = protos.BundleHeaderProto.FromString(items[0][1])
    same(header, tensor_bundle_pb2.BundleHeaderProto.FromString(items[0][1]))
    if kind == "sharded":
        assert header.num_shards > 1
    for key, value in items[1:]:
        same(
            protos.BundleEntryProto.FromString(value),
            tensor_bundle_pb2.BundleEntryProto.FromString(value),
            repr(key),
        )
    assert len(items) > 4


@pytest.mark.parametrize("kind", ["write", "manager", "sharded", "keras"])
def test_the_object_graph_decodes_as_tensorflow_decodes_it(
    prefixes: dict[str, str], kind: str
) -> None:
    if kind not in prefixes:
        pytest.skip("this TensorFlow has no MaxShardSizePolicy")
    raw = tf.train.load_checkpoint(prefixes[kind]).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    ours = protos.TrackableObjectGraph.FromString(raw)
    theirs = trackable_object_graph_pb2.TrackableObjectGraph.FromString(raw)
    same(ours, theirs)
    assert len(ours.nodes) > 2
    if kind == "keras":  # the model's weights and the optimizer's moments and counters
        assert sum(len(node.attributes) for node in ours.nodes) >= 8
    assert ours.SerializeToString() == raw


def test_slices_and_wrappers_round_trip_between_the_two() -> None:
    # Fields real checkpoints here leave empty: a partitioned variable's slices (with and
    # without a length) and the has_checkpoint_values wrapper.
    theirs = tensor_bundle_pb2.BundleEntryProto(dtype=1, shard_id=2, offset=9, size=16)
    theirs.shape.dim.add(size=4)
    theirs.shape.dim.add(size=-1, name="n")
    piece = theirs.slices.add()
    piece.extent.add(start=0, length=2)
    piece.extent.add()
    theirs.crc32c = 0xFFFFFFFF
    ours = protos.BundleEntryProto.FromString(theirs.SerializeToString())
    same(ours, theirs)
    assert ours.SerializeToString() == theirs.SerializeToString()
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    node = graph.nodes.add()
    node.has_checkpoint_values.value = True
    node.registered_saver.name = "saver"
    same(protos.TrackableObjectGraph.FromString(graph.SerializeToString()), graph)


def test_state_files_parse_as_tensorflow_parses_them(prefixes: dict[str, str]) -> None:
    text = (Path(prefixes["manager"]).parent / "checkpoint").read_text()
    ours, theirs = protos.CheckpointState(), checkpoint_state_pb2.CheckpointState()
    text_format.Merge(text, ours)
    text_format.Merge(text, theirs)
    same(ours, theirs)
    assert len(ours.all_model_checkpoint_paths) == 2


def test_repairs_state_text_is_byte_identical_to_what_tensorflow_writes(
    prefixes: dict[str, str],
) -> None:
    written = (Path(prefixes["manager"]).parent / "checkpoint").read_text()
    state = checkpoint_state_pb2.CheckpointState()
    text_format.Merge(written, state)
    ours = protos.state_text(
        state.model_checkpoint_path,
        list(state.all_model_checkpoint_paths),
        list(state.all_model_checkpoint_timestamps),
        state.last_preserved_timestamp,
    )
    assert ours == written
    from tensorflow.python.checkpoint import checkpoint_management

    odd = [1.0, 1e-7, 123456789.123456789, 1e300]
    proto = checkpoint_management.generate_checkpoint_state_proto(
        "/d",
        "/d/c-4",
        all_model_checkpoint_paths=["/d/c-1", "/d/c-2", "/d/c-3", "/d/c-4"],
        all_model_checkpoint_timestamps=odd,
        last_preserved_timestamp=0.5,
    )
    expected = text_format.MessageToString(proto)
    assert protos.state_text("/d/c-4", ["/d/c-1", "/d/c-2", "/d/c-3", "/d/c-4"], odd, 0.5) == (
        expected
    )


def test_the_dtype_table_is_tensorflows() -> None:
    known = 0
    for number in range(300):
        try:
            theirs = tf.as_dtype(number)
        except TypeError:
            continue
        known += 1
        ours = dtypes.dtype(number)
        size = theirs.size if theirs.is_numpy_compatible else 0
        assert (ours.name, ours.size) == (theirs.name, size), number
        assert dtypes.named(theirs.name) == ours
    assert known >= 50  # TF 2.16 knows 54, 2.21 66
    with pytest.raises(TypeError):
        dtypes.dtype(0)


def test_tensorflow_imported_after_ours_keeps_its_own_classes() -> None:
    code = (
        "import sys\n"
        "from safeckpt._format import protos\n"
        "assert 'tensorflow' not in sys.modules\n"
        "from tensorflow.core.protobuf import tensor_bundle_pb2 as b\n"
        "raw = b.BundleEntryProto(dtype=3, size=8).SerializeToString()\n"
        "ours = protos.BundleEntryProto.FromString(raw)\n"
        "print(b.BundleEntryProto.DESCRIPTOR.full_name, ours.size)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["tensorflow.BundleEntryProto", "8"]
