"""The state of the other callbacks of a ``fit``: what is backed up, and how it comes back.

Keras's stateful callbacks forget everything when a run resumes (`ModelCheckpoint` starts
again from ``best = inf``, `EarlyStopping` forgets its patience count, `ReduceLROnPlateau`
its wait and cooldown). `capture_states` reads the state of each callback that has one and
`apply_states` puts it back:

- A callback with both ``backup_state()`` and ``restore_state(state)`` methods (the
  `StatefulCallback` protocol) decides its own state, whatever its class.
- Keras's `ModelCheckpoint`, `EarlyStopping` and `ReduceLROnPlateau` (and their subclasses)
  are read attribute by attribute (`KERAS_STATE`).
- Any other callback has no state to back up. Keras's `History` is one: the `History` a
  resumed ``fit`` returns holds the epochs it ran, as with Keras's callback.

A callback is known across runs by its `callback_key`: its class name and its rank among the
callbacks of that name in ``fit``'s list (``EarlyStopping#0``), so a Keras that moves its
classes between modules still finds them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import keras

logger = logging.getLogger("safeckpt")


@runtime_checkable
class StatefulCallback(Protocol):
    """A callback whose state `safeckpt.keras.BackupAndRestore` backs up and restores.

    Define both methods on a `keras.callbacks.Callback`; they are called at each backup and
    once at the start of a resumed ``fit``, after every callback's ``on_train_begin`` (so
    ``on_train_begin`` may reset the state as usual) and before the first resumed epoch.
    """

    def backup_state(self) -> Mapping[str, Any]:
        """The callback's state: JSON values and NumPy arrays, by name."""
        ...

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Put back a state `backup_state` returned (in an earlier process, maybe)."""
        ...


#: Keras's stateful callbacks: the attributes that make up their state (Keras 3.15.1).
KERAS_STATE: tuple[tuple[type[Any], tuple[str, ...]], ...] = (
    (
        keras.callbacks.ModelCheckpoint,
        ("best", "_batches_seen_since_last_saving", "_last_batch_seen", "_current_epoch"),
    ),
    (
        keras.callbacks.EarlyStopping,
        ("best", "wait", "stopped_epoch", "best_epoch", "best_weights"),
    ),
    (keras.callbacks.ReduceLROnPlateau, ("best", "wait", "cooldown_counter")),
)


def _attributes(callback: Any) -> tuple[str, ...] | None:
    for cls, names in KERAS_STATE:
        if isinstance(callback, cls):
            return names
    return None


def is_stateful(callback: Any) -> bool:
    """Whether `callback` has a state `capture_states` backs up."""
    return isinstance(callback, StatefulCallback) or _attributes(callback) is not None


def callback_key(callback: Any, callbacks: Sequence[Any]) -> str:
    """``Class#rank``: how `callback` is known in a backup of a ``fit`` with `callbacks`."""
    name = type(callback).__qualname__
    same = [c for c in callbacks if type(c).__qualname__ == name]
    rank = next(i for i, c in enumerate(same) if c is callback)
    return f"{name}#{rank}"


def _state_of(callback: Any) -> Mapping[str, Any]:
    if isinstance(callback, StatefulCallback):
        state = callback.backup_state()
        if not isinstance(state, Mapping):
            raise TypeError(
                f"{type(callback).__name__}.backup_state() returned "
                f"{type(state).__name__}, not a dict"
            )
        return state
    names = _attributes(callback) or ()
    return {name: getattr(callback, name) for name in names if hasattr(callback, name)}


def capture_states(callbacks: Iterable[Any], others: Sequence[Any]) -> dict[str, Mapping[str, Any]]:
    """The state of each stateful callback in `callbacks`, by `callback_key` in `others`."""
    return {callback_key(c, others): _state_of(c) for c in callbacks if is_stateful(c)}


def apply_states(
    states: Mapping[str, Mapping[str, Any]], callbacks: Sequence[Any]
) -> tuple[list[str], list[str]]:
    """Put each state back into the callback of the same key.

    Returns:
        The keys restored, and the keys of `states` no callback of this ``fit`` has (logged;
        a callback that is new in this run starts with its own state).
    """
    restored = []
    for callback in callbacks:
        if not is_stateful(callback):
            continue
        key = callback_key(callback, callbacks)
        if key not in states:
            logger.info("BackupAndRestore: %s has no state in the backup; it starts afresh.", key)
            continue
        state = states[key]
        if isinstance(callback, StatefulCallback):
            callback.restore_state(copy.deepcopy(dict(state)))
        else:
            for name, value in state.items():
                setattr(callback, name, value)
        restored.append(key)
    unknown = sorted(set(states) - set(restored))
    if unknown:
        logger.info(
            "BackupAndRestore: the backup holds the state of callbacks this fit does not have: %s",
            ", ".join(unknown),
        )
    return restored, unknown
