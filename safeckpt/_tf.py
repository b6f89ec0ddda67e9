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

import inspect

#: TensorFlow 2.20 added ``last_checkpoint_step`` to `tf.train.CheckpointManager`; 2.16-2.19
#: lack it, and a subclass then sets the attribute the keyword would have set.
MANAGER_TAKES_LAST_CHECKPOINT_STEP = (
    "last_checkpoint_step" in inspect.signature(tf.train.CheckpointManager.__init__).parameters
)

__all__ = ["MANAGER_TAKES_LAST_CHECKPOINT_STEP", "tf", "tf_checkpoint_management"]
