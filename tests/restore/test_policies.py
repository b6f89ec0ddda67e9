"""Policy normalization and the Protocol (safeckpt/_restore/policies.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from safeckpt import (
    Cause,
    CheckpointInfo,
    Diagnosis,
    FallbackPolicy,
    FreshInit,
    GiveUp,
    OnEmpty,
    PreviousValid,
    Raise,
    RecoveryContext,
    SafeCheckpointManager,
    StartFresh,
    TryCheckpoint,
    VerifyLevel,
)
from safeckpt._restore.policies import normalize_fallback
from safeckpt._settings import normalize_on_empty, normalize_verify
from testing.checkpoints import Trainee


def test_shorthands_normalize_once_to_frozen_policies() -> None:
    assert normalize_fallback("previous_valid") == (PreviousValid(),)
    assert normalize_fallback(("previous_valid", "fresh_init")) == (PreviousValid(), FreshInit())
    assert normalize_fallback(["raise"]) == (Raise(),)
    assert normalize_fallback(PreviousValid(max_attempts=2)) == (PreviousValid(max_attempts=2),)
    with pytest.raises(AttributeError):
        PreviousValid().max_attempts = 3  # type: ignore[misc]
    assert all(isinstance(p, FallbackPolicy) for p in (Raise(), PreviousValid(), FreshInit()))


def test_builtin_policies_decide_from_the_context_alone(tmp_path: Path) -> None:
    failure = Diagnosis(Cause.TRUNCATED_DATA, "ckpt-3 is truncated.", str(tmp_path))
    older = tuple(CheckpointInfo(str(tmp_path / f"ckpt-{k}"), "ckpt", k) for k in (2, 1))
    context = RecoveryContext(failure, older, (failure,))
    assert Raise().decide(context) == GiveUp()
    assert FreshInit().decide(context) == StartFresh()
    assert FreshInit(sweep_existing=True).decide(context) == StartFresh(sweep_existing=True)
    assert PreviousValid().decide(context) == TryCheckpoint(older[0])
    assert PreviousValid(max_attempts=2).decide(replace(context, tried=1)) == TryCheckpoint(
        older[0]
    )
    assert PreviousValid(max_attempts=2).decide(replace(context, tried=2)) is None
    assert PreviousValid().decide(replace(context, candidates=())) is None


class OldProtocol:
    """A policy written for the former protocol: it called back into the restore."""

    def recover(self, context: object) -> None:
        return None


@pytest.mark.parametrize(
    ("value", "error", "text"),
    [
        ("previous", ValueError, "'previous_valid'"),
        ((), ValueError, "at least one policy"),
        (42, TypeError, "fallback=42"),
        (("previous_valid", 3), TypeError, "got int"),
        (object(), TypeError, "recover(context)"),
        (object(), TypeError, "decide(context)"),
        (OldProtocol(), TypeError, "has recover(context), the former policy protocol"),
        ((OldProtocol(),), TypeError, "docs/fallback.md, section 'Policies'"),
    ],
)
def test_bad_fallback(value: object, error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        normalize_fallback(value)
    assert text in str(info.value)


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_max_attempts(value: object) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        PreviousValid(max_attempts=value)  # type: ignore[arg-type]


def test_verify_and_on_empty() -> None:
    assert normalize_verify("deep") is VerifyLevel.DEEP
    assert normalize_verify(VerifyLevel.NONE) is VerifyLevel.NONE
    assert normalize_on_empty("raise") is OnEmpty.RAISE
    with pytest.raises(ValueError, match="verify='full'.*'quick'"):
        normalize_verify("full")
    with pytest.raises(TypeError, match="on_empty=None"):
        normalize_on_empty(None)


def test_manager_validates_options(tmp_path: Path) -> None:
    t = Trainee()
    d = str(tmp_path / "d")
    m = SafeCheckpointManager(
        t.checkpoint, d, 3, fallback=("previous_valid", "fresh_init"), verify="deep"
    )
    assert m.fallback == (PreviousValid(), FreshInit())
    assert m.verify is VerifyLevel.DEEP and m.on_empty is OnEmpty.INITIALIZE
    assert not m.quarantine and not m.cleanup_temp
    with pytest.raises(ValueError, match="fallback='fresh'"):
        SafeCheckpointManager(t.checkpoint, d, 3, fallback="fresh")
    with pytest.raises(TypeError, match="quarantine=1"):
        SafeCheckpointManager(t.checkpoint, d, 3, quarantine=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="read_only=True"):
        SafeCheckpointManager(t.checkpoint, d, 3, read_only=True, cleanup_temp=True)
