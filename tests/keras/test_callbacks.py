"""`safeckpt.keras._callbacks`: which callbacks have a state, how it is read and put back."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import pytest

from safeckpt.keras import StatefulCallback
from safeckpt.keras._callbacks import apply_states, callback_key, capture_states, is_stateful


class Counter(keras.callbacks.Callback):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.history: list[float] = []

    def backup_state(self) -> Mapping[str, Any]:
        return {"count": self.count, "history": list(self.history)}

    def restore_state(self, state: Mapping[str, Any]) -> None:
        self.count = state["count"]
        self.history = state["history"]


class Plain(keras.callbacks.Callback):  # type: ignore[misc]
    pass


def test_which_callbacks_have_a_state() -> None:
    assert isinstance(Counter(), StatefulCallback) and is_stateful(Counter())
    assert not is_stateful(Plain()) and not is_stateful(keras.callbacks.History())
    assert is_stateful(keras.callbacks.EarlyStopping())
    assert is_stateful(keras.callbacks.ReduceLROnPlateau())
    assert is_stateful(keras.callbacks.ModelCheckpoint("m.keras"))


def test_keys_are_class_name_and_rank() -> None:
    a, b, plain = Counter(), Counter(), Plain()
    callbacks = [a, plain, b]
    assert callback_key(a, callbacks) == "Counter#0"
    assert callback_key(b, callbacks) == "Counter#1"
    # Another class of the same name (another module, another Keras): ranked together.
    other = type("Counter", (Counter,), {})()
    assert callback_key(other, [a, other]) == "Counter#1"
    stopping = keras.callbacks.EarlyStopping()
    assert callback_key(stopping, [stopping]) == "EarlyStopping#0"


def test_keras_callbacks_state_comes_back_into_new_instances() -> None:
    stopping = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    stopping.on_train_begin()
    stopping.wait, stopping.best, stopping.best_epoch = 2, np.float32(0.5), 4
    stopping.best_weights = [np.ones(3)]
    plateau = keras.callbacks.ReduceLROnPlateau()
    plateau.wait, plateau.best, plateau.cooldown_counter = 1, 0.25, 2
    checkpoint = keras.callbacks.ModelCheckpoint("m.keras", save_best_only=True, save_freq=3)
    checkpoint.best, checkpoint._batches_seen_since_last_saving = 0.125, 2
    states = capture_states([stopping, plateau, checkpoint], [stopping, plateau, checkpoint])

    fresh = [
        keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(),
        keras.callbacks.ModelCheckpoint("m.keras", save_best_only=True, save_freq=3),
    ]
    fresh[0].on_train_begin()  # Keras resets the state here; apply_states comes after
    restored, unknown = apply_states(states, fresh)
    assert len(restored) == 3 and unknown == []
    assert (fresh[0].wait, fresh[0].best, fresh[0].best_epoch) == (2, np.float32(0.5), 4)
    assert np.array_equal(fresh[0].best_weights[0], np.ones(3))
    assert (fresh[1].wait, fresh[1].best, fresh[1].cooldown_counter) == (1, 0.25, 2)
    assert (fresh[2].best, fresh[2]._batches_seen_since_last_saving) == (0.125, 2)


def test_a_user_callback_decides_its_own_state() -> None:
    counter = Counter()
    counter.count, counter.history = 5, [0.5]
    states = capture_states([counter], [counter])
    again = Counter()
    apply_states(states, [again])
    assert (again.count, again.history) == (5, [0.5])
    states["Counter#0"]["history"].append(1.0)  # type: ignore[attr-defined]
    assert counter.history == [0.5]  # the state given back is a copy


def test_states_without_a_callback_and_callbacks_without_a_state_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counter = Counter()
    states = capture_states([counter], [counter])
    with caplog.at_level(logging.INFO, logger="safeckpt"):
        restored, unknown = apply_states(states, [keras.callbacks.EarlyStopping()])
    assert restored == [] and unknown == ["Counter#0"]
    assert "EarlyStopping#0 has no state in the backup" in caplog.text
    assert "callbacks this fit does not have" in caplog.text


def test_backup_state_must_return_a_mapping() -> None:
    class Bad(Counter):
        def backup_state(self) -> Any:
            return [1, 2]

    bad = Bad()
    with pytest.raises(TypeError, match=r"Bad.backup_state\(\) returned list, not a dict"):
        capture_states([bad], [bad])
