"""Running the configurations under test on damaged cases.

`run_config` restores one case with one configuration and applies the oracle's checks;
`evaluate` does it for every configuration, and `run` draws and evaluates a seeded series
of cases into a `Summary`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import absl.logging
import tensorflow as tf

from safeckpt import Outcome, SafeCheckpointError, SafeCheckpointManager
from stress.fuzz._case import CaseDir
from stress.fuzz._damage import available_kinds, make_case
from stress.fuzz._model import CONFIGS, Config, Model, build_pristine, tf_checkpoint
from stress.fuzz._oracle import (
    Result,
    Truth,
    check_causes,
    check_late,
    check_restored,
    check_unchanged,
    compute_truth,
    intact_text,
    short_error,
    snapshot,
)
from stress.fuzz._summary import CaseRecord, Summary
from testing.privileges import user_name


def _slipped(diagnoses: Iterable[Any]) -> int:
    return sum(
        1 for d in diagnoses if any(str(e).startswith("TensorFlow raised") for e in d.evidence)
    )


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "site-packages" not in f.filename]
    frame = inside[-1] if inside else (frames[-1] if frames else None)
    return f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""


def run_config(case: CaseDir, config: Config, truth: Truth, max_to_keep: int | None) -> Result:
    """Restore the damaged directory with one configuration and check the oracle."""
    result = Result(config.label, "?")
    bad = result.violations
    model = Model(-1, late=False)
    checkpoint = tf_checkpoint(model)
    before = snapshot(case.path)
    report = None
    manager: Any = None
    try:
        if config.fallback == "tf":
            manager = tf.train.CheckpointManager(checkpoint, case.path, max_to_keep)
            path = manager.restore_or_initialize()
            outcome = Outcome.INITIALIZED if path is None else Outcome.RESTORED
            save_path, status, notes, reason = path, None, (), None
        else:
            manager = SafeCheckpointManager(checkpoint, case.path, max_to_keep, **config.kwargs())
            report = manager.restore()
            outcome, save_path, status = report.outcome, report.save_path, report.status
            notes, reason = report.notes, report.reason
            result.tf_caught = _slipped(report.skipped)
            check_causes(truth, [*report.skipped, report.reason], bad)
    except SafeCheckpointError as exc:
        result.outcome = f"raised:{type(exc).__name__}"
        diagnosis = exc.diagnosis
        result.cause = diagnosis.cause.value if diagnosis is not None else None
        result.tf_caught = _slipped(getattr(exc, "attempts", ()) or ())
        if diagnosis is None:
            bad.append(("no_diagnosis", short_error(exc)))
        check_causes(truth, [diagnosis, *getattr(exc, "attempts", ())], bad)
        if truth.intact and not truth.dir_permission:
            bad.append(("raised_with_intact", f"{short_error(exc)}; intact: {intact_text(truth)}"))
        check_unchanged(case, before, bad)
        return result
    except Exception as exc:  # anything else escaping is a violation
        result.outcome = f"escaped:{type(exc).__name__}"
        bad.append(("escaped_exception", short_error(exc) + _where(exc)))
        check_unchanged(case, before, bad)
        return result
    result.outcome = outcome.value
    result.content = model.identify()
    base = os.path.basename(save_path) if save_path else None
    result.save_path = base
    if outcome is Outcome.INITIALIZED:
        result.silent = reason is None
        if truth.intact:
            what = "silent " if reason is None else ""
            bad.append(("fresh_with_intact", f"{what}fresh start; intact: {intact_text(truth)}"))
        if result.content != "init":
            bad.append(("init_not_clean", f"after a fresh start the model holds {result.content}"))
        expected_late = -1
    else:
        expected_late = check_restored(result, truth, base, bad)
        if save_path and os.path.normpath(os.path.dirname(save_path)) != case.path:
            bad.append(("outside_directory", f"restored {save_path}"))
        if report is not None and manager.latest_checkpoint != save_path:
            bad.append(("report_inconsistent", f"latest_checkpoint={manager.latest_checkpoint}"))
        if status is not None:
            try:
                status.assert_existing_objects_matched()
            except AssertionError as exc:
                bad.append(("status_assert", short_error(exc)))
    check_late(result, model, expected_late, config, notes, bad)
    if result.late != "ok":
        result.benign = ()  # the damage was in model.late's tensor, not benign
    check_unchanged(case, before, bad)
    return result


def quiet() -> None:
    logging.getLogger("safeckpt").setLevel(logging.CRITICAL)
    tf.get_logger().setLevel(logging.ERROR)
    with contextlib.suppress(Exception):
        absl.logging.set_verbosity(absl.logging.ERROR)


@contextlib.contextmanager
def scratch_dir(root: str | None) -> Iterator[str]:
    if root is not None:
        os.makedirs(root, exist_ok=True)
        yield root
        return
    path = tempfile.mkdtemp(prefix="safeckpt-fuzz-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def evaluate(
    case: CaseDir, configs: Sequence[Config], max_to_keep: int | None
) -> tuple[Truth, list[Result]]:
    """Compute the truth, then run every configuration."""
    truth = compute_truth(case)
    results = [run_config(case, c, truth, max_to_keep) for c in configs]
    return truth, results


def run(
    cases: int,
    seed: int,
    *,
    kinds: Sequence[str] | None = None,
    configs: Sequence[Config] = CONFIGS,
    workdir: str | None = None,
    progress: Callable[[int, Summary], None] | None = None,
) -> Summary:
    """Run `cases` seeded cases and return the summary (see `stress.fuzz`)."""
    quiet()
    usable, skipped = available_kinds(kinds)
    summary = Summary(seed=seed, configs=tuple(c.label for c in configs))
    summary.skipped_kinds = skipped
    summary.kinds = ",".join(kinds) if kinds else ""
    summary.user = user_name()
    start = time.monotonic()
    with scratch_dir(workdir) as root:
        pristine = build_pristine(root)
        for index in range(cases):
            case, damages, max_to_keep = make_case(pristine, root, seed, index, usable)
            try:
                truth, results = evaluate(case, configs, max_to_keep)
            finally:
                case.remove()
                shutil.rmtree(os.path.dirname(case.path), ignore_errors=True)
            summary.add(CaseRecord(index, damages, truth, results, max_to_keep))
            if progress is not None:
                progress(index + 1, summary)
    summary.seconds = time.monotonic() - start
    return summary
