"""The protocol buffers of a checkpoint's files, decoded without TensorFlow.

``CheckpointState`` (the ``checkpoint`` state file, text format), ``BundleHeaderProto`` and
``BundleEntryProto`` (the ``.index`` table's values) and ``TrackableObjectGraph`` (the
object graph, a binary string tensor). Their message classes are built at import from the
descriptors below, written from TensorFlow's ``.proto`` files, with the ``protobuf``
package (which TensorFlow depends on and which imports without it).

They live in a `DescriptorPool` of their own under the package ``safeckpt_format``, never in
protobuf's default pool: importing TensorFlow later in the same process registers its own
``tensorflow.BundleEntryProto`` and friends there, which must not conflict. The field
numbers and types are TensorFlow's, so the bytes and the text are the same; enum fields
(``BundleEntryProto.dtype``, ``BundleHeaderProto.endianness``) are declared as ``int32``
(the same wire encoding; proto3 enums accept any number). ``BoolValue`` is a one-field
message of its own (the wire format of ``google.protobuf.BoolValue``). The one oneof,
``TensorSliceProto.Extent``'s, is named as in TF 2.21 (``has_length_hack``; 2.16 says
``has_length``): only ``HasField("length")`` is used, the same in both.

The tests compare every field with TensorFlow's own classes on real checkpoints.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "safeckpt_format"

_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_TYPES = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "fixed32": descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
}

#: message -> (field, number, type or message name, repeated, oneof); nested messages are
#: written ``Outer.Inner``. From TensorFlow's checkpoint_state.proto, tensor_bundle.proto,
#: tensor_shape.proto, tensor_slice.proto, versions.proto, trackable_object_graph.proto.
_MESSAGES: dict[str, list[tuple[str, int, str, bool, str | None]]] = {
    "CheckpointState": [
        ("model_checkpoint_path", 1, "string", False, None),
        ("all_model_checkpoint_paths", 2, "string", True, None),
        ("all_model_checkpoint_timestamps", 3, "double", True, None),
        ("last_preserved_timestamp", 4, "double", False, None),
    ],
    "VersionDef": [
        ("producer", 1, "int32", False, None),
        ("min_consumer", 2, "int32", False, None),
        ("bad_consumers", 3, "int32", True, None),
    ],
    "BundleHeaderProto": [
        ("num_shards", 1, "int32", False, None),
        ("endianness", 2, "int32", False, None),
        ("version", 3, "VersionDef", False, None),
    ],
    "TensorShapeProto.Dim": [
        ("size", 1, "int64", False, None),
        ("name", 2, "string", False, None),
    ],
    "TensorShapeProto": [
        ("dim", 2, "TensorShapeProto.Dim", True, None),
        ("unknown_rank", 3, "bool", False, None),
    ],
    "TensorSliceProto.Extent": [
        ("start", 1, "int64", False, None),
        ("length", 2, "int64", False, "has_length_hack"),
    ],
    "TensorSliceProto": [("extent", 1, "TensorSliceProto.Extent", True, None)],
    "BundleEntryProto": [
        ("dtype", 1, "int32", False, None),
        ("shape", 2, "TensorShapeProto", False, None),
        ("shard_id", 3, "int32", False, None),
        ("offset", 4, "int64", False, None),
        ("size", 5, "int64", False, None),
        ("crc32c", 6, "fixed32", False, None),
        ("slices", 7, "TensorSliceProto", True, None),
    ],
    "BoolValue": [("value", 1, "bool", False, None)],
    "RegisteredSaver": [
        ("name", 1, "string", False, None),
        ("object_name", 2, "string", False, None),
    ],
    "TrackableObjectGraph.TrackableObject.ObjectReference": [
        ("node_id", 1, "int32", False, None),
        ("local_name", 2, "string", False, None),
    ],
    "TrackableObjectGraph.TrackableObject.SerializedTensor": [
        ("name", 1, "string", False, None),
        ("full_name", 2, "string", False, None),
        ("checkpoint_key", 3, "string", False, None),
    ],
    "TrackableObjectGraph.TrackableObject.SlotVariableReference": [
        ("original_variable_node_id", 1, "int32", False, None),
        ("slot_name", 2, "string", False, None),
        ("slot_variable_node_id", 3, "int32", False, None),
    ],
    "TrackableObjectGraph.TrackableObject": [
        ("children", 1, "TrackableObjectGraph.TrackableObject.ObjectReference", True, None),
        ("attributes", 2, "TrackableObjectGraph.TrackableObject.SerializedTensor", True, None),
        (
            "slot_variables",
            3,
            "TrackableObjectGraph.TrackableObject.SlotVariableReference",
            True,
            None,
        ),
        ("registered_saver", 4, "RegisteredSaver", False, None),
        ("has_checkpoint_values", 5, "BoolValue", False, None),
    ],
    "TrackableObjectGraph": [("nodes", 1, "TrackableObjectGraph.TrackableObject", True, None)],
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    """One proto3 file declaring every message of `_MESSAGES`, nested as TensorFlow's are."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="safeckpt/_format/checkpoint_files.proto", package=_PACKAGE, syntax="proto3"
    )
    declared: dict[str, descriptor_pb2.DescriptorProto] = {}
    for name, fields in sorted(_MESSAGES.items(), key=lambda item: item[0].count(".")):
        outer, _, inner = name.rpartition(".")
        parent = declared[outer].nested_type if outer else proto.message_type
        message = parent.add(name=inner)
        declared[name] = message
        for field_name, number, kind, repeated, oneof in fields:
            field = message.field.add(
                name=field_name, number=number, label=_REPEATED if repeated else _OPTIONAL
            )
            if kind in _TYPES:
                field.type = _TYPES[kind]
            else:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}.{kind}"
            if oneof is not None:
                field.oneof_index = len(message.oneof_decl)
                message.oneof_decl.add(name=oneof)
    return proto


