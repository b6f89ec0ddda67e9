"""Recognize files that are not TensorFlow checkpoints by their first bytes."""

from __future__ import annotations

from safeckpt._io import safeio
from safeckpt._io.errors import io_errors

_MAGICS: tuple[tuple[bytes, str, str], ...] = (
    (
        b"\x89HDF\r\n\x1a\n",
        "an HDF5 file (Keras .h5 / .weights.h5 weights)",
        "load it with model.load_weights(path), not with tf.train.Checkpoint",
    ),
    (
        b"PK\x03\x04",
        "a zip archive (a Keras .keras file, or a compressed download)",
        "for .keras use keras.models.load_model(path); otherwise extract the archive first",
    ),
    (
        b"version https://git-lfs",
        "a Git LFS pointer, not the real file",
        "run `git lfs pull` in the repository to download the real file",
    ),
    (b"\x1f\x8b", "a gzip file", "decompress it first (tar -xzf / gunzip)"),
    (b"PAR1", "a Parquet file", "this is data, not a checkpoint"),
    (
        b"\x80",
        "a Python pickle (e.g. a PyTorch .pt/.pth file)",
        "this was not written by TensorFlow; load it with the framework that wrote it",
    ),
)


def sniff(path: str) -> tuple[str, str] | None:
    """``(what it is, what to do)`` when `path` is a recognizably foreign file, else None."""
    try:
        head = safeio.read_bytes(path, 64)  # locally a regular file only
    except io_errors():
        return None
    if path.endswith(".pb") or path.endswith(".pbtxt"):
        return (
            "a protocol buffer file (SavedModel graph or TF1 .meta), not a checkpoint",
            "for a SavedModel use tf.saved_model.load(<its directory>)",
        )
    for magic, what, todo in _MAGICS:
        if head.startswith(magic):
            return what, todo
    return None
