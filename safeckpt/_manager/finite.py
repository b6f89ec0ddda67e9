"""``check_finite=True``: refuse to save a state with NaN or infinity in it.

A model that diverged keeps saving, and ``max_to_keep`` then sweeps every finite checkpoint
(micromind-toolkit/micromind#64). Before a save writes anything, every floating-point
variable the checkpoint reaches is checked with one fused reduction on its own device
(``reduce_all(is_finite(v))``); only one boolean per variable reaches the host, in a single
transfer. The counts of the first offenders are computed only when something is wrong.
"""

from __future__ import annotations

from typing import Any

from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis
from safeckpt._errors import SaveError
from safeckpt._io.tf import tf

#: How many non-finite variables a `SaveError` names (the rest are counted).
NAMED = 5


def floating_variables(checkpoint: Any) -> list[Any]:
    """The distinct floating-point variables `checkpoint` reaches (its object graph)."""
    seen: set[int] = set()
    found = []
    for obj in tf.train.TrackableView(checkpoint).descendants():
        if isinstance(obj, tf.Variable) and obj.dtype.is_floating and id(obj) not in seen:
            seen.add(id(obj))
            found.append(obj)
    return found


def nonfinite(variables: list[Any]) -> list[int]:
    """Indices of `variables` holding a NaN or an infinity (one host transfer in all)."""
    if not variables:
        return []
    flags = tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in variables]).numpy()
    return [i for i, ok in enumerate(flags) if not ok]


def refuse_nonfinite(checkpoint: Any, directory: str) -> None:
    """Raise `SaveError` (``nonfinite_values``) when a variable is not finite; else nothing."""
    variables = floating_variables(checkpoint)
    bad = nonfinite(variables)
    if not bad:
        return
    lines = []
    for i in bad[:NAMED]:
        v = variables[i]
        values = tf.reshape(v, [-1])
        nan = int(tf.math.count_nonzero(tf.math.is_nan(values)).numpy())
        inf = int(tf.math.count_nonzero(tf.math.is_inf(values)).numpy())
        lines.append(
            f"{v.name}: {nan} NaN and {inf} infinite of {int(tf.size(values).numpy())} values"
        )
    if len(bad) > NAMED:
        lines.append(f"... and {len(bad) - NAMED} more variables")
    diagnosis = Diagnosis(
        Cause.NONFINITE_VALUES,
        f"{len(bad)} of {len(variables)} floating-point variables hold NaN or infinity "
        f"(first: {variables[bad[0]].name}).",
        directory,
        evidence=tuple(lines),
        suggestions=(
            "Nothing was written or swept: every earlier checkpoint is intact. Restore the "
            "newest one (manager.restore()) and lower the learning rate, clip gradients or "
            "check the input data around this step.",
        ),
    )
    raise SaveError(f"Nothing was saved: {diagnosis}", diagnosis)
