"""``check_finite=True``: refuse to save a state with NaN or infinity in it.

A model that diverged keeps saving, and ``max_to_keep`` then sweeps every finite checkpoint
(micromind-toolkit/micromind#64). Before a save writes anything, every floating-point
variable the checkpoint reaches is checked in two stages:

1. The sum of each variable (half-precision ones summed in float32), all in one compiled
   function, one transfer to the host. A NaN or an infinity in a variable makes its sum NaN
   or infinite, whatever the order of the additions (NaN absorbs everything; an infinity
   stays one, or meets the opposite one and makes a NaN), so a finite sum proves the
   variable finite: one read of the memory, no temporary tensor.
2. Only for a variable whose sum is not finite (a NaN or infinity, or a sum that overflowed):
   the exact test, ``reduce_all(is_finite(v))``.

The counts of the first offenders are computed only when something is wrong.
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


def _sum(v: Any) -> Any:
    """`v`'s sum, in float32 at least (a float16 sum overflows at 65504)."""
    if v.dtype.size < 4:
        return tf.reduce_sum(tf.cast(v, tf.float32))
    return tf.reduce_sum(v)


def _finite_sums(variables: list[Any]) -> Any:
    return tf.math.is_finite(tf.stack([tf.cast(_sum(v), tf.float64) for v in variables]))


_COMPILED: list[Any] = []  # the compiled `_finite_sums`, made on first use (TF loads lazily)


def _finite_sums_compiled(variables: list[Any]) -> Any:
    if not _COMPILED:
        _COMPILED.append(tf.function(_finite_sums, reduce_retracing=True))
    try:
        return _COMPILED[0](variables)
    except (TypeError, ValueError):  # variables a function cannot take (distributed ones)
        return _finite_sums(variables)


def nonfinite(variables: list[Any]) -> list[int]:
    """Indices of `variables` holding a NaN or an infinity (see the module doc)."""
    if not variables:
        return []
    sums_ok = _finite_sums_compiled(variables).numpy()
    suspects = [i for i, ok in enumerate(sums_ok) if not ok]
    if not suspects:
        return []
    exact = tf.stack([tf.reduce_all(tf.math.is_finite(variables[i])) for i in suspects]).numpy()
    return [i for i, ok in zip(suspects, exact, strict=True) if not ok]


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
