"""Separate OS processes for the harness: forked from a server that imported TensorFlow.

Every worker is a real process (`multiprocessing`'s forkserver, whose server has imported
TensorFlow and safeckpt and nothing else: no model, no checkpoint, no TensorFlow runtime), so
it starts in milliseconds and shares nothing with the others but the directory. A `Team`
starts workers, releases them together (a `multiprocessing` event), collects one result per
worker through a queue, and kills whatever outlives its deadline: nothing can hang.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stress.crash import traced_by

REPO = Path(__file__).resolve().parents[2]

_CONTEXT: Any = None


def context() -> Any:
    """The forkserver context; its server imports TensorFlow and safeckpt once."""
    global _CONTEXT
    if _CONTEXT is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        found = multiprocessing.get_context("forkserver")
        found.set_forkserver_preload(["tensorflow", "safeckpt", "stress.concurrency._workers"])
        _CONTEXT = found
    return _CONTEXT


@dataclass
class Outcome:
    """What one worker returned (its facts), or why it returned nothing."""

    name: str
    result: dict[str, Any] | None
    exitcode: int | None
    killed: bool = False


@dataclass
class Team:
    """Worker processes that start together and report once each.

    Attributes:
        deadline: Seconds after `start` at which every worker still running is killed.
    """

    deadline: float
    _procs: dict[str, Any] = field(default_factory=dict)
    _queue: Any = None
    go: Any = None
    stop: Any = None

    def __post_init__(self) -> None:
        ctx = context()
        self._queue = ctx.Queue()
        self.go = ctx.Event()
        self.stop = ctx.Event()

    def add(self, name: str, target: Callable[..., dict[str, Any]], **kwargs: Any) -> None:
        """A worker that runs ``target(go=, stop=, **kwargs)`` and reports what it returns."""
        proc = context().Process(
            target=_run, args=(name, target, self._queue, self.go, self.stop, kwargs), name=name
        )
        self._procs[name] = proc

    def pid(self, name: str) -> int:
        """The process id of a started worker."""
        return int(self._procs[name].pid)

    def event(self) -> Any:
        """A fresh `multiprocessing` event, to pass to workers before `run`."""
        return context().Event()

    def run(self, *, on_start: Callable[[], None] | None = None) -> dict[str, Outcome]:
        """Start every worker, release them together, and collect every report."""
        for proc in self._procs.values():
            proc.start()
        if on_start is not None:
            on_start()
        self.go.set()
        end = time.monotonic() + self.deadline
        results: dict[str, dict[str, Any]] = {}
        while len(results) < len(self._procs) and time.monotonic() < end:
            try:
                name, result = self._queue.get(timeout=0.2)
            except queue.Empty:
                if not any(p.is_alive() for p in self._procs.values()):
                    with contextlib.suppress(queue.Empty):
                        while True:  # reports sent just before the processes ended
                            name, result = self._queue.get(timeout=0.5)
                            results[name] = result
                    break
                continue
            results[name] = result
        self.stop.set()
        outcomes: dict[str, Outcome] = {}
        for name, proc in self._procs.items():
            proc.join(max(0.0, min(30.0, end - time.monotonic() + 5.0)))
            killed = False
            if proc.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.join(10)
                killed = True
            outcomes[name] = Outcome(name, results.get(name), proc.exitcode, killed)
        self._queue.close()
        return outcomes


def slow_syscalls(pid: int, path: str, delay_us: int) -> subprocess.Popen[bytes]:
    """Make every system call of `pid` on exactly `path` take `delay_us` longer (strace).

    A slow filesystem (NFS, FUSE, a loaded disk) for one path: each call's result is what
    the path was when the call ran; the caller learns it `delay_us` later. Returns the
    tracer once it is attached (kill it to stop).
    """
    tracer = subprocess.Popen(
        [shutil.which("strace") or "strace", "-qq", "-f", "-o", "/dev/null", "-P", path,
         "-e", f"inject=all:delay_exit={delay_us}", "-p", str(pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not traced_by(pid, tracer.pid):
        if tracer.poll() is not None or time.monotonic() > deadline:
            tracer.kill()
            raise RuntimeError(f"strace could not attach to {pid}")
        time.sleep(0.02)
    return tracer


def _run(
    name: str,
    target: Callable[..., dict[str, Any]],
    results: Any,
    go: Any,
    stop: Any,
    kwargs: dict[str, Any],
) -> None:
    """The body of every worker: wait for the release, run, report (errors too)."""
    try:
        if not go.wait(120):
            raise TimeoutError("never released")
        result = target(go=go, stop=stop, **kwargs)
    except BaseException as exc:  # reported to the parent, which judges it
        result = {"harness_error": f"{type(exc).__name__}: {exc}"}
    results.put((name, result))
    results.close()
    results.join_thread()
