"""Policy normalization and the Protocol (safeckpt/_restore/policies.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from safeckpt import (
    FallbackPolicy,
    FreshInit,
    OnEmpty,
    PreviousValid,
    Raise,
    SafeCheckpointManager,
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


@pytest.mark.parametrize(
    ("value", "error", "text"),
    [
        ("previous", ValueError, "'previous_valid'"),
        ((), ValueError, "at least one policy"),
        (42, TypeError, "fallback=42"),
        (("previous_valid", 3), TypeError, "got int"),
        (object(), TypeError, "recover(context)"),
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
