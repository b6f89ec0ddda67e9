"""Preemption: note a termination signal during ``fit``, and deliver it again afterwards.

`SignalWatch` installs a handler for the signals TensorFlow's `PreemptionCheckpointHandler`
treats as a preemption outside Google Cloud (``SIGTERM``) for the length of one ``fit``. The
handler only records the signal; the callback backs up at the end of the batch in progress
and stops ``fit``. When ``fit`` has ended, `SignalWatch.release` puts the previous handlers
back and, if a signal arrived, delivers it again to them: with the default handler the
process then terminates, as it would have without the callback, after the backup.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

#: The signals watched (TensorFlow's ``TerminationConfig`` default off Google Cloud).
SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM,)


def on_stack(target: FrameType, frame: FrameType | None) -> bool:
    """Whether `target` is `frame` or one of its callers (the function is still running)."""
    while frame is not None:
        if frame is target:
            return True
        frame = frame.f_back
    return False


class SignalWatch:
    """The signal handlers of one ``fit`` (see the module doc).

    A signal that arrives when the ``fit`` it watches is no longer running (it ended by an
    exception no hook saw) is not kept: the previous handlers are put back and get it at once.
    """

    def __init__(self) -> None:
        self._previous: dict[signal.Signals, Any] = {}
        self._fit_frame: FrameType | None = None
        self.received: signal.Signals | None = None

    def install(self, fit_frame: FrameType | None = None) -> None:
        """Watch `SIGNALS` (``fit`` must run in the main thread).

        Args:
            fit_frame: The frame of the ``fit`` watched, when known: a signal that comes
                once it is off the stack goes straight to the previous handlers.

        Raises:
            RuntimeError: Called outside the main thread, where Python cannot handle signals.
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "BackupAndRestore(save_before_preemption=True) needs model.fit() to run in "
                "the main thread: Python handles signals only there."
            )
        self.received = None
        self._fit_frame = fit_frame
        for number in SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(number)
        if self._fit_frame is not None and not on_stack(self._fit_frame, frame):
            self.release()  # the fit is over: nothing will back up, give the signal back

    @property
    def installed(self) -> bool:
        """Whether the handlers are in place."""
        return bool(self._previous)

    def release(self, deliver: bool = True) -> None:
        """Put the previous handlers back; deliver a received signal again to them."""
        previous, self._previous = self._previous, {}
        self._fit_frame = None
        for number, handler in previous.items():
            signal.signal(number, handler)
        if deliver and self.received is not None and previous:
            _deliver(self.received, previous[self.received])

    def __del__(self) -> None:  # a fit abandoned without on_train_end
        if self._previous and threading.current_thread() is threading.main_thread():
            self.release(deliver=False)


def _deliver(number: signal.Signals, handler: Any) -> None:
    if handler is signal.SIG_IGN:
        return
    if callable(handler):
        call: Callable[[int, FrameType | None], Any] = handler
        call(number, None)
        return
    signal.raise_signal(number)  # SIG_DFL (or None: set outside Python): the default action
