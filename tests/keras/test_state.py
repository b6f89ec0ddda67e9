"""`safeckpt.keras._state`: the fit state written into every backup, and read back."""

from __future__ import annotations

import io
import json
import math
import zipfile
from typing import Any

import numpy as np
import pytest

from safeckpt.keras._state import FitState, FitStateError, Position, decode, encode


def roundtrip(**callbacks: Any) -> dict[str, Any]:
    state = FitState(position=Position(epoch=3, batches_done=2), callbacks=callbacks)
    return dict(decode(encode(state)).callbacks)


def test_position_metrics_and_counters_come_back() -> None:
    metrics = (np.float32(1.5), np.arange(6, dtype="int64").reshape(2, 3))
    state = FitState(
        position=Position(
            epoch=4,
            batches_done=3,
            fresh_iterator=False,
            batches_per_epoch=5,
            steps_per_execution=3,
        ),
        metrics=tuple(np.asarray(m) for m in metrics),
        batches_since_save=2,
        last_batch_seen=7,
    )
    back = decode(encode(state))
    assert back.position == state.position
    assert (back.batches_since_save, back.last_batch_seen) == (2, 7)
    assert [m.shape for m in back.metrics] == [(), (2, 3)]  # a 0-d value stays 0-d
    assert [m.dtype for m in back.metrics] == [np.float32, np.int64]
    assert np.array_equal(back.metrics[1], metrics[1])


def test_json_values_and_arrays_keep_their_types() -> None:
    weights = [np.ones((2, 2), "float32"), np.zeros(3, "float16")]
    back = roundtrip(**{"keras.callbacks.EarlyStopping#0": {
        "best": np.float32(0.25), "wait": 2, "stopped_epoch": 0, "best_weights": weights,
        "none": None, "flag": True, "text": "x", "inf": math.inf, "nan": math.nan,
        "pair": (1, "a"), "nested": {"list": [1.5, {"deep": np.int64(3)}]},
    }})["keras.callbacks.EarlyStopping#0"]  # fmt: skip
    assert type(back["best"]) is np.float32 and back["best"] == np.float32(0.25)
    assert back["wait"] == 2 and back["flag"] is True and back["none"] is None
    assert back["inf"] == math.inf and math.isnan(back["nan"])
    assert back["pair"] == (1, "a") and back["text"] == "x"
    assert back["nested"]["list"][1]["deep"] == 3
    assert type(back["nested"]["list"][1]["deep"]) is np.int64
    assert [w.dtype for w in back["best_weights"]] == [np.float32, np.float16]
    assert all(np.array_equal(a, b) for a, b in zip(back["best_weights"], weights, strict=True))


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (object(), "state of cb['bad']"),
        ({1: "x"}, "key 1 is not a str"),
        (np.array([object()]), "array of Python objects"),
        ({"__safeckpt_array__": 0}, "reserved"),
        ([1, {2, 3}], "state of cb['bad'][1]: set"),
    ],
)
def test_a_value_that_cannot_be_backed_up_is_a_type_error_naming_it(value: Any, where: str) -> None:
    with pytest.raises(TypeError, match=where.replace("[", r"\[").replace("]", r"\]")):
        encode(FitState(position=Position(epoch=0), callbacks={"cb": {"bad": value}}))


def _archive(document: Any, members: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("state.json", json.dumps(document))
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a zip at all",
        _archive({"version": 999}),
        _archive(
            {
                "version": 1,
                "position": {"epoch": 1, "unknown": 2},
                "callbacks": {},
                "metrics": [],
                "own": {"batches_since_save": 0, "last_batch_seen": 0},
            }
        ),
        _archive(
            {
                "version": 1,
                "position": {"epoch": 1},
                "callbacks": {"a": {"__safeckpt_array__": 5}},
                "metrics": [],
                "own": {"batches_since_save": 0, "last_batch_seen": 0},
            }
        ),
        _archive(
            {
                "version": 1,
                "position": {"epoch": 1},
                "callbacks": [],
                "metrics": [],
                "own": {"batches_since_save": 0, "last_batch_seen": 0},
            }
        ),
        _archive(
            {
                "version": 1,
                "position": {"epoch": 1},
                "callbacks": {},
                "metrics": [],
                "own": {"batches_since_save": 0, "last_batch_seen": 0},
            },
            {"0.npy": b"\x93NUMPY garbage"},
        )[:-30],
    ],
)
def test_bytes_that_are_not_a_fit_state_are_a_fit_state_error(data: bytes) -> None:
    with pytest.raises(FitStateError):
        decode(data)


GOOD = {"version": 1, "position": {"epoch": 1}, "callbacks": {}, "metrics": [],
        "own": {"batches_since_save": 0, "last_batch_seen": 0}}  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        {"position": {"epoch": "1"}},
        {"position": {"epoch": -1}},
        {"position": {"epoch": 1, "fresh_iterator": 1}},
        {"position": {"epoch": 1, "steps_per_execution": 0}},
        {"position": {"epoch": 1, "batches_per_epoch": 2.5}},
        {"own": {"batches_since_save": True, "last_batch_seen": 0}},
        {"own": {"batches_since_save": 0}},
        {"callbacks": {"a": [1]}},
        {"metrics": 3},
    ],
)
def test_a_fit_state_with_wrong_types_is_a_fit_state_error(change: dict[str, Any]) -> None:
    assert decode(_archive(GOOD)).position == Position(epoch=1)
    with pytest.raises(FitStateError):
        decode(_archive({**GOOD, **change}))


def test_a_pickled_array_is_never_loaded() -> None:
    member = io.BytesIO()
    np.save(member, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    data = _archive(
        {
            "version": 1,
            "position": {"epoch": 1},
            "callbacks": {"a": {"__safeckpt_array__": 0}},
            "metrics": [],
            "own": {"batches_since_save": 0, "last_batch_seen": 0},
        },
        {"0.npy": member.getvalue()},
    )
    with pytest.raises(FitStateError):
        decode(data)
