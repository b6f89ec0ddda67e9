"""RestoreReport (safeckpt/_report.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safeckpt import Cause, Outcome, RestoreReport, SafeCheckpointManager
from testing.checkpoints import Trainee


def test_report_round_trips_and_passes_status_through(ckpt_dir: Path) -> None:
    (ckpt_dir / "ckpt-3.index").unlink()
    t = Trainee()
    report = SafeCheckpointManager(t.checkpoint, str(ckpt_dir), 3).restore()
    data = json.loads(report.to_json())
    assert data["outcome"] == "fell_back" and data["step"] == 2
    assert data["skipped"][0]["cause"] == Cause.MISSING_INDEX.value
    again = RestoreReport.from_dict(data)
    assert again == report  # status is not compared
    assert again.outcome is Outcome.FELL_BACK
    assert report.assert_consumed() is report
    assert report.expect_partial() is report
    with pytest.raises(ValueError, match="no TensorFlow load status"):
        again.assert_existing_objects_matched()
    text = str(report)
    assert "Restored" in text and "ckpt-3" in text and "fell back past 1" in text


def test_assert_consumed_fails_when_the_program_has_more_objects(ckpt_dir: Path) -> None:
    t = Trainee()
    t.checkpoint.extra = __import__("tensorflow").Variable(1.0)
    # match="partial" lets the restore through; TF's own assertion still sees the gap.
    report = SafeCheckpointManager(t.checkpoint, str(ckpt_dir), 3, match="partial").restore()
    assert report.unmatched == ("extra",)
    with pytest.raises(AssertionError):
        report.assert_consumed()


def test_initialized_report_text(tmp_path: Path) -> None:
    report = SafeCheckpointManager(Trainee().checkpoint, str(tmp_path / "e"), 3).restore()
    assert not report.restored
    assert str(report).startswith("Initialized from scratch")
    assert RestoreReport.from_dict(report.to_dict()).outcome is Outcome.INITIALIZED
