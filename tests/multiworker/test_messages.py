"""The multi-worker agreement's typed messages and this process's registry of managers.

safeckpt/_multiworker/messages.py (what workers post in TensorFlow's coordination service)
and `Registry` in safeckpt/_multiworker/roster.py. The agreement between real worker
processes, including a worker that posts a message this safeckpt cannot read, is tested in
tests/integration/test_multiworker.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

import safeckpt
from safeckpt import Cause, Diagnosis
from safeckpt._multiworker.agreement import Agreement
from safeckpt._multiworker.context import WorkerContext
from safeckpt._multiworker.messages import (
    FORMAT,
    KINDS,
    Abort,
    Built,
    Failure,
    InRound,
    Instead,
    ManagerKey,
    Message,
    MessageError,
    Opening,
    RoundKey,
    Success,
    Topic,
    decode,
    encode,
)
from safeckpt._multiworker.roster import Registry

CHIEF = WorkerContext(True, "worker", 0, 2, 0, True)


def _digest(directory: str, name: str) -> str:
    """The documented key component: sha256 of the JSON pair, 16 hex digits."""
    return hashlib.sha256(json.dumps([directory, name]).encode()).hexdigest()[:16]


def _damaged_diagnosis(ckpt_dir: Path) -> Diagnosis:
    """A real diagnosis with nested candidates, evidence and suggestions."""
    (ckpt_dir / "ckpt-3.data-00000-of-00001").write_bytes(b"short")
    diagnosis = safeckpt.diagnose(ckpt_dir)
    assert diagnosis.candidates and diagnosis.evidence and diagnosis.suggestions
    return diagnosis


def _every_message(diagnosis: Diagnosis) -> list[Message]:
    manager = ManagerKey("0123456789abcdef", 2)
    return [
        Built("/runs/a"),
        Instead("/runs/a/workertemp_1"),
        Opening(),
        Success("ckpt-2", "fell_back /runs/a/ckpt-2"),
        Success(None, "initialized /runs/a"),
        Failure(Topic.RESTORE, "RestoreError: no", "worker:1: no", diagnosis),
        Failure(Topic.DIRECTORY, "CheckpointDirectoryError: gone", "gone", None),
        Abort("worker:0: gave up", diagnosis),
        InRound(RoundKey(manager, 3), "/runs/a", None),
        InRound(RoundKey(manager, 1), "/runs/a", "restored ckpt-2"),
    ]


def test_every_message_round_trips_through_its_text(ckpt_dir: Path) -> None:
    messages = _every_message(_damaged_diagnosis(ckpt_dir))
    assert {type(m) for m in messages} == set(KINDS.values())  # each kind is covered
    for message in messages:
        text = encode(message)
        envelope = json.loads(text)
        assert envelope == {
            "safeckpt_message": type(message).KIND,
            "format": FORMAT,
            "body": envelope["body"],
        }
        assert set(envelope["body"]) == {f.name for f in dataclasses.fields(message)}
        assert decode(text, type(message)) == message
        assert decode(text, *KINDS.values()) == message


def test_kinds_are_distinct_names_of_the_message_types() -> None:
    assert len(KINDS) == len(set(KINDS)) == 7
    for kind, cls in KINDS.items():
        assert kind and kind == cls.KIND and issubclass(cls, Message)


def test_a_failure_carries_the_exceptions_diagnosis(ckpt_dir: Path) -> None:
    diagnosis = _damaged_diagnosis(ckpt_dir)
    error = safeckpt.RestoreError("no usable checkpoint", diagnosis)
    failure = Failure.of(error, Topic.RESTORE)
    assert failure.diagnosis == diagnosis
    assert failure.message == str(error)
    assert failure.error.startswith("RestoreError")
    plain = Failure.of(KeyError("local"), Topic.RESTORE)
    assert plain.diagnosis is None and "KeyError" in plain.error
    assert decode(encode(failure), Failure) == failure


def _success(**changes: Any) -> str:
    envelope: dict[str, Any] = {
        "safeckpt_message": "success",
        "format": FORMAT,
        "body": {"summary": "ckpt-2", "detail": "fell_back"},
    }
    for key, value in changes.items():
        if key in envelope:
            envelope[key] = value
        else:
            envelope["body"][key] = value
    return json.dumps(envelope)


_FAILURE_WITH_BAD_CAUSE = json.dumps(
    {
        "safeckpt_message": "failure",
        "format": FORMAT,
        "body": {
            "topic": "restore",
            "error": "E",
            "message": "m",
            "diagnosis": {"cause": "made_up", "summary": "s"},
        },
    }
)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "not JSON"),
        ("{'ok': True}", "not JSON"),
        ("[1, 2]", "not a safeckpt message"),
        ('{"ok": true, "value": "ckpt-2"}', "not a safeckpt message"),  # an older safeckpt
        ('{"safeckpt_message": "success", "body": {}}', "without a format"),
        (_success(format=2), "message format 2, while this safeckpt reads format 1"),
        (_success(safeckpt_message="abort"), "an? 'abort' message where 'success'"),
        (_success(safeckpt_message=7), "a 7 message where"),
        (_success(body=None), "body: expected an object, got null"),
        (_success(body=[]), "body: expected an object, got list"),
        (_success(summary=5), "body.summary: expected str, got int"),
        (_success(detail=None), "body.detail: expected str, got null"),
        (_success(extra=1), "body: unexpected field 'extra'"),
        (json.dumps({"safeckpt_message": "success", "format": 1}), "missing 'body'"),
        (
            json.dumps({"safeckpt_message": "opening", "format": 1, "body": {}, "x": 0}),
            "unexpected 'x'",
        ),
        (
            json.dumps({"safeckpt_message": "success", "format": 1, "body": {"detail": "d"}}),
            "body.summary: missing",
        ),
        (
            json.dumps(
                {
                    "safeckpt_message": "failure",
                    "format": 1,
                    "body": {"topic": "save", "error": "E", "message": "m"},
                }
            ),
            "body.topic: 'save' is not a Topic",
        ),
        (_FAILURE_WITH_BAD_CAUSE, "body.diagnosis.cause: 'made_up' is not a Cause"),
    ],
)
def test_a_malformed_message_is_a_message_error_saying_what_is_wrong(text: str, match: str) -> None:
    with pytest.raises(MessageError, match=match):
        decode(text, Success, Failure, Opening)


def test_nested_fields_are_checked_to_the_leaf() -> None:
    good = encode(InRound(RoundKey(ManagerKey("d", 1), 2), "/runs/a"))
    data = json.loads(good)
    data["body"]["round"]["manager"]["number"] = True  # a bool is not an int
    with pytest.raises(MessageError, match=r"body\.round\.manager\.number: expected int, got bool"):
        decode(json.dumps(data), InRound)
    data["body"]["round"] = {"manager": {"digest": "d", "number": 1}}
    with pytest.raises(MessageError, match=r"body\.round\.number: missing"):
        decode(json.dumps(data), InRound)


def test_a_long_unreadable_message_is_quoted_shortened() -> None:
    with pytest.raises(MessageError) as caught:
        decode("x" * 100_000, Success)
    assert len(str(caught.value)) < 400


def test_keys_follow_the_documented_layout() -> None:
    manager = ManagerKey("0123456789abcdef", 2)
    assert manager.path == "safeckpt/0123456789abcdef/2"
    assert manager.built(1) == "safeckpt/0123456789abcdef/2/built/1"
    assert manager.instead(1) == "safeckpt/0123456789abcdef/instead/1"
    round_key = manager.round(3)
    assert round_key.path == "safeckpt/0123456789abcdef/2/restore/3"
    assert round_key.start == "safeckpt/0123456789abcdef/2/restore/3/start"
    assert round_key.abort == "safeckpt/0123456789abcdef/2/restore/3/abort"
    assert round_key.report(0) == "safeckpt/0123456789abcdef/2/restore/3/0"


def test_the_registry_numbers_managers_per_directory_and_name() -> None:
    registry = Registry()
    a1 = registry.enroll("/runs/a", "ckpt")
    b1 = registry.enroll("/runs/b", "ckpt")
    a2 = registry.enroll("/runs/a", "ckpt")
    model1 = registry.enroll("/runs/a", "model")
    assert a1 == ManagerKey(_digest("/runs/a", "ckpt"), 1)
    assert a2 == ManagerKey(_digest("/runs/a", "ckpt"), 2)
    assert b1 == ManagerKey(_digest("/runs/b", "ckpt"), 1)
    assert model1 == ManagerKey(_digest("/runs/a", "model"), 1)
    assert Registry().enroll("/runs/a", "ckpt") == a1  # registries share nothing


def test_the_registry_records_announced_managers_and_entered_rounds() -> None:
    registry = Registry()
    manager = registry.enroll("/runs/a", "ckpt")
    assert not registry.built(manager)
    registry.announced(manager)
    assert registry.built(manager)
    assert not registry.built(ManagerKey(manager.digest, 2))
    assert not registry.reached(manager.round(1))
    registry.enter(manager.round(1))
    assert registry.reached(manager.round(1))
    assert registry.reached(RoundKey(ManagerKey(manager.digest, 1), 1))  # equal by value
    assert not registry.reached(manager.round(2))
    registry.reset()
    assert not registry.built(manager) and not registry.reached(manager.round(1))
    assert registry.enroll("/runs/a", "ckpt") == manager  # numbering starts over


def test_an_agreement_numbers_its_manager_in_the_registry_it_is_given(tmp_path: Path) -> None:
    registry = Registry()
    directory = str(tmp_path)
    first = Agreement(CHIEF, directory, "ckpt", 5.0, registry=registry)
    second = Agreement(CHIEF, directory, "ckpt", 5.0, registry=registry)
    digest = _digest(directory, "ckpt")
    assert first.prefix == f"safeckpt/{digest}/1/restore"
    assert second.prefix == f"safeckpt/{digest}/2/restore"
    assert Agreement(CHIEF, directory, "ckpt", 5.0, registry=Registry()).manager.number == 1
    assert not registry.built(first.manager)  # no coordination service here: not announced


def test_a_diagnosis_round_trips_through_the_strict_parser(ckpt_dir: Path) -> None:
    diagnosis = _damaged_diagnosis(ckpt_dir)
    failure = Failure(Topic.RESTORE, "E", "m", diagnosis)
    again = decode(encode(failure), Failure)
    assert again.diagnosis == diagnosis
    assert again.diagnosis is not None and again.diagnosis.cause is diagnosis.cause
    assert isinstance(again.diagnosis.candidates[0], safeckpt.CheckpointInfo)
    assert Cause(again.diagnosis.cause.value) is diagnosis.cause
