"""The worker processes' bodies: each returns plain facts; the oracle judges them later.

Each function runs in its own process (`stress.concurrency._procs.Team`) and takes the
team's ``go`` and ``stop`` events. Values written by a trainer encode the save that wrote
them (``v == step``), so whatever an evaluator reads can be checked against write-time facts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

import tensorflow as tf

import safeckpt

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
