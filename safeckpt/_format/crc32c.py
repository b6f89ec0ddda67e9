"""CRC32C (Castagnoli), as TensorFlow uses it for checkpoint blocks and tensors.

`crc32c(data, crc)` extends a running checksum (``crc32c(b, crc32c(a)) == crc32c(a + b)``);
`mask` / `unmask` convert to and from the masked form stored in ``.index`` files.

Backends, best first; `BACKEND` names the one in use and `set_backend` overrides the choice:

* ``google_crc32c``: the optional C extension (``pip install 'safeckpt[crc32c]'``).
* ``tensorflow-tfrecord`` (only once TensorFlow is imported): TensorFlow 2.21 has no
  Python-callable CRC32C (no op, no pybind
  function; ``file_io.file_crc32`` is zlib's CRC-32), but `tf.io.TFRecordWriter` stores the
  masked CRC32C of each record. A chunk is written as one record to a ``ram://`` file, the
  checksum read back, and chunks are joined with GF(2) shift operators.
* ``numpy``: slicing-by-8 run over thousands of independent lanes at once, lanes joined the
  same way.

With the two fallbacks, inputs under 16 KiB use a pure-Python slicing-by-8 loop (no setup
cost). `set_backend` rebinds `BACKEND`: read it as ``crc32c.BACKEND`` (the module), not via
``from ... import``.

Measured on the 2-core dev machine, 64 MiB of os.urandom, best of 3, MiB/s, with
``python -m timeit -n1 -r3 -s "import os; from safeckpt._format import crc32c as c;
c.set_backend('NAME'); d = os.urandom(64 << 20)" "c.crc32c(d)"``:

* google_crc32c 1.9.0 (C, SSE4.2): 11,700
* ctypes call of absl ``crc_internal::ExtendCrc32cInternal`` in libtensorflow_framework.so.2:
  3,100 (same timeit on ``f(0, len(d), d)``; not used: a private C++ symbol whose absl namespace
  changes every release, and a wrong ABI guess crashes the process instead of raising)
* tensorflow-tfrecord, 1 MiB records: 1,730 (8 MiB records: 290; 2 MiB and up fall off a cliff)
* numpy lanes: 210
* python (slicing-by-8): 8.8; google_crc32c's own pure-Python fallback: 3.1 (on 4 MiB)
"""

from __future__ import annotations

import contextlib
import struct
import threading
import uuid
from collections.abc import Callable
from typing import cast

import numpy as np
import numpy.typing as npt

from safeckpt._io.errors import io_errors
from safeckpt._io.tf import imported

__all__ = ["BACKEND", "available_backends", "crc32c", "mask", "set_backend", "unmask"]

_POLY = 0x82F63B78  # Castagnoli polynomial, bit-reversed
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_SMALL = 16 * 1024  # below this, the pure-Python loop beats any setup cost
_CHUNK = 1024 * 1024  # per TFRecord; measured fastest (2 MiB records are 4x slower)

U32Array = npt.NDArray[np.uint32]
Buffer = bytes | bytearray | memoryview


def mask(crc: int) -> int:
    """Returns the masked form of `crc` that TensorFlow and LevelDB store on disk."""
    crc &= _U32
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


def unmask(masked: int) -> int:
    """Inverts `mask`."""
    rot = (masked - _MASK_DELTA) & _U32
    return ((rot >> 17) | (rot << 15)) & _U32


# --- tables ---------------------------------------------------------------------------------


def _make_tables() -> list[list[int]]:
    first = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        first.append(c)
    tables = [first]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(p >> 8) ^ first[p & 0xFF] for p in prev])
    return tables


_T = _make_tables()


def _wide(lo: list[int], hi: list[int]) -> U32Array:
    """A 65,536-entry table indexed by two bytes (low byte uses `lo`)."""
    idx = np.arange(65536, dtype=np.uint32)
    return cast(
        "U32Array", np.asarray(lo, np.uint32)[idx & 0xFF] ^ np.asarray(hi, np.uint32)[idx >> 8]
    )


_WIDE: list[U32Array] = []  # built on first use of the numpy backend


