"""`safeckpt.keras._resume`: where a resumed epoch continues, and which inputs repeat."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from safeckpt._io.tf import KerasFit, dataset_graph
from safeckpt.keras._resume import RestartEpoch, SkipBatches, plan, random_ops, repeatable_input
from safeckpt.keras._state import Position

BASE = tf.data.Dataset.range(20)


def uniform(x: Any) -> Any:
    return tf.random.uniform(())


def stateless(x: Any) -> Any:
    return tf.random.stateless_uniform((), seed=[1, 2])


def normal_in_a_nested_function(x: Any) -> Any:
    return tf.data.Dataset.from_tensors(x).map(lambda y: tf.random.normal(()))


@pytest.mark.parametrize(
    ("dataset", "random"),
    [
        (BASE.batch(4), False),
        (BASE.shuffle(20), True),  # no seed: a new order in every process
        (BASE.shuffle(20, seed=3), True),  # reshuffled each epoch
        (BASE.shuffle(20, seed=3, reshuffle_each_iteration=False), False),
        (BASE.shuffle(20, reshuffle_each_iteration=False), True),  # no seed
        (BASE.repeat().shuffle(8, seed=1).take(20), True),
        (BASE.map(uniform), True),
        (BASE.map(stateless), False),
        (BASE.interleave(normal_in_a_nested_function, cycle_length=2), True),
        (BASE.batch(4).prefetch(2).cache(), False),
    ],
)
def test_random_ops_of_real_pipelines(dataset: Any, random: bool) -> None:
    graph = dataset_graph(dataset)
    assert graph is not None
    assert bool(random_ops(graph)) is random, random_ops(graph)


def fit(**changes: Any) -> KerasFit:
    base = KerasFit(callback_list=None, callbacks=(), input_kind="ArrayDataAdapter",
                    shuffle=False, steps_per_epoch=None, num_batches=5, dataset=None,
                    frame=None)  # fmt: skip
    return dataclasses.replace(base, **changes)


POSITION = Position(epoch=2, batches_done=3, batches_per_epoch=5)


def test_an_epoch_end_backup_needs_no_skipping() -> None:
    assert plan(Position(epoch=2), None, 1) == SkipBatches(2, 0, 0)


def test_a_repeatable_input_continues_after_the_backed_up_batches() -> None:
    assert plan(POSITION, fit(), 1) == SkipBatches(2, 3, 5)
    assert plan(dataclasses.replace(POSITION, steps_per_execution=3), fit(), 3) == SkipBatches(
        2, 3, 5
    )
    no_random = fit(input_kind="TFDatasetAdapter", dataset=BASE.batch(4))
    assert plan(POSITION, no_random, 1) == SkipBatches(2, 3, 5)


@pytest.mark.parametrize(
    ("position", "now", "steps", "reason"),
    [
        (POSITION, None, 1, "not run by Keras's fit"),
        (POSITION, fit(steps_per_epoch=5), 1, "steps_per_epoch"),
        (dataclasses.replace(POSITION, fresh_iterator=False), fit(), 1, "steps_per_epoch"),
        (POSITION, fit(num_batches=6), 1, "number of batches"),
        (POSITION, fit(num_batches=None), 1, "number of batches"),
        (POSITION, fit(), 2, "steps_per_execution"),
        (dataclasses.replace(POSITION, steps_per_execution=2), fit(), 2, "steps_per_execution"),
        (POSITION, fit(shuffle=True), 1, "shuffled"),
        (POSITION, fit(shuffle="batch"), 1, "shuffled"),
        (POSITION, fit(input_kind="PyDatasetAdapter", shuffle=True), 1, "shuffled"),
        (POSITION, fit(shuffle=None), 1, "does not tell"),
        (POSITION, fit(input_kind="PyDatasetAdapter", shuffle=None), 1, "does not tell"),
        (POSITION, fit(input_kind="GeneratorDataAdapter"), 1, "GeneratorDataAdapter"),
        (POSITION, fit(input_kind="TFDatasetAdapter", dataset=BASE.shuffle(4)), 1, "Shuffle"),
        (POSITION, fit(input_kind="TFDatasetAdapter", dataset=None), 1, "cannot be inspected"),
    ],
)
def test_an_input_that_may_not_repeat_restarts_the_epoch(
    position: Position, now: KerasFit | None, steps: int, reason: str
) -> None:
    decision = plan(position, now, steps)
    assert isinstance(decision, RestartEpoch) and decision.epoch == 2
    assert reason in decision.reason


def test_the_rule_for_each_kind_of_input() -> None:
    assert repeatable_input(fit()) is None
    assert repeatable_input(fit(input_kind="PyDatasetAdapter")) is None
    arrays = np.zeros((4, 2))
    dataset = tf.data.Dataset.from_tensor_slices(arrays).batch(2)
    assert repeatable_input(fit(input_kind="TFDatasetAdapter", dataset=dataset)) is None
