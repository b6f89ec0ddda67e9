"""The worker processes' bodies: each returns plain facts; the oracle judges them later.

Each function runs in its own process (`stress.concurrency._procs.Team`) and takes the
team's ``go`` and ``stop`` events. Values written by a trainer encode the save that wrote
them (``v == step``), so whatever an evaluator reads can be checked against write-time facts.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from typing import Any

import tensorflow as tf

import safeckpt
from safeckpt._cli import main as cli
from stress.concurrency._oracle import file_hash_or_gone, first_writer_losses

LIBRARIES = ("safeckpt", "tf")
#: A second writer's values: far above any step a trainer reaches, so they cannot hide.
INTRUDER = 1_000_000.0


def first_line(exc: BaseException) -> str:
    """``"Type: first line"`` of an exception."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _quiet() -> None:
    logging.getLogger("safeckpt").setLevel(logging.ERROR)
    tf.get_logger().setLevel(logging.ERROR)


def _state(value: float = 0.0) -> tuple[tf.Variable, tf.Variable, tf.train.Checkpoint]:
    v = tf.Variable(value, dtype=tf.float64)
    step = tf.Variable(-1, dtype=tf.int64)
    return v, step, tf.train.Checkpoint(v=v, step=step)


def _manager(library: str, checkpoint: Any, directory: str, **kwargs: Any) -> Any:
    if library == "safeckpt":
        return safeckpt.SafeCheckpointManager(checkpoint, directory, **kwargs)
    kwargs.pop("read_only", None)
    return tf.train.CheckpointManager(checkpoint, directory, **kwargs)


def construct(
    *,
    go: Any,
    stop: Any,
    index: int,
    root: str,
    rounds: int,
    library: str,
    barrier: Any,
    save: bool,
) -> dict[str, Any]:
    """Each round: wait for every worker, build a manager on a fresh nested path (and save)."""
    _quiet()
    _v, _step, checkpoint = _state(float(index))
    done, errors = 0, []
    for number in range(rounds):
        if stop.is_set():
            break
        try:
            barrier.wait(60)
        except threading.BrokenBarrierError:
            errors.append(f"round {number}: the barrier broke (a worker died)")
            break
        directory = os.path.join(root, library, f"r{number}", "a", "b", "c")
        try:
            manager = _manager(
                library, checkpoint, directory, max_to_keep=3, checkpoint_name=f"w{index}"
            )
            if save:
                manager.save()
            done += 1
        except Exception as exc:  # every error is a finding
            errors.append(f"round {number}: {first_line(exc)}")
    return {"done": done, "errors": errors}


def flap(*, go: Any, stop: Any, directory: str, seconds: float, hold: float) -> dict[str, Any]:
    """Create and remove `directory` (empty), each state held up to `hold` seconds.

    The path is never a file.
    """
    end = time.monotonic() + seconds
    flips = 0
    while time.monotonic() < end and not stop.is_set():
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory)
        time.sleep(hold * ((flips * 7919) % 1000) / 1000)
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(directory)
        time.sleep(hold * ((flips * 104729) % 1000) / 1000)
        flips += 1
    return {"flips": flips}


def probe_kind(
    *, go: Any, stop: Any, directory: str, seconds: float, library: str
) -> dict[str, Any]:
    """Construct read-only managers on a directory that comes and goes; count the outcomes."""
    _quiet()
    _v, _step, checkpoint = _state()
    end = time.monotonic() + seconds
    causes: dict[str, int] = {}
    while time.monotonic() < end and not stop.is_set():
        try:
            _manager(library, checkpoint, directory, max_to_keep=3, read_only=True)
            cause = "constructed"
        except safeckpt.CheckpointDirectoryError as exc:
            cause = exc.diagnosis.cause.value if exc.diagnosis is not None else "no diagnosis"
        except Exception as exc:  # counted by type
            cause = type(exc).__name__
        causes[cause] = causes.get(cause, 0) + 1
    return {"causes": causes}