def _register_py(reg: int, data: Buffer) -> int:
    """Feeds `data` into the raw (non-inverted) CRC register `reg`, in pure Python."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _T
    view = memoryview(data).cast("B")
    n8 = len(view) - len(view) % 8
    for lo, hi in struct.iter_unpack("<II", view[:n8]):
        x = reg ^ lo
        reg = (
            t7[x & 0xFF] ^ t6[(x >> 8) & 0xFF] ^ t5[(x >> 16) & 0xFF] ^ t4[x >> 24]
            ^ t3[hi & 0xFF] ^ t2[(hi >> 8) & 0xFF] ^ t1[(hi >> 16) & 0xFF] ^ t0[hi >> 24]
        )  # fmt: skip
    for b in view[n8:]:
        reg = t0[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


# --- shifting a register over runs of zero bytes (GF(2) linear operators) -------------------

_shift_tables: list[U32Array] = []  # [j]: (4, 256) table shifting a register by 2**j zero bytes
_shift_lock = threading.Lock()


def _operator_table(columns: list[int]) -> U32Array:
    """Byte-indexed lookup tables (4 x 256) for the 32x32 GF(2) matrix with these columns."""
    bits = (np.arange(256, dtype=np.uint32)[:, None] >> np.arange(8, dtype=np.uint32)) & 1
    cols = np.asarray(columns, dtype=np.uint32).reshape(4, 8)
    picked = np.where(bits[None, :, :] == 1, cols[:, None, :], np.uint32(0))
    return cast("U32Array", np.bitwise_xor.reduce(picked, axis=2).astype(np.uint32))


def _apply(table: U32Array, v: int) -> int:
    """Applies an operator table to one register value."""
    t0, t1, t2, t3 = table
    return int(t0[v & 0xFF] ^ t1[(v >> 8) & 0xFF] ^ t2[(v >> 16) & 0xFF] ^ t3[v >> 24])


def _apply_all(table: U32Array, v: U32Array) -> U32Array:
    """Applies an operator table to an array of register values."""
    t0, t1, t2, t3 = table
    return cast("U32Array", t0[v & 0xFF] ^ t1[(v >> 8) & 0xFF] ^ t2[(v >> 16) & 0xFF] ^ t3[v >> 24])


def _shift_table(j: int) -> U32Array:
    """The operator table that shifts a register over 2**j zero bytes."""
    with _shift_lock:
        if not _shift_tables:
            # One zero bit: reg -> (reg >> 1) ^ (POLY if reg & 1); one byte is 8 of them.
            cols = [_POLY] + [1 << (i - 1) for i in range(1, 32)]
            for _ in range(3):  # square three times: 1 -> 8 bits
                table = _operator_table(cols)
                cols = [_apply(table, c) for c in cols]
            _shift_tables.append(_operator_table(cols))
        while len(_shift_tables) <= j:
            last = _shift_tables[-1]
            cols = [_apply(last, _apply(last, 1 << i)) for i in range(32)]
            _shift_tables.append(_operator_table(cols))
        return _shift_tables[j]


def _shift(reg: int, nbytes: int) -> int:
    """Returns the register after feeding `nbytes` zero bytes into `reg`."""
    j = 0
    while nbytes and reg:
        if nbytes & 1:
            reg = _apply(_shift_table(j), reg)
        nbytes >>= 1
        j += 1
    return reg


# --- bulk backends: each returns the register fed with `data` from a zero register ----------


def _lanes_numpy(data: Buffer) -> tuple[int, int]:
    """Runs slicing-by-8 over many equal lanes; returns (register, bytes consumed)."""
    if not _WIDE:
        t0, t1, t2, t3, t4, t5, t6, t7 = _T
        _WIDE.extend([_wide(t7, t6), _wide(t5, t4), _wide(t3, t2), _wide(t1, t0)])
    w76, w54, w32, w10 = _WIDE
    n = len(data)
    log_lane = max(6, min(12, (n // 4096).bit_length() - 1))  # 64 B .. 4 KiB per lane
    lane = 1 << log_lane
    lanes = n // lane
    words = np.frombuffer(data, dtype="<u4", count=lanes * lane // 4).reshape(lanes, lane // 4)
    reg = np.zeros(lanes, dtype=np.uint32)
    for i in range(0, lane // 4, 2):
        x = reg ^ words[:, i]
        y = words[:, i + 1]
        reg = w76[x & 0xFFFF] ^ w54[x >> 16] ^ w32[y & 0xFFFF] ^ w10[y >> 16]
    j = log_lane
    while len(reg) > 1:  # join neighbours: reg(A || B) = shift(reg(A), |B|) ^ reg(B)
        if len(reg) % 2:
            reg = np.concatenate([np.zeros(1, np.uint32), reg])  # leading zeros change nothing
        reg = _apply_all(_shift_table(j), reg[0::2]) ^ reg[1::2]
        j += 1
    return int(reg[0]), lanes * lane


def _tfrecord_value(data: Buffer) -> int:
    """CRC32C of `data` as computed by TensorFlow's TFRecord writer (in a ``ram://`` file)."""
    from safeckpt._io.tf import tf

    path = f"ram://safeckpt-crc32c/{uuid.uuid4().hex}"
    try:
        with tf.io.TFRecordWriter(path) as writer:
            writer.write(bytes(data))
        with tf.io.gfile.GFile(path, "rb") as f:
            f.seek(12 + len(data))  # u64 length, masked crc of length, data, masked crc
            (stored,) = struct.unpack("<I", f.read(4))
    finally:
        with contextlib.suppress(*io_errors()):
            tf.io.gfile.remove(path)
    return unmask(stored)


