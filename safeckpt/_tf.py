"""The one place that imports TensorFlow, with a clear message when it is missing."""

from __future__ import annotations

try:
    import tensorflow as tf
    from tensorflow.python.checkpoint import checkpoint_management as tf_checkpoint_management
except ImportError as exc:  # pragma: no cover - exercised only without TensorFlow
    raise ImportError(
        "safeckpt needs TensorFlow (>= 2.16), but it could not be imported "
        f"({exc}). Install it together with safeckpt, choosing the distribution that fits "
        "your machine: pip install 'safeckpt[tensorflow]' or pip install "
        "'safeckpt[tensorflow-cpu]' (or any other TensorFlow build such as tensorflow-macos)."
    ) from exc

__all__ = ["tf", "tf_checkpoint_management"]