_TOP_LEVEL = ("CheckpointState", "BundleHeaderProto", "BundleEntryProto", "TrackableObjectGraph")


def _classes() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()  # private: never the default pool
    pool.Add(_file())
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in _TOP_LEVEL
    }


_CLASSES = _classes()

#: ``tensorflow.CheckpointState``: the ``checkpoint`` state file (text format).
CheckpointState: Any = _CLASSES["CheckpointState"]
#: ``tensorflow.BundleHeaderProto``: the ``.index`` table's value under the key ``""``.
BundleHeaderProto: Any = _CLASSES["BundleHeaderProto"]
#: ``tensorflow.BundleEntryProto``: every other value of the ``.index`` table.
BundleEntryProto: Any = _CLASSES["BundleEntryProto"]
#: ``tensorflow.TrackableObjectGraph``: the object graph.
TrackableObjectGraph: Any = _CLASSES["TrackableObjectGraph"]

#: ``BundleHeaderProto.Endianness.BIG``.
BIG_ENDIAN = 1


def state_text(latest: str, paths: list[str], timestamps: list[float], preserved: float) -> str:
    """The ``checkpoint`` state file TensorFlow's manager writes for these fields.

    ``text_format.MessageToString`` of the ``CheckpointState`` (what
    ``update_checkpoint_state_internal`` writes), byte for byte.
    """
    from google.protobuf import text_format

    state = CheckpointState(
        model_checkpoint_path=latest,
        all_model_checkpoint_paths=paths,
        all_model_checkpoint_timestamps=timestamps,
        last_preserved_timestamp=preserved,
    )
    return str(text_format.MessageToString(state))


__all__ = [
    "BIG_ENDIAN",
    "BundleEntryProto",
    "BundleHeaderProto",
    "CheckpointState",
    "TrackableObjectGraph",
    "state_text",
]
