"""Diagnosis and CheckpointInfo records (safeckpt/_diagnosis.py, safeckpt/_info.py)."""

from __future__ import annotations

import json

from safeckpt import Cause, CheckpointInfo, Diagnosis
from safeckpt._diagnosis import describe_exception

INFO = CheckpointInfo(
    prefix="/runs/a/ckpt-2",
    name="ckpt",
    step=2,
    files=("ckpt-2.data-00000-of-00001", "ckpt-2.index"),
    size_bytes=1234,
    mtime=1_790_000_000.0,
    in_state_file=True,
)


def test_round_trip_through_json() -> None:
    diagnosis = Diagnosis(
        cause=Cause.TRUNCATED_DATA,
        summary="ckpt-3 is truncated.",
        directory="/runs/a",
        checkpoint="/runs/a/ckpt-3",
        evidence=("ckpt-3.data-00000-of-00001 is 10 bytes, the index needs 20.",),
        suggestions=("Restore /runs/a/ckpt-2.",),
        candidates=(INFO,),
        error="IndexError: Read less bytes than requested",
    )
    data = json.loads(diagnosis.to_json())
    assert data["cause"] == "truncated_data"
    assert data["ok"] is False
    assert data["candidates"][0]["step"] == 2
    assert Diagnosis.from_dict(data) == diagnosis


def test_text_reads_like_help() -> None:
    diagnosis = Diagnosis(
        cause=Cause.MISSING_INDEX,
        summary="ckpt-3 has no index.",
        directory="/runs/a",
        evidence=("/runs/a/ckpt-3.index is missing.",),
        suggestions=("Restore /runs/a/ckpt-2.",),
        candidates=(INFO,),
    )
    text = str(diagnosis)
    assert text.splitlines()[0] == "ckpt-3 has no index. [missing_index]"
    assert "What was found:\n    - /runs/a/ckpt-3.index is missing." in text
    assert "What to do:\n    - Restore /runs/a/ckpt-2." in text
    assert "/runs/a/ckpt-2  (step 2, written " in text


def test_ok_only_when_healthy() -> None:
    assert Diagnosis(Cause.HEALTHY, "fine").ok
    assert not Diagnosis(Cause.UNKNOWN, "?").ok


def test_describe_exception_keeps_the_first_line() -> None:
    assert describe_exception(ValueError("first\nsecond")) == "ValueError: first"


def test_cause_values_are_stable_strings() -> None:
    assert Cause("state_file_stale") is Cause.STATE_FILE_STALE
    assert str(Cause.HEALTHY) == "healthy"
    assert json.dumps({"c": Cause.NAME_MISMATCH}) == '{"c": "name_mismatch"}'


def test_info_round_trip() -> None:
    assert CheckpointInfo.from_dict(INFO.to_dict()) == INFO
    assert INFO.basename == "ckpt-2"
    assert INFO.complete