# --- A trainer and its evaluators -----------------------------------------------------------


def trainer(
    *, go: Any, stop: Any, directory: str, seconds: float, library: str, ready: Any
) -> dict[str, Any]:
    """Save as fast as possible with ``max_to_keep=2``; checkpoint k holds ``v == step == k``.

    Each step is recorded before its save starts: whatever an evaluator reads must be one.
    """
    _quiet()
    v, step, checkpoint = _state()
    manager = _manager(library, checkpoint, directory, max_to_keep=2)
    written: list[int] = []
    errors: list[str] = []
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end and not stop.is_set():
        k += 1
        v.assign(float(k))
        step.assign(k)
        written.append(k)
        try:
            path = manager.save()
            if os.path.basename(path) != f"ckpt-{k}":
                errors.append(f"save {k} wrote {path}")
        except Exception as exc:  # every error is a finding
            errors.append(f"save {k}: {first_line(exc)}")
        ready.set()
    ready.set()
    return {"written": written, "errors": errors}


def restorer(
    *, go: Any, stop: Any, directory: str, seconds: float, library: str, ready: Any
) -> dict[str, Any]:
    """Restore the newest checkpoint in a loop, recording (step, value, how) or the error.

    safeckpt: one read-only manager's ``restore()``. Plain TF: what an evaluator does,
    ``checkpoint.restore(tf.train.latest_checkpoint(directory))``.
    """
    _quiet()
    v, _step, checkpoint = _state(-1.0)
    ready.wait(60)
    manager = None
    if library == "safeckpt":
        manager = safeckpt.SafeCheckpointManager(checkpoint, directory, 2, read_only=True)
    records: list[tuple[Any, ...]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        try:
            if manager is not None:
                report = manager.restore()
                latest = manager.latest_checkpoint
                if latest != report.save_path:
                    records.append(("error", f"latest_checkpoint {latest} != {report.save_path}"))
                how = report.outcome.value
                if any("was removed by another process" in n for n in report.notes):
                    how += ", stepped over a removed one"
                if any("stays the newest" in n for n in report.notes):
                    how += ", kept from going back"
                records.append((report.step, float(v.numpy()), how))
            else:
                path = tf.train.latest_checkpoint(directory)
                if path is None:
                    records.append((None, None, "none"))
                    continue
                checkpoint.restore(path).expect_partial()
                number = int(path.rsplit("-", 1)[1])
                records.append((number, float(v.numpy()), "restored"))
        except Exception as exc:  # counted; for safeckpt every one is a violation
            records.append(("error", first_line(exc)))
    return {"records": records}


def poller(
    *, go: Any, stop: Any, directory: str, seconds: float, library: str, ready: Any
) -> dict[str, Any]:
    """Ask for the latest checkpoint in a loop, from a new read-only manager each time.

    Plain TF: ``tf.train.latest_checkpoint(directory)``.
    """
    _quiet()
    _v, _step, checkpoint = _state()
    ready.wait(60)
    records: list[tuple[Any, ...]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        try:
            if library == "safeckpt":
                manager = safeckpt.SafeCheckpointManager(checkpoint, directory, 2, read_only=True)
                path = manager.latest_checkpoint
            else:
                path = tf.train.latest_checkpoint(directory)
            number = None if path is None else int(path.rsplit("-", 1)[1])
            records.append((number, None, "latest"))
        except Exception as exc:  # counted; for safeckpt every one is a violation
            records.append(("error", first_line(exc)))
    return {"records": records}


def doctor(*, go: Any, stop: Any, directory: str, seconds: float, ready: Any) -> dict[str, Any]:
    """Run ``safeckpt doctor DIRECTORY`` (the command's own entry point) in a loop."""
    _quiet()
    ready.wait(60)
    codes: list[int] = []
    failures: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        out = io.StringIO()
        code = cli.main(["doctor", directory], stdout=out, stderr=out)
        codes.append(code)
        if code != 0 and len(failures) < 5:
            failures.append(out.getvalue()[:2000])
    return {"codes": codes, "failures": failures}


# --- Two writers ----------------------------------------------------------------------------


def _saver(
    directory: str, library: str, base: float, errors: list[str]
) -> tuple[Any, Any, dict[int, dict[str, str]], Any]:
    """A manager and a ``save(k)`` that records the files' sha256 right after each save."""
    v, step, checkpoint = _state()
    manager = _manager(library, checkpoint, directory, max_to_keep=3)
    hashes: dict[int, dict[str, str]] = {}

    def save(k: int) -> str | None:
        v.assign(base + k)
        step.assign(k)
        try:
            path = manager.save()
        except Exception as exc:  # a finding (for the second writer: the refusal)
            errors.append(f"save {k}: {first_line(exc)}")
            return None
        number = int(path.rsplit("-", 1)[1])
        hashes[number] = {
            name: file_hash_or_gone(os.path.join(directory, name))
            for name in os.listdir(directory)
            if name.startswith(os.path.basename(path) + ".")
        }
        return str(path)

    return manager, save, hashes, checkpoint


def first_writer(
    *,
    go: Any,
    stop: Any,
    directory: str,
    library: str,
    before: int,
    after: int,
    ready: Any,
    second_done: Any,
    die: bool,
) -> dict[str, Any]:
    """Save `before` times, then keep saving while the second writer runs, then `after` more.

    With `die` it is killed after `before` saves instead (a preempted job). Each save's
    files are hashed when written.
    """
    _quiet()
    errors: list[str] = []
    manager, save, hashes, _checkpoint = _saver(directory, library, 0.0, errors)
    lost: set[str] = set()

    def check_then_save(k: int) -> None:
        # Before each save: have the files of the checkpoints it keeps changed since written?
        kept = [os.path.basename(p) for p in manager.checkpoints]
        lost.update(first_writer_losses(directory, hashes, kept))
        save(k)

    k = 0
    for k in range(1, before + 1):
        check_then_save(k)
    ready.set()
    if die:
        os.kill(os.getpid(), 9)
    while not second_done.wait(0.01):
        k += 1
        check_then_save(k)
    for extra in range(k + 1, k + after + 1):
        check_then_save(extra)
    kept = [os.path.basename(p) for p in manager.checkpoints]
    lost.update(first_writer_losses(directory, hashes, kept))
    return {
        "pid": os.getpid(),
        "hashes": hashes,
        "kept": kept,
        "errors": errors,
        "lost": sorted(lost),
    }


def second_writer(
    *, go: Any, stop: Any, directory: str, library: str, tries: int, ready: Any, second_done: Any
) -> dict[str, Any]:
    """Start on the same directory once the first writer saved, restore, try `tries` saves.

    Its values (`INTRUDER` + k) are ones no first-writer save has.
    """
    _quiet()
    errors: list[str] = []
    outcomes: list[str] = []
    hashes: dict[int, dict[str, str]] = {}
    kept: list[str] = []
    restore_failed = ""
    ready.wait(120)
    try:
        manager, save, hashes, checkpoint = _saver(directory, library, INTRUDER, errors)
        if library == "safeckpt":
            manager.restore()
        else:
            try:
                checkpoint.restore(tf.train.latest_checkpoint(directory))
            except tf.errors.OpError as exc:  # the first writer rotated it away meanwhile
                restore_failed = first_line(exc)
        for k in range(1, tries + 1):
            path = save(k)
            outcomes.append(f"saved {os.path.basename(path)}" if path else errors[-1])
            time.sleep(0.01)
        kept = [os.path.basename(p) for p in manager.checkpoints]
    finally:
        second_done.set()
    return {
        "pid": os.getpid(),
        "outcomes": outcomes,
        "hashes": hashes,
        "kept": kept,
        "restore_failed": restore_failed,
    }