def _lanes_tfrecord(data: Buffer) -> tuple[int, int]:
    """Feeds up to `_CHUNK` bytes through the TFRecord writer; returns (register, consumed)."""
    piece = memoryview(data)[:_CHUNK]
    # value = ~reg(data, from 0xFFFFFFFF)  and  reg(data, r) = shift(r, n) ^ reg(data, 0).
    return (_tfrecord_value(piece) ^ _U32) ^ _shift(_U32, len(piece)), len(piece)


def _extend_google(crc: int, data: Buffer) -> int:
    import google_crc32c

    if isinstance(data, bytes):
        return int(google_crc32c.extend(crc, data))
    return int(google_crc32c.extend(crc, np.frombuffer(data, dtype=np.uint8)))  # no memoryview


def _extend_via(lanes: Callable[[Buffer], tuple[int, int]]) -> Callable[[int, Buffer], int]:
    def extend(crc: int, data: Buffer) -> int:
        view = memoryview(data).cast("B")
        reg = crc ^ _U32
        while len(view) >= _SMALL:
            part, used = lanes(view)
            reg = _shift(reg, used) ^ part
            view = view[used:]
        return _register_py(reg, view) ^ _U32

    return extend


def _extend_python(crc: int, data: Buffer) -> int:
    return _register_py(crc ^ _U32, data) ^ _U32


_BACKENDS: dict[str, Callable[[int, Buffer], int]] = {
    "google_crc32c": _extend_google,
    "tensorflow-tfrecord": _extend_via(_lanes_tfrecord),
    "numpy": _extend_via(_lanes_numpy),
    "python": _extend_python,
}


def _works(name: str) -> bool:
    """Whether backend `name` imports and reproduces known CRC32C values."""
    if name == "google_crc32c":
        try:
            import google_crc32c
        except ImportError:
            return False
        if google_crc32c.implementation != "c":  # its pure-Python fallback is slower than ours
            return False
    probe = bytes(range(256)) * 97 + b"123456789"  # > _SMALL, not a multiple of 8
    try:
        fn = _BACKENDS[name]
        return fn(0, b"123456789") == 0xE3069283 and fn(fn(0, probe[:5]), probe[5:]) == (
            _extend_python(0, probe)
        )
    except Exception:  # any failure just means "not available here"
        return False


def available_backends() -> tuple[str, ...]:
    """Returns the names of the backends that work in this process, best first."""
    return tuple(name for name in _BACKENDS if _works(name))


_extend: Callable[[int, Buffer], int] = _extend_python
BACKEND: str = "python"
#: The automatic choice was made before TensorFlow was imported (its backend was skipped).
_BEFORE_TENSORFLOW = False


def set_backend(name: str | None = None) -> str:
    """Selects the CRC32C implementation (None: the fastest that works) and returns its name.

    Args:
        name: One of ``"google_crc32c"``, ``"tensorflow-tfrecord"``, ``"numpy"``, ``"python"``,
            or None to pick the first of these that works. ``"tensorflow-tfrecord"`` is
            picked only once TensorFlow is imported (the command line does not import it for
            a local directory); the choice is made again when it is imported later.

    Raises:
        ValueError: `name` is unknown or does not work in this process.
    """
    global BACKEND, _extend, _BEFORE_TENSORFLOW
    _BEFORE_TENSORFLOW = name is None and not imported()
    if name is None:
        skip = {"tensorflow-tfrecord"} if _BEFORE_TENSORFLOW else set()
        name = next(n for n in _BACKENDS if n not in skip and _works(n))  # "python" works
    elif name not in _BACKENDS or not _works(name):
        raise ValueError(f"CRC32C backend {name!r} is not available; have {available_backends()}")
    BACKEND, _extend = name, _BACKENDS[name]
    return name


def crc32c(data: Buffer, crc: int = 0) -> int:
    """Returns the CRC32C of `data`, continuing from the checksum `crc` of preceding bytes."""
    if _BEFORE_TENSORFLOW and imported():
        set_backend()
    return _extend(crc & _U32, data)


set_backend()
