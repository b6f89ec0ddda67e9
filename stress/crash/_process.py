"""The training processes of `stress.crash`: forked from a forkserver, driven over a pipe."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stress.crash._child import child_main
from stress.crash._inject import traced_by

REPO = Path(__file__).resolve().parents[2]


TIMEOUT = 900.0  # seconds for any single step of a child (imports on a loaded machine)


class ChildEndedError(RuntimeError):
    """The child process ended while an event was awaited."""


_CONTEXT: Any = None


def _context() -> Any:
    """The multiprocessing forkserver context; its server imports TensorFlow once."""
    global _CONTEXT
    if _CONTEXT is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # no .pyc renames in traced children
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["tensorflow", "safeckpt", "stress.crash._child"])
        _CONTEXT = context
    return _CONTEXT


class Child:
    """One training process (`stress.crash._child.child_main`) and its event stream.

    The process is forked from the forkserver, which has imported TensorFlow and safeckpt
    but never created a model, a checkpoint or TensorFlow's runtime: each child builds
    everything itself, like a freshly started training script.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        context = _context()
        self._conn, theirs = context.Pipe()
        self.proc = context.Process(target=child_main, args=(theirs, options))
        self.proc.start()
        theirs.close()
        self.pid: int = self.proc.pid
        self.log = options["log"]
        self.tracer: subprocess.Popen[bytes] | None = None

    def attach_strace(self, args: list[str], stderr: str) -> None:
        """Trace the process (all threads) with strace `args`; returns once attached."""
        with open(stderr, "ab") as err:
            self.tracer = subprocess.Popen(
                [shutil.which("strace") or "strace", *args, "-p", str(self.pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.tracer.poll() is not None:
                raise ChildEndedError(f"strace exited with {self.tracer.returncode}")
            if traced_by(self.pid, self.tracer.pid):
                return
            time.sleep(0.02)
        raise TimeoutError("strace did not attach within 120 s")

    def next_event(self, timeout: float) -> dict[str, Any] | None:
        """The next event; None once the process has ended; raises TimeoutError."""
        if not self._conn.poll(timeout):
            raise TimeoutError(f"no event from the child within {timeout:.0f} s")
        try:
            event: dict[str, Any] = self._conn.recv()
        except (EOFError, OSError):
            return None
        return event

    def wait_for(self, *names: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Skip events until one named in `names`; raises ChildEndedError at the end."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if event is None:
                self.proc.join(60)
                raise ChildEndedError(f"the child ended (exit code {self.proc.exitcode})")
            if event["event"] in names:
                return event

    def send(self, **command: Any) -> None:
        """Send one command to the child."""
        self._conn.send(command)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return bool(self.proc.is_alive())

    def kill(self) -> None:
        """SIGKILL the child."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def join(self) -> int | None:
        """Wait for the process (and its tracer) to end; returns the exit code."""
        self.proc.join(120)
        if self.tracer is not None:
            try:
                self.tracer.wait(60)
            except subprocess.TimeoutExpired:
                self.tracer.kill()
                self.tracer.wait()
        return self.proc.exitcode  # type: ignore[no-any-return]

    def close(self) -> None:
        """Ask the child to exit, or kill it."""
        if self.alive():
            try:
                self.send(cmd="exit")
                self.proc.join(60)
            except OSError:
                pass
            if self.alive():
                self.kill()
        self.join()
        self._conn.close()

    def logged(self) -> list[dict[str, Any]]:
        """Every event in the child's side log (what it wrote before it died)."""
        try:
            with open(self.log, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []


def one_line(text: str) -> str:
    """`text` with its lines joined by `` / ``."""
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())
