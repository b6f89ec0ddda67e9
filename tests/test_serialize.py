"""Every result type round-trips through to_dict / JSON / from_dict, with every field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import safeckpt
from safeckpt import Cause, CheckpointInfo, Diagnosis, Outcome, RestoreReport
from safeckpt._catalog.repair import RepairPlan, plan_repair
from safeckpt._serialize import MalformedError, parse, to_jsonable
from testing.checkpoints import Trainee, write_checkpoints


def _round_trip(obj: object) -> object:
    data = obj.to_dict()  # type: ignore[attr-defined]
    text = json.dumps(data)
    return type(obj).from_dict(json.loads(text))  # type: ignore[attr-defined]


def _serialized_fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.metadata.get("serialize", True)}


def test_checkpoint_info_round_trips(ckpt_dir: Path) -> None:
    (info, *_rest) = safeckpt.list_checkpoints(ckpt_dir)
    damaged = dataclasses.replace(info, problems=(Cause.TRUNCATED_DATA,), mtime=None)
    for each in (info, damaged):
        assert _round_trip(each) == each
        assert set(each.to_dict()) == _serialized_fields(CheckpointInfo)


def test_diagnosis_round_trips_with_nested_candidates(ckpt_dir: Path) -> None:
    (ckpt_dir / "ckpt-3.data-00000-of-00001").write_bytes(b"short")
    diagnosis = safeckpt.diagnose(ckpt_dir)
    assert diagnosis.candidates and diagnosis.evidence and diagnosis.suggestions
    assert _round_trip(diagnosis) == diagnosis
    assert set(diagnosis.to_dict()) == _serialized_fields(Diagnosis) | {"ok"}
    assert diagnosis.to_dict()["ok"] is False


def test_restore_report_round_trips_without_status(ckpt_dir: Path) -> None:
    (ckpt_dir / "ckpt-3.data-00000-of-00001").write_bytes(b"short")
    t = Trainee()
    report = safeckpt.SafeCheckpointManager(t.checkpoint, str(ckpt_dir), 3).restore()
    assert report.outcome is Outcome.FELL_BACK and report.skipped
    again = _round_trip(report)
    assert again == report  # status is not compared
    assert isinstance(again, RestoreReport) and again.status is None
    assert set(report.to_dict()) == _serialized_fields(RestoreReport)
    assert "status" not in report.to_dict()


def test_repair_plan_round_trips_with_every_field(tmp_path: Path) -> None:
    d = tmp_path / "run"
    write_checkpoints(d, 3)
    (d / "ckpt-2.data-00000-of-00001").write_bytes(b"short")
    plan = plan_repair(str(d))
    assert plan.skipped and plan.recorded and plan.timestamps
    assert _round_trip(plan) == plan
    data = plan.to_dict()
    assert set(data) == _serialized_fields(RepairPlan)
    assert data["skipped"][0] == {"prefix": str(d / "ckpt-2"), "reason": plan.skipped[0].reason}


def test_parse_rebuilds_every_result_type_and_names_a_bad_field(ckpt_dir: Path) -> None:
    (ckpt_dir / "ckpt-3.data-00000-of-00001").write_bytes(b"short")
    diagnosis = safeckpt.diagnose(ckpt_dir)
    report = safeckpt.SafeCheckpointManager(Trainee().checkpoint, str(ckpt_dir), 3).restore()
    plan = plan_repair(str(ckpt_dir))
    for obj in (diagnosis.candidates[0], diagnosis, report, plan):
        data = json.loads(json.dumps(to_jsonable(obj)))
        assert parse(type(obj), data) == obj
    data = json.loads(json.dumps(to_jsonable(diagnosis)))
    data["candidates"][1]["problems"] = ["made_up"]
    with pytest.raises(MalformedError, match=r"^candidates\[1\]\.problems\[0\]: 'made_up' is not"):
        parse(Diagnosis, data)
    with pytest.raises(MalformedError, match=r"^Diagnosis: unexpected field 'ok'"):
        parse(Diagnosis, diagnosis.to_dict())  # to_dict adds "ok"; parse takes to_jsonable
