"""Where a resumed ``fit`` continues: the policy of mid-epoch resumes.

`plan` decides, from the backed-up `Position` and what can be learned of this ``fit``'s
input (`KerasFit`), whether the interrupted epoch continues at the batch after the last one
backed up (`SkipBatches`: the batches already trained are read and dropped, so every batch
of that epoch is trained once) or runs again from its first batch (`RestartEpoch`, Keras's
own behaviour, with the reason logged once). The callback applies the decision.

Skipping is exact only when the resumed epoch reads the same batches in the same order as
the interrupted one. The rule (`repeatable_input`):

- the epoch reads its input from the start (no ``steps_per_epoch`` carrying an iterator
  across epochs) and its number of batches is known and unchanged;
- arrays: not shuffled (``fit(..., shuffle=False)``);
- a `tf.data.Dataset`: no shuffle that reshuffles each iteration or has no seed, and no
  stateful random op (``tf.random.uniform`` in a ``map``) anywhere in the pipeline;
  stateless random ops are fine;
- a `keras.utils.PyDataset`: not shuffled by ``fit``; its ``__getitem__`` is taken to be
  deterministic (a PyDataset that reorders itself in ``on_epoch_end`` is not detected);
- anything else (a Python generator, an unknown adapter): not repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass

from safeckpt._io import tf as adapter
from safeckpt._io.tf import tf
from safeckpt.keras._state import Position

#: Stateful random ops: each call draws new numbers (the ``Stateless*`` ops do not).
_RANDOM_PREFIXES = (
    "Random",
    "Multinomial",
    "TruncatedNormal",
    "ParameterizedTruncatedNormal",
    "StatefulUniform",
    "StatefulStandardNormal",
    "StatefulTruncatedNormal",
    "StatefulRandomBinomial",
    "RngReadAndSkip",
    "RngSkip",
    "NonDeterministicInts",
)


@dataclass(frozen=True)
class SkipBatches:
    """Continue the epoch after its first `count` batches (read and dropped)."""

    epoch: int
    count: int
    batches_per_epoch: int


@dataclass(frozen=True)
class RestartEpoch:
    """Run the interrupted epoch again from its first batch (Keras's behaviour)."""

    epoch: int
    reason: str


Decision = SkipBatches | RestartEpoch


def _shuffle_is_random(node: object, constants: dict[str, int]) -> bool:
    attr = node.attr  # type: ignore[attr-defined]
    if "reshuffle_each_iteration" in attr and attr["reshuffle_each_iteration"].b:
        return True
    seeds = [constants.get(name.split(":")[0]) for name in list(node.input)[2:4]]  # type: ignore[attr-defined]
    return not any(seeds)  # no seed at all: a new order in every process


def random_ops(graph: bytes) -> list[str]:
    """The ops of a serialized dataset graph that make two iterations differ."""
    definition = tf.compat.v1.GraphDef()
    definition.ParseFromString(graph)
    constants: dict[str, int] = {}
    for node in definition.node:
        if node.op == "Const" and node.attr["value"].tensor.int64_val:
            constants[node.name] = int(node.attr["value"].tensor.int64_val[0])
    found = []
    nodes = [*definition.node, *(n for f in definition.library.function for n in f.node_def)]
    for node in nodes:
        if "Shuffle" in node.op and "Dataset" in node.op:
            if _shuffle_is_random(node, constants):
                found.append(node.op)
        elif node.op.startswith(_RANDOM_PREFIXES):
            found.append(node.op)
    return sorted(set(found))


def repeatable_input(fit: adapter.KerasFit) -> str | None:
    """None when each epoch of `fit` reads the same batches in the same order; else why not."""
    kind = fit.input_kind
    if kind in ("ArrayDataAdapter", "PyDatasetAdapter") and fit.shuffle is None:
        return "this Keras does not tell whether fit shuffles the input"
    if kind == "ArrayDataAdapter":
        return "the arrays are shuffled (fit(..., shuffle=True))" if fit.shuffle else None
    if kind == "PyDatasetAdapter":
        return "the PyDataset is shuffled by fit (shuffle=True)" if fit.shuffle else None
    if kind == "TFDatasetAdapter":
        graph = adapter.dataset_graph(fit.dataset) if fit.dataset is not None else None
        if graph is None:
            return "the tf.data pipeline cannot be inspected"
        found = random_ops(graph)
        if found:
            return (
                "the tf.data pipeline draws new random numbers each epoch "
                f"({', '.join(found)}; a shuffle needs a seed and "
                "reshuffle_each_iteration=False)"
            )
        return None
    return f"its input ({kind}) cannot be read again in the same order"


def plan(position: Position, fit: adapter.KerasFit | None, steps_per_execution: int) -> Decision:
    """Where a ``fit`` resumed at `position` continues (see the module doc)."""
    epoch, done = position.epoch, position.batches_done
    if done <= 0:
        return SkipBatches(epoch, 0, position.batches_per_epoch or 0)
    if fit is None:
        return RestartEpoch(epoch, "the callbacks are not run by Keras's fit")
    if not position.fresh_iterator or fit.steps_per_epoch is not None:
        return RestartEpoch(
            epoch, "steps_per_epoch carries the input's iterator from one epoch to the next"
        )
    if fit.num_batches is None or fit.num_batches != position.batches_per_epoch:
        return RestartEpoch(
            epoch,
            f"the epoch's number of batches is unknown or changed ({fit.num_batches} now, "
            f"{position.batches_per_epoch} then)",
        )
    if steps_per_execution != position.steps_per_execution or done % steps_per_execution:
        return RestartEpoch(epoch, "steps_per_execution changed")
    why = repeatable_input(fit)
    if why is not None:
        return RestartEpoch(epoch, why)
    return SkipBatches(epoch, done, fit.num_batches)
