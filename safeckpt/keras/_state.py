"""The state of a ``fit`` beside the model: where it stood, its callbacks' and metrics' state.

One `FitState` is written into every backup as one string tensor (``fit_state`` of the
backup's `tf.train.Checkpoint`), so it is saved by the same atomic TensorFlow save as the
weights and the optimizer and can never disagree with them. Its bytes are an uncompressed
``.npz`` archive: ``state.json`` (the position and every JSON value) and one ``.npy`` member
per array (an `EarlyStopping`'s best weights, a metric's variables), read back with
``allow_pickle=False`` and sizes checked against the archive's own length.

A value of a callback's state is JSON (None, bool, int, float including inf and nan, str,
lists, tuples, dicts with str keys) or a NumPy array or scalar; `encode` raises `TypeError`
for anything else, naming where it was found.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bumped when the layout changes; a backup of another version restores no fit state.
VERSION = 1
_JSON = "state.json"
_ARRAY = "__safeckpt_array__"
_SCALAR = "__safeckpt_scalar__"
_TUPLE = "__safeckpt_tuple__"


class FitStateError(ValueError):
    """The bytes are not a fit state this version of safeckpt wrote."""


@dataclass(frozen=True)
class Position:
    """Where the ``fit`` stood when the backup was written.

    Attributes:
        epoch: The epoch to resume at (the one in progress, or the next after an epoch-end
            backup).
        batches_done: Batches of `epoch` already trained (0 after an epoch-end backup).
        fresh_iterator: Whether `epoch` read its input from the start (Keras makes a new
            iterator per epoch unless ``steps_per_epoch`` keeps one across epochs).
        batches_per_epoch: The batches of an epoch in the interrupted run, when known.
        steps_per_execution: The model's ``steps_per_execution`` then.
    """

    epoch: int
    batches_done: int = 0
    fresh_iterator: bool = True
    batches_per_epoch: int | None = None
    steps_per_execution: int = 1


@dataclass(frozen=True)
class FitState:
    """Everything of a ``fit`` a backup holds beside the model and optimizer variables.

    Attributes:
        position: Where the ``fit`` stood.
        callbacks: Each stateful callback's state, by `callback key
            <safeckpt.keras._callbacks.callback_key>`.
        metrics: The values of the model's metric variables (``model.metrics_variables``)
            at a mid-epoch backup, in order; empty after an epoch-end backup (``fit`` resets
            them at each epoch's start).
        batches_since_save: The callback's own count of batches since its last backup (an
            integer ``save_freq``).
        last_batch_seen: The number of the last batch it saw (Keras's counting).
    """

    position: Position
    callbacks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    metrics: tuple[np.ndarray, ...] = ()
    batches_since_save: int = 0
    last_batch_seen: int = 0


def encode(state: FitState) -> bytes:
    """The bytes of `state` (see the module doc).

    Raises:
        TypeError: A callback's state holds a value that is neither JSON nor an array.
    """
    arrays: list[np.ndarray] = []

    def pack(value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, np.generic):
            return value
        if isinstance(value, np.generic):
            arrays.append(np.asarray(value))
            return {_SCALAR: len(arrays) - 1}
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise TypeError(f"{where}: an array of Python objects cannot be backed up")
            arrays.append(value)
            return {_ARRAY: len(arrays) - 1}
        if hasattr(value, "numpy") and callable(value.numpy):  # a tensor or a variable
            return pack(np.asarray(value.numpy()), where)
        if isinstance(value, tuple):
            return {_TUPLE: [pack(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [pack(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            packed = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(f"{where}: key {key!r} is not a str")
                if key in (_ARRAY, _SCALAR, _TUPLE):
                    raise TypeError(f"{where}: key {key!r} is reserved")
                packed[key] = pack(item, f"{where}[{key!r}]")
            return packed
        raise TypeError(
            f"{where}: {type(value).__name__} cannot be backed up (JSON values and NumPy "
            "arrays can)"
        )

    document = {
        "version": VERSION,
        "position": vars(state.position),
        "callbacks": {k: pack(v, f"state of {k}") for k, v in state.callbacks.items()},
        "metrics": [pack(np.asarray(m), "metrics") for m in state.metrics],
        "own": {
            "batches_since_save": state.batches_since_save,
            "last_batch_seen": state.last_batch_seen,
        },
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(_JSON, json.dumps(document, allow_nan=True))
        for i, array in enumerate(arrays):
            member = io.BytesIO()
            np.save(member, np.asarray(array, order="C"), allow_pickle=False)  # 0-d stays 0-d
            archive.writestr(f"{i}.npy", member.getvalue())
    return buffer.getvalue()


def decode(data: bytes) -> FitState:
    """The `FitState` in `data`.

    Raises:
        FitStateError: `data` is not a fit state of this `VERSION` (or is damaged).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
        if _JSON not in members or any(i.file_size > len(data) for i in members.values()):
            raise FitStateError("not a fit state")
        document = json.loads(archive.read(_JSON))
        if not isinstance(document, dict) or document["version"] != VERSION:
            raise FitStateError("a fit state of another version")
        cache: dict[int, np.ndarray] = {}

        def array(index: Any) -> np.ndarray:
            if not isinstance(index, int) or f"{index}.npy" not in members:
                raise FitStateError(f"no array {index!r}")
            if index not in cache:
                cache[index] = np.load(io.BytesIO(archive.read(f"{index}.npy")), allow_pickle=False)
            return cache[index]

        def unpack(value: Any) -> Any:
            if isinstance(value, list):
                return [unpack(v) for v in value]
            if isinstance(value, dict):
                if set(value) == {_ARRAY}:
                    return array(value[_ARRAY])
                if set(value) == {_SCALAR}:
                    return array(value[_SCALAR])[()]
                if set(value) == {_TUPLE}:
                    return tuple(unpack(v) for v in value[_TUPLE])
                return {k: unpack(v) for k, v in value.items()}
            return value

        position = Position(**document["position"])
        callbacks = unpack(document["callbacks"])
        metrics = tuple(np.asarray(unpack(m)) for m in document["metrics"])
        own = document["own"]
        counters = (own["batches_since_save"], own["last_batch_seen"])
    except FitStateError:
        raise
    except (zipfile.BadZipFile, ValueError, KeyError, TypeError, OSError) as e:
        raise FitStateError(f"not a readable fit state: {e}") from e
    if not isinstance(callbacks, dict) or not all(isinstance(v, dict) for v in callbacks.values()):
        raise FitStateError("not a fit state: the callbacks' states are not dicts")
    if not _valid(position) or not all(_is_int(c) for c in counters):
        raise FitStateError("not a fit state: a position or a counter is not a number")
    return FitState(
        position=position,
        callbacks=callbacks,
        metrics=metrics,
        batches_since_save=counters[0],
        last_batch_seen=counters[1],
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _valid(position: Position) -> bool:
    return (
        _is_int(position.epoch)
        and _is_int(position.batches_done)
        and isinstance(position.fresh_iterator, bool)
        and (position.batches_per_epoch is None or _is_int(position.batches_per_epoch))
        and _is_int(position.steps_per_execution)
        and position.steps_per_execution > 0
    )
