"""TensorFlow's ``DataType`` numbers: name and item size, without TensorFlow.

``tf.as_dtype(n).name`` and ``.size`` for every number TensorFlow 2.21 knows (2.16 lacks
the last four: ``int2``, ``uint2``, ``float4_e2m1fn`` and their references), ``_ref``
variants at ``100 + n``. A size of 0: no fixed size (strings, resources, variants). The
tests compare the table with ``tf.as_dtype`` of the TensorFlow installed.
"""

from __future__ import annotations

from dataclasses import dataclass

_BASE: dict[int, tuple[str, int]] = {
    1: ("float32", 4),
    2: ("float64", 8),
    3: ("int32", 4),
    4: ("uint8", 1),
    5: ("int16", 2),
    6: ("int8", 1),
    7: ("string", 0),
    8: ("complex64", 8),
    9: ("int64", 8),
    10: ("bool", 1),
    11: ("qint8", 1),
    12: ("quint8", 1),
    13: ("qint32", 4),
    14: ("bfloat16", 2),
    15: ("qint16", 2),
    16: ("quint16", 2),
    17: ("uint16", 2),
    18: ("complex128", 16),
    19: ("float16", 2),
    20: ("resource", 0),
    21: ("variant", 0),
    22: ("uint32", 4),
    23: ("uint64", 8),
    24: ("float8_e5m2", 1),
    25: ("float8_e4m3fn", 1),
    26: ("float8_e4m3fnuz", 1),
    27: ("float8_e4m3b11fnuz", 1),
    28: ("float8_e5m2fnuz", 1),
    29: ("int4", 1),
    30: ("uint4", 1),
    31: ("int2", 1),
    32: ("uint2", 1),
    33: ("float4_e2m1fn", 1),
}

#: ``DT_STRING``, ``DT_VARIANT``: values of no fixed size.
STRING, VARIANT = 7, 21


@dataclass(frozen=True)
class DType:
    """One ``DataType``: its number, TensorFlow's name for it, its item size (0: none fixed)."""

    number: int
    name: str
    size: int


_BY_NUMBER: dict[int, DType] = {
    **{n: DType(n, name, size) for n, (name, size) in _BASE.items()},
    **{n + 100: DType(n + 100, f"{name}_ref", size) for n, (name, size) in _BASE.items()},
}
_BY_NAME = {d.name: d for d in _BY_NUMBER.values()}


def dtype(number: int) -> DType:
    """The ``DataType`` numbered `number`.

    Raises:
        TypeError: TensorFlow knows no such number (as ``tf.as_dtype`` raises).
    """
    found = _BY_NUMBER.get(number)
    if found is None:
        raise TypeError(f"unknown DataType {number}")
    return found


def named(name: str) -> DType:
    """The ``DataType`` TensorFlow calls `name` (``"float32"``).

    Raises:
        TypeError: No such name.
    """
    found = _BY_NAME.get(name)
    if found is None:
        raise TypeError(f"unknown DataType {name!r}")
    return found
