"""Progress on stderr for long commands: one line, rewritten in place, only on a terminal.

Deep verification shows bytes done, throughput and the time left; commands over many
checkpoints show "k of n" and the time left. Nothing is written when stderr is not a
terminal (a pipe, a file, a CI log) or with ``--quiet``; standard output (``--json``
included) is never touched. The first update is shown at once, later ones at most every
`INTERVAL` seconds, and `Meter.finish` clears the line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

from safeckpt._diagnosis import human_size

#: Seconds between two updates of the line.
INTERVAL = 0.1


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Meter:
    """The progress line of one command (does nothing when disabled).

    Args:
        stream: Where to write (stderr).
        quiet: ``--quiet``: write nothing.
        clock: Seconds, monotonic (tests pass their own).
    """

    def __init__(
        self, stream: TextIO, *, quiet: bool = False, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream, self.clock = stream, clock
        self.enabled = not quiet and _isatty(stream)
        self._lock = threading.Lock()
        self._start: float | None = None
        self._shown: float | None = None
        self._width = 0

    def bytes(self, label: str, done: int, total: int) -> None:
        """Deep verification of one checkpoint: ``done`` of ``total`` bytes checked."""
        if not self.enabled:
            return
        elapsed = self._elapsed()
        parts = [
            f"{label}: {100.0 * done / total if total else 100.0:5.1f}% of {human_size(total)}"
        ]
        if elapsed > 0 and done:
            rate = done / elapsed
            parts.append(f"{human_size(int(rate))}/s")
            parts.append(f"{_duration((total - done) / rate)} left")
        self._show(", ".join(parts), final=done >= total)

    def items(self, what: str, done: int, total: int) -> None:
        """Work over many checkpoints: ``done`` of ``total`` finished."""
        if not self.enabled:
            return
        elapsed = self._elapsed()
        text = f"{what}: {done:,} of {total:,}"
        if done and elapsed > 0:
            text += f", {_duration(elapsed / done * (total - done))} left"
        self._show(text, final=done >= total)

    def finish(self) -> None:
        """Clear the line (and start timing afresh for the next use)."""
        with self._lock:
            if self.enabled and self._width:
                print("\r" + " " * self._width + "\r", end="", file=self.stream, flush=True)
            self._start = self._shown = None
            self._width = 0

    def _elapsed(self) -> float:
        now = self.clock()
        if self._start is None:
            self._start = now
        return now - self._start

    def _show(self, text: str, *, final: bool) -> None:
        with self._lock:
            now = self.clock()
            if self._shown is not None and now - self._shown < INTERVAL and not final:
                return
            self._shown = now
            pad = " " * max(0, self._width - len(text))
            self._width = max(self._width, len(text))
            print(f"\r{text}{pad}", end="", file=self.stream, flush=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False
