"""Restoring through the policies (safeckpt/_restore/engine.py), on real damaged checkpoints."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import (
    Cause,
    CheckpointCorruptedError,
    CheckpointInfo,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    FreshInit,
    GiveUp,
    Outcome,
    PreviousValid,
    Raise,
    RecoveryContext,
    SafeCheckpointManager,
    StartFresh,
    TryCheckpoint,
)
from safeckpt._format.index import read_index
from safeckpt._restore.policies import Decision
from testing.checkpoints import Trainee, write_checkpoints


def data_file(d: Path, step: int, name: str = "ckpt") -> Path:
    return d / f"{name}-{step}.data-00000-of-00001"


def truncate(path: Path, size: int = 10) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)


def flip_tensor_byte(d: Path, step: int, key: str = "w/") -> None:
    """Flip one byte inside the bytes of the tensor whose key starts with `key`."""
    index = read_index(str(d / f"ckpt-{step}.index"))
    entry = next(e for e in index.entries if e.name.startswith(key) and e.size)
    path = data_file(d, step)
    data = bytearray(path.read_bytes())
    data[entry.offset + 1] ^= 0xFF
    path.write_bytes(bytes(data))


def snapshot(d: Path) -> dict[str, str]:
    """sha256 of every file under `d`, by relative path."""
    return {
        str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def write_state(d: Path, latest: str, paths: list[str]) -> None:
    lines = [f'model_checkpoint_path: "{latest}"']
    lines += [f'all_model_checkpoint_paths: "{p}"' for p in paths]
    (d / "checkpoint").write_text("\n".join(lines) + "\n")


def manager(t: Trainee, d: Path, **kwargs: object) -> SafeCheckpointManager:
    kwargs.setdefault("max_to_keep", 5)
    return SafeCheckpointManager(t.checkpoint, str(d), **kwargs)  # type: ignore[arg-type]


# --- damage matrix: default policy (previous_valid) ------------------------------------

Damage = Callable[[Path], None]


def newest_deleted(d: Path) -> None:
    for p in d.glob("ckpt-3.*"):
        p.unlink()


def newest_truncated(d: Path) -> None:
    truncate(data_file(d, 3))


def newest_bit_flipped(d: Path) -> None:
    flip_tensor_byte(d, 3)


def index_garbled(d: Path) -> None:
    path = d / "ckpt-3.index"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x5A
    path.write_bytes(bytes(data))


def data_shard_missing(d: Path) -> None:
    data_file(d, 3).unlink()


# (damage, expected restored value, outcome, cause of the skipped newest or None)
FALLBACK_CASES: dict[str, tuple[Damage, float, Outcome, Cause | None]] = {
    "newest_deleted": (newest_deleted, 2.0, Outcome.FELL_BACK, Cause.STATE_FILE_STALE),
    "truncated": (newest_truncated, 2.0, Outcome.FELL_BACK, Cause.TRUNCATED_DATA),
    "bit_flipped": (newest_bit_flipped, 2.0, Outcome.FELL_BACK, Cause.CORRUPT_DATA),
    "index_garbled": (index_garbled, 2.0, Outcome.FELL_BACK, Cause.CORRUPT_INDEX),
    "data_shard_missing": (data_shard_missing, 2.0, Outcome.FELL_BACK, Cause.MISSING_DATA_SHARD),
}


@pytest.mark.parametrize("verify", ["quick", "deep", "none"])
@pytest.mark.parametrize("case", list(FALLBACK_CASES))
def test_previous_valid_falls_back(
    case: str, verify: str, ckpt_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    damage, value, outcome, cause = FALLBACK_CASES[case]
    damage(ckpt_dir)
    before = snapshot(ckpt_dir)
    t = Trainee()
    m = manager(t, ckpt_dir, verify=verify)
    with caplog.at_level(logging.INFO, logger="safeckpt"):
        report = m.restore(m.latest_checkpoint)
    assert t.value == value
    assert report.outcome is outcome
    assert report.save_path == str(ckpt_dir / "ckpt-2")
    assert report.step == 2
    assert report.requested == str(ckpt_dir / "ckpt-3")
    assert [d.checkpoint for d in report.skipped] == [str(ckpt_dir / "ckpt-3")]
    if verify != "none" or case in ("newest_deleted",):
        assert report.skipped[0].cause is cause, report.skipped[0]
    else:  # TF's own error, diagnosed by probing the files afterwards
        assert report.skipped[0].cause in (cause, Cause.MISSING_INDEX, Cause.CORRUPT_DATA)
    assert m.last_restore is report
    assert m.latest_checkpoint == str(ckpt_dir / "ckpt-2")
    infos = [r for r in caplog.records if r.levelno == logging.INFO and "Restored" in r.message]
    assert len(infos) == 1 and "ckpt-2" in infos[0].message and "fell_back" in infos[0].message
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ckpt-3" in r.message for r in warnings)
    assert snapshot(ckpt_dir) == before  # nothing on disk changed


def test_bit_flip_with_quick_verify_reaches_tensorflow_and_is_diagnosed(ckpt_dir: Path) -> None:
    newest_bit_flipped(ckpt_dir)
    t = Trainee()
    report = manager(t, ckpt_dir, verify="quick").restore()
    (skipped,) = report.skipped
    assert skipped.cause is Cause.CORRUPT_DATA
    assert skipped.error is not None and "DataLoss" in skipped.error
    assert any("TensorFlow raised" in e for e in skipped.evidence)


def test_bit_flip_with_deep_verify_never_reaches_tensorflow(ckpt_dir: Path) -> None:
    newest_bit_flipped(ckpt_dir)
    report = manager(Trainee(), ckpt_dir, verify="deep").restore()
    assert report.skipped[0].cause is Cause.CORRUPT_DATA
    assert report.skipped[0].error is None  # rejected by verification, not by TensorFlow


# --- state file problems: the newest checkpoint is fine ------------------------------


def test_state_file_missing_restores_newest_found_by_listing(ckpt_dir: Path) -> None:
    (ckpt_dir / "checkpoint").unlink()
    plain = tf.train.CheckpointManager(Trainee().checkpoint, str(ckpt_dir), 5)
    assert plain.latest_checkpoint is None  # what TF would do: start from scratch
    t = Trainee()
    m = manager(t, ckpt_dir)
    assert m.latest_checkpoint == str(ckpt_dir / "ckpt-3")
    report = m.restore()
    assert t.value == 3.0
    assert report.outcome is Outcome.RESTORED
    assert any("missing" in n for n in report.notes)


@pytest.mark.parametrize("content", [b"", b"\x00\xff\xfe binary", b"model_checkpoint_path: 3"])
def test_state_file_garbled_restores_newest(ckpt_dir: Path, content: bytes) -> None:
    (ckpt_dir / "checkpoint").write_bytes(content)
    t = Trainee()
    m = manager(t, ckpt_dir)
    report = m.restore()
    assert t.value == 3.0
    assert report.outcome is Outcome.RESTORED
    assert any("unreadable" in n for n in report.notes)


def test_complete_checkpoint_newer_than_state_file_is_restored(ckpt_dir: Path) -> None:
    # A crash between writing ckpt-3 and writing the state file: it still names ckpt-2.
    write_state(ckpt_dir, "ckpt-2", ["ckpt-1", "ckpt-2"])
    old = (ckpt_dir / "ckpt-3.index").stat().st_mtime - 60
    os.utime(ckpt_dir / "checkpoint", (old, old))
    t = Trainee()
    m = manager(t, ckpt_dir)
    assert m.latest_checkpoint == str(ckpt_dir / "ckpt-3")
    assert m.checkpoints[-1] == str(ckpt_dir / "ckpt-3")
    report = m.restore()
    assert t.value == 3.0 and report.outcome is Outcome.RESTORED
    assert any("interrupted" in n for n in report.notes)


def test_rewound_run_never_writes_over_the_newer_checkpoints(ckpt_dir: Path) -> None:
    # The user went back to ckpt-1. TensorFlow's next save would be ckpt-2 (save_counter 1),
    # over the intact ckpt-2: safeckpt numbers it above the highest existing step instead.
    before = {p.name: p.read_bytes() for p in ckpt_dir.glob("ckpt-*")}
    t = Trainee()
    m = manager(t, ckpt_dir)
    m.restore(str(ckpt_dir / "ckpt-1"))
    t.set(7)
    assert m.save() == str(ckpt_dir / "ckpt-4")
    assert {p.name: p.read_bytes() for p in ckpt_dir.glob("ckpt-[123].*")} == before
    fresh = Trainee()
    report = manager(fresh, ckpt_dir).restore()
    assert report.save_path == str(ckpt_dir / "ckpt-4")
    assert fresh.value == 7.0


def test_rewound_run_follows_the_state_files_latest_not_the_highest_step(ckpt_dir: Path) -> None:
    # Plain TF rewound: restored ckpt-1 and saved ckpt-2 over the old one, so the state
    # file's latest (the last save) is not the highest step.
    t = Trainee()
    plain = tf.train.CheckpointManager(t.checkpoint, str(ckpt_dir), max_to_keep=None)
    t.checkpoint.restore(str(ckpt_dir / "ckpt-1"))
    t.set(7)
    assert plain.save() == str(ckpt_dir / "ckpt-2")
    fresh = Trainee()
    m = manager(fresh, ckpt_dir)
    assert m.latest_checkpoint == str(ckpt_dir / "ckpt-2")
    assert m.restore().save_path == str(ckpt_dir / "ckpt-2")
    assert fresh.value == 7.0


def test_foreign_state_paths_are_reanchored(ckpt_dir: Path) -> None:
    write_state(
        ckpt_dir,
        "/old/machine/run/ckpt-3",
        [f"/old/machine/run/ckpt-{k}" for k in (1, 2, 3)],
    )
    t = Trainee()
    m = manager(t, ckpt_dir)
    assert m.latest_checkpoint == str(ckpt_dir / "ckpt-3")
    assert all(p.startswith(str(ckpt_dir)) for p in m.checkpoints)
    report = m.restore()
    assert t.value == 3.0
    assert any("re-anchored" in n for n in report.notes)


def test_other_checkpoint_name_without_state_file_fails_closed(tmp_path: Path) -> None:
    d = tmp_path / "named"
    write_checkpoints(d, 2, name="model")
    (d / "checkpoint").unlink()
    t = Trainee()
    with pytest.raises(tf.errors.NotFoundError) as info:
        manager(t, d).restore()  # checkpoint_name="ckpt": TF would start from scratch
    assert isinstance(info.value, CheckpointNotFoundError)
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.NAME_MISMATCH
    assert "checkpoint_name='model'" in str(info.value)
    assert t.value == 0.0


def test_other_checkpoint_name_named_by_state_file_is_restored_as_tf_does(
    tmp_path: Path,
) -> None:
    d = tmp_path / "named"
    write_checkpoints(d, 2, name="model")
    plain = Trainee()
    tf_manager = tf.train.CheckpointManager(plain.checkpoint, str(d), 3)
    assert tf_manager.restore_or_initialize() == str(d / "model-2")  # TF follows the state file
    t = Trainee()
    m = manager(t, d)
    assert m.latest_checkpoint == str(d / "model-2")
    report = m.restore(m.latest_checkpoint)
    assert report.save_path == str(d / "model-2") and t.value == 2.0 == plain.value
    assert any("checkpoint_name='model'" in n for n in report.notes)


# --- policies and chains ----------------------------------------------------------------


def test_raise_policy_raises_diagnosed_error(ckpt_dir: Path) -> None:
    newest_truncated(ckpt_dir)
    t = Trainee()
    m = manager(t, ckpt_dir, fallback="raise")
    with pytest.raises(tf.errors.DataLossError) as info:
        m.restore()
    error = info.value
    assert isinstance(error, CheckpointCorruptedError)
    assert error.diagnosis is not None and error.diagnosis.cause is Cause.TRUNCATED_DATA
    assert [d.checkpoint for d in error.attempts] == [str(ckpt_dir / "ckpt-3")]
    assert str(data_file(ckpt_dir, 3)) in str(error)
    assert t.value == 0.0
    assert m.last_restore is None


def test_previous_valid_exhausted_lists_every_attempt(ckpt_dir: Path) -> None:
    for step in (1, 2, 3):
        truncate(data_file(ckpt_dir, step))
    t = Trainee()
    with pytest.raises(tf.errors.OpError) as info:
        manager(t, ckpt_dir).restore_or_initialize()
    error = info.value
    assert isinstance(error, CheckpointCorruptedError)
    assert [d.checkpoint for d in error.attempts] == [
        str(ckpt_dir / f"ckpt-{k}") for k in (3, 2, 1)
    ]
    assert "Checkpoints tried" in str(error)
    assert "fresh_init" in str(error)  # the suggestion names the option
    assert t.value == 0.0


def test_previous_valid_max_attempts(ckpt_dir: Path) -> None:
    truncate(data_file(ckpt_dir, 3))
    truncate(data_file(ckpt_dir, 2))
    t = Trainee()
    with pytest.raises(CheckpointCorruptedError) as info:
        manager(t, ckpt_dir, fallback=PreviousValid(max_attempts=1)).restore()
    assert len(info.value.attempts) == 2  # the newest, then one earlier checkpoint
    report = manager(t, ckpt_dir, fallback=PreviousValid(max_attempts=2)).restore()
    assert report.save_path == str(ckpt_dir / "ckpt-1") and t.value == 1.0


def test_chain_falls_through_to_fresh_init_and_keeps_existing(
    ckpt_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for step in (1, 2, 3):
        truncate(data_file(ckpt_dir, step))
    before = snapshot(ckpt_dir)
    calls: list[int] = []
    t = Trainee()
    m = SafeCheckpointManager(
        t.checkpoint,
        str(ckpt_dir),
        max_to_keep=1,
        init_fn=lambda: calls.append(1),
        fallback=("previous_valid", "fresh_init"),
    )
    with caplog.at_level(logging.INFO, logger="safeckpt"):
        assert m.restore_or_initialize() is None
    report = m.last_restore
    assert report is not None and report.outcome is Outcome.INITIALIZED
    assert report.reason is not None and report.reason.cause is Cause.TRUNCATED_DATA
    assert len(report.skipped) == 3
    assert calls == [1]
    assert any(
        r.levelno == logging.WARNING and "initialization" in r.message for r in caplog.records
    )
    assert m.latest_checkpoint is None
    # New checkpoints are numbered above the highest existing step, and no save deletes or
    # overwrites what was there before (max_to_keep=1 would have swept ckpt-1..3).
    saved = [m.save() for _ in range(3)]
    assert saved == [str(ckpt_dir / f"ckpt-{k}") for k in (4, 5, 6)]
    after = snapshot(ckpt_dir)
    del before["checkpoint"]  # the state file is rewritten by every save, as in TF
    assert {k: v for k, v in after.items() if k in before} == before
    assert not (ckpt_dir / "ckpt-4.index").exists()  # swept: it was this run's own
    assert (ckpt_dir / "ckpt-6.index").exists()


def test_fresh_init_sweep_existing_opt_in(ckpt_dir: Path) -> None:
    truncate(data_file(ckpt_dir, 3))
    t = Trainee()
    m = manager(t, ckpt_dir, max_to_keep=1, fallback=FreshInit(sweep_existing=True))
    report = m.restore()
    assert report.outcome is Outcome.INITIALIZED
    assert m.save() == str(ckpt_dir / "ckpt-4")
    assert not (ckpt_dir / "ckpt-1.index").exists()  # the user opted in to the sweep


def test_fresh_init_alone_starts_fresh_even_with_valid_checkpoints(ckpt_dir: Path) -> None:
    truncate(data_file(ckpt_dir, 3))
    t = Trainee()
    report = manager(t, ckpt_dir, fallback="fresh_init").restore()
    assert report.outcome is Outcome.INITIALIZED
    assert t.value == 0.0
    assert report.reason is not None and report.reason.checkpoint == str(ckpt_dir / "ckpt-3")


def test_raise_then_fresh_init_chain_stops_at_raise(ckpt_dir: Path) -> None:
    truncate(data_file(ckpt_dir, 3))
    with pytest.raises(CheckpointCorruptedError):
        manager(Trainee(), ckpt_dir, fallback=(Raise(), "fresh_init")).restore()


class OldestFirst:
    """A user-defined policy: restore the oldest earlier checkpoint that works."""

    def decide(self, context: RecoveryContext) -> Decision | None:
        return TryCheckpoint(context.candidates[-1]) if context.candidates else None


def test_user_defined_policy(ckpt_dir: Path) -> None:
    truncate(data_file(ckpt_dir, 3))
    t = Trainee()
    report = manager(t, ckpt_dir, fallback=OldestFirst()).restore()
    assert report.save_path == str(ckpt_dir / "ckpt-1") and t.value == 1.0
    assert report.outcome is Outcome.FELL_BACK


class EvenStepsThenFresh:
    """A user-defined policy written the new way: try only the checkpoints of even steps,
    newest first, then start fresh. It keeps every context it was shown."""

    def __init__(self) -> None:
        self.seen: list[RecoveryContext] = []

    def decide(self, context: RecoveryContext) -> Decision | None:
        self.seen.append(context)
        even = [c for c in context.candidates if c.step is not None and c.step % 2 == 0]
        return TryCheckpoint(even[0]) if even else StartFresh()


def test_custom_policy_even_steps_falls_back_to_an_even_step(tmp_path: Path) -> None:
    d = tmp_path / "run"
    write_checkpoints(d, 5)  # ckpt-k holds k
    truncate(data_file(d, 5))
    truncate(data_file(d, 4))
    policy = EvenStepsThenFresh()
    t = Trainee()
    m = manager(t, d, fallback=policy)
    report = m.restore()
    assert t.value == 2.0  # ckpt-3 was never tried: its step is odd
    assert report.outcome is Outcome.FELL_BACK
    assert report.save_path == str(d / "ckpt-2") and report.step == 2
    assert report.requested == str(d / "ckpt-5")
    assert [s.checkpoint for s in report.skipped] == [str(d / "ckpt-5"), str(d / "ckpt-4")]
    assert {s.cause for s in report.skipped} == {Cause.TRUNCATED_DATA}
    # What the policy was shown: frozen snapshots, the untried candidates newest first.
    assert [[c.step for c in ctx.candidates] for ctx in policy.seen] == [[4, 3, 2, 1], [3, 2, 1]]
    assert [ctx.tried for ctx in policy.seen] == [0, 1]
    assert [len(ctx.attempts) for ctx in policy.seen] == [1, 2]
    assert all(ctx.failure.checkpoint == str(d / "ckpt-5") for ctx in policy.seen)
    with pytest.raises(AttributeError):
        policy.seen[0].tried = 5  # type: ignore[misc]
    assert m.latest_checkpoint == str(d / "ckpt-2")
    assert m.save() == str(d / "ckpt-6")  # never over the damaged ckpt-4 or ckpt-5


def test_custom_policy_even_steps_then_starts_fresh(tmp_path: Path) -> None:
    d = tmp_path / "run"
    write_checkpoints(d, 4)
    for step in (4, 2):
        truncate(data_file(d, step))
    before = snapshot(d)
    policy = EvenStepsThenFresh()
    t = Trainee()
    m = manager(t, d, fallback=policy)
    report = m.restore()
    assert report.outcome is Outcome.INITIALIZED and t.value == 0.0
    assert report.save_path is None
    assert report.reason is not None and report.reason.checkpoint == str(d / "ckpt-4")
    assert [s.checkpoint for s in report.skipped] == [str(d / "ckpt-4"), str(d / "ckpt-2")]
    assert [[c.step for c in ctx.candidates] for ctx in policy.seen] == [[3, 2, 1], [3, 1]]
    assert snapshot(d) == before  # nothing moved, deleted or written
    assert m.save() == str(d / "ckpt-5")  # numbered above every existing checkpoint
    assert all((d / f"ckpt-{k}.index").exists() for k in (1, 2, 3, 4))


def test_custom_policy_give_up_raises_with_attempts(ckpt_dir: Path) -> None:
    truncate(data_file(ckpt_dir, 3))

    class TryOneThenGiveUp:
        def decide(self, context: RecoveryContext) -> Decision | None:
            return GiveUp() if context.tried else TryCheckpoint(context.candidates[-1])

    truncate(data_file(ckpt_dir, 1))
    with pytest.raises(CheckpointCorruptedError) as info:
        manager(Trainee(), ckpt_dir, fallback=(TryOneThenGiveUp(), "fresh_init")).restore()
    tried = [a.checkpoint for a in info.value.attempts]
    assert tried == [str(ckpt_dir / "ckpt-3"), str(ckpt_dir / "ckpt-1")]  # ckpt-2 untried


class TryTheRejected:
    """A policy that breaks the protocol: it tries a checkpoint already rejected."""

    def decide(self, context: RecoveryContext) -> Decision | None:
        assert context.failure.checkpoint is not None
        return TryCheckpoint(CheckpointInfo(context.failure.checkpoint, "ckpt", 3))


class ReturnsAReport:
    """A policy that returns something other than a decision."""

    def decide(self, context: RecoveryContext) -> object:
        return "fresh_init"


@pytest.mark.parametrize(
    ("policy", "error", "text"),
    [
        (TryTheRejected(), ValueError, "not one of context.candidates"),
        (ReturnsAReport(), TypeError, "returned 'fresh_init'"),
    ],
)
def test_a_policy_breaking_the_protocol_fails_the_restore_clearly(
    ckpt_dir: Path, policy: object, error: type[Exception], text: str
) -> None:
    truncate(data_file(ckpt_dir, 3))
    t = Trainee()
    m = manager(t, ckpt_dir, fallback=policy)
    with pytest.raises(error, match=text) as info:
        m.restore()
    assert "docs/fallback.md" in str(info.value)
    assert t.value == 0.0
    assert str(ckpt_dir / "ckpt-3") not in m.checkpoints  # the rejection is still applied


# --- empty directories ------------------------------------------------------------------


def test_on_empty_initialize(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    t = Trainee()
    m = SafeCheckpointManager(t.checkpoint, "rel/run", 3, init_fn=lambda: calls.append(1))
    with caplog.at_level(logging.INFO, logger="safeckpt"):
        report = m.restore()
    assert report.outcome is Outcome.INITIALIZED and report.reason is None
    assert report.save_path is None and calls == [1]
    assert any(m.directory in r.message and os.path.isabs(m.directory) for r in caplog.records)
    with pytest.raises(AssertionError):
        report.assert_consumed()  # TF's InitializationOnlyStatus: nothing was restored


def test_on_empty_raise(tmp_path: Path) -> None:
    d = tmp_path / "eval"
    d.mkdir()
    write_checkpoints(tmp_path / "evall", 2)  # a near miss the error should point to
    m = manager(Trainee(), d, on_empty="raise", read_only=True)
    with pytest.raises(tf.errors.NotFoundError) as info:
        m.restore()
    assert isinstance(info.value, CheckpointNotFoundError)
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.NO_CHECKPOINTS
    assert "on_empty='raise'" in str(info.value)


def test_interrupted_first_save_counts_as_empty(tmp_path: Path) -> None:
    d = tmp_path / "run"
    (d / "ckpt-1_temp").mkdir(parents=True)
    t = Trainee()
    m = manager(t, d)
    report = m.restore()
    assert report.outcome is Outcome.INITIALIZED
    assert any("never finished" in n for n in report.notes)
    assert m.save() == str(d / "ckpt-2")  # numbered above the leftover


# --- explicit paths ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "note"),
    [
        ("ckpt-2.index", "checkpoint file"),
        ("ckpt-2.data-00000-of-00001", "checkpoint file"),
    ],
)
def test_explicit_file_names_become_prefixes(ckpt_dir: Path, given: str, note: str) -> None:
    t = Trainee()
    report = manager(t, ckpt_dir).restore(str(ckpt_dir / given))
    assert report.save_path == str(ckpt_dir / "ckpt-2") and t.value == 2.0
    assert any(note in n for n in report.notes)


def test_explicit_directory_and_state_file(ckpt_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_checkpoints(other, 2)
    t = Trainee()
    m = manager(t, ckpt_dir)
    assert m.restore(other).save_path == str(other / "ckpt-2") and t.value == 2.0
    assert m.restore(str(other / "checkpoint")).save_path == str(other / "ckpt-2")


def test_explicit_damaged_checkpoint_never_turns_into_another(ckpt_dir: Path) -> None:
    truncate(data_file(ckpt_dir, 2))
    t = Trainee()
    with pytest.raises(CheckpointCorruptedError) as info:
        manager(t, ckpt_dir).restore(str(ckpt_dir / "ckpt-2"))
    assert t.value == 0.0
    assert any(
        str(ckpt_dir / "ckpt-1") in s or "ckpt-3" in s for s in info.value.diagnosis.suggestions
    )  # type: ignore[union-attr]


def test_explicit_missing_step_is_not_found(ckpt_dir: Path) -> None:
    with pytest.raises(tf.errors.NotFoundError) as info:
        manager(Trainee(), ckpt_dir).restore(str(ckpt_dir / "ckpt-7"))
    assert info.value.diagnosis.cause is Cause.STEP_NOT_FOUND  # type: ignore[attr-defined]


def test_explicit_mismatch_raises_value_error(ckpt_dir: Path) -> None:
    wide = tf.train.Checkpoint(w=tf.Variable(tf.zeros([5])), step=tf.Variable(0, dtype=tf.int64))
    m = SafeCheckpointManager(wide, str(ckpt_dir), 3)
    with pytest.raises(ValueError) as info:
        m.restore(str(ckpt_dir / "ckpt-1"))
    assert isinstance(info.value, CheckpointMismatchError)
    # Found by comparing shapes before TensorFlow read anything: nothing was assigned.
    assert info.value.__cause__ is None
    assert wide.w.numpy().tolist() == [0.0] * 5


def test_bad_save_path_argument(ckpt_dir: Path) -> None:
    m = manager(Trainee(), ckpt_dir)
    with pytest.raises(TypeError, match="save_path"):
        m.restore(42)
    with pytest.raises(ValueError, match="save_path"):
        m.restore(str(ckpt_dir / "ckpt-[1]"))


# --- reconciliation, retention, housekeeping -------------------------------------------


def test_latest_checkpoint_names_existing_files(ckpt_dir: Path) -> None:
    newest_deleted(ckpt_dir)
    t = Trainee()
    m = manager(t, ckpt_dir)
    assert m.latest_checkpoint == str(ckpt_dir / "ckpt-2")
    assert str(ckpt_dir / "ckpt-3") not in m.checkpoints
    t.checkpoint.restore(m.latest_checkpoint)  # existing scripts keep working
    assert t.value == 2.0


def test_retention_never_sweeps_newest_verified_for_damaged(ckpt_dir: Path) -> None:
    truncate(data_file(ckpt_dir, 3))
    t = Trainee()
    m = manager(t, ckpt_dir, max_to_keep=3)
    assert m.restore().save_path == str(ckpt_dir / "ckpt-2")
    m.save(checkpoint_number=10)
    m.save(checkpoint_number=11)
    # Plain TF keeps the damaged ckpt-3 in its rotation and deletes ckpt-2 here.
    assert (ckpt_dir / "ckpt-2.index").exists()
    assert str(ckpt_dir / "ckpt-3") not in m.checkpoints


def test_quarantine_moves_damaged_checkpoint(ckpt_dir: Path) -> None:
    truncate(data_file(ckpt_dir, 3))
    t = Trainee()
    report = manager(t, ckpt_dir, quarantine=True).restore()
    assert t.value == 2.0
    assert not (ckpt_dir / "ckpt-3.index").exists()
    assert (ckpt_dir / "quarantine" / "ckpt-3.index").exists()
    assert (ckpt_dir / "quarantine" / "ckpt-3.data-00000-of-00001").stat().st_size == 10
    assert any("quarantine" in n for n in report.notes)
    again = manager(Trainee(), ckpt_dir, quarantine=True).restore()
    assert again.outcome is Outcome.RESTORED  # not retried forever


def test_cleanup_temp_removes_only_older_leftovers(ckpt_dir: Path) -> None:
    old_temp = ckpt_dir / "ckpt-9_temp"
    old_temp.mkdir()
    (old_temp / "part-00000-of-00001.data-00000-of-00001.tempstate1").write_bytes(b"x")
    os.utime(old_temp, (1, 1))
    state_temp = ckpt_dir / "checkpoint.tmp1234"
    state_temp.write_text("x")
    os.utime(state_temp, (1, 1))
    other_name = ckpt_dir / "model-1_temp"
    other_name.mkdir()
    os.utime(other_name, (1, 1))
    t = Trainee()
    m = manager(t, ckpt_dir, cleanup_temp=True)
    m.restore()
    future = ckpt_dir / "ckpt-5_temp"  # e.g. an async save still in flight
    future.mkdir()
    os.utime(future, (4e9, 4e9))
    m.save()
    assert not old_temp.exists() and not state_temp.exists()
    assert future.exists() and other_name.exists()


def test_without_cleanup_temp_leftovers_stay(ckpt_dir: Path) -> None:
    leftover = ckpt_dir / "ckpt-9_temp"
    leftover.mkdir()
    os.utime(leftover, (1, 1))
    m = manager(Trainee(), ckpt_dir)
    m.restore()
    m.save()
    assert leftover.exists()


def test_step_counter_interval_is_resynchronized(ckpt_dir: Path) -> None:
    t = Trainee()
    m = SafeCheckpointManager(
        t.checkpoint, str(ckpt_dir), 5, step_counter=t.step, checkpoint_interval=10
    )
    m.restore()
    assert m._last_checkpoint_step == 3  # TF's restore_or_initialize does the same


def test_copied_directory_restores_from_its_own_files(ckpt_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ckpt_dir, copy)
    shutil.rmtree(ckpt_dir)
    t = Trainee()
    report = manager(t, copy).restore()
    assert report.save_path == str(copy / "ckpt-3") and t.value == 3.0


def test_quarantine_with_state_file_missing_rewrites_a_valid_state(ckpt_dir: Path) -> None:
    (ckpt_dir / "checkpoint").unlink()
    truncate(data_file(ckpt_dir, 3))
    t = Trainee()
    report = manager(t, ckpt_dir, quarantine=True).restore()
    assert report.save_path == str(ckpt_dir / "ckpt-2") and t.value == 2.0
    state = tf.train.get_checkpoint_state(str(ckpt_dir))
    assert state is not None and state.model_checkpoint_path.endswith("ckpt-2")


def test_fresh_init_after_failed_tf_restore_drops_pending_restorations(tmp_path: Path) -> None:
    d = tmp_path / "run"
    writer = tf.Module()
    writer.a = tf.Variable(9.0)
    writer.b = tf.Variable(9.0)
    prefix = tf.train.CheckpointManager(tf.train.Checkpoint(m=writer), str(d), 3).save()
    index = read_index(prefix + ".index")
    entry = next(e for e in index.entries if e.name.startswith("m/a"))
    shard = Path(prefix + ".data-00000-of-00001")
    data = bytearray(shard.read_bytes())
    data[entry.offset] ^= 0xFF  # quick verification cannot see this; TF's restore fails
    shard.write_bytes(bytes(data))
    reader = tf.Module()
    reader.a = tf.Variable(0.0)
    checkpoint = tf.train.Checkpoint(m=reader)
    m = SafeCheckpointManager(
        checkpoint, str(d), 3, fallback=("previous_valid", "fresh_init"), verify="quick"
    )
    report = m.restore()
    assert report.outcome is Outcome.INITIALIZED
    assert report.skipped[0].cause is Cause.CORRUPT_DATA
    assert any("pending restoration" in n for n in report.notes)
    reader.b = tf.Variable(0.0)  # created after the failed restore: must stay fresh
    assert float(reader.b.numpy()) == 0.0
    assert float(reader.a.numpy()) == 0.0
    assert m.save() == str(d / "ckpt-2")  # numbered above the rejected ckpt-1


def test_next_save_is_numbered_above_the_rejected_checkpoint_instead_of_overwriting(
    ckpt_dir: Path,
) -> None:
    truncate(data_file(ckpt_dir, 3))
    damaged = data_file(ckpt_dir, 3).read_bytes()
    t = Trainee()
    m = manager(t, ckpt_dir)
    assert m.restore().save_path == str(ckpt_dir / "ckpt-2")
    t.set(30)
    # TF's numbering (save_counter was 2) would write ckpt-3 over the damaged files.
    assert m.save() == str(ckpt_dir / "ckpt-4")
    assert data_file(ckpt_dir, 3).read_bytes() == damaged
    assert not (ckpt_dir / "quarantine").exists()
    again = Trainee()
    report = manager(again, ckpt_dir).restore()
    assert report.outcome is Outcome.RESTORED
    assert report.save_path == str(ckpt_dir / "ckpt-4")
    assert again.value == 30.0


def test_cleanup_temp_removes_index_less_data_of_an_interrupted_save(ckpt_dir: Path) -> None:
    # A save of ckpt-4 killed after its data was renamed into place, before the index.
    orphan = data_file(ckpt_dir, 4)
    orphan.write_bytes(data_file(ckpt_dir, 3).read_bytes())
    os.utime(orphan, (1, 1))
    t = Trainee()
    m = manager(t, ckpt_dir, cleanup_temp=True)
    assert m.restore().save_path == str(ckpt_dir / "ckpt-3")
    t.set(9)
    m.save(checkpoint_number=5)
    assert not orphan.exists()
    assert (ckpt_dir / "ckpt-3.index").exists()


def test_checkpoint_in_the_same_second_as_the_state_file_is_ordered_by_step(
    ckpt_dir: Path,
) -> None:
    write_state(ckpt_dir, "ckpt-2", ["ckpt-1", "ckpt-2"])
    same = (ckpt_dir / "ckpt-3.index").stat().st_mtime_ns
    for p in [ckpt_dir / "checkpoint", *ckpt_dir.glob("ckpt-3.*")]:
        os.utime(p, ns=(same, same))  # coarse timestamps: equal
    t = Trainee()
    assert manager(t, ckpt_dir).restore().save_path == str(ckpt_dir / "ckpt-3")
    assert t.value == 3.0
