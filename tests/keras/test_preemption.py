"""`safeckpt.keras._preemption`: the signal is noted during a fit and delivered afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType

import pytest

from safeckpt.keras._preemption import SignalWatch


def test_a_signal_is_noted_then_given_to_the_previous_handler() -> None:
    calls: list[int] = []

    def previous(number: int, frame: FrameType | None) -> None:
        calls.append(number)

    old = signal.signal(signal.SIGTERM, previous)
    try:
        watch = SignalWatch()
        watch.install()
        assert watch.installed
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the watch: the process lives on
        assert watch.received is signal.SIGTERM and calls == []
        watch.release()
        assert calls == [signal.SIGTERM] and not watch.installed
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)


def test_without_a_signal_release_only_puts_the_handler_back() -> None:
    old = signal.getsignal(signal.SIGTERM)
    watch = SignalWatch()
    watch.install()
    watch.release()
    assert signal.getsignal(signal.SIGTERM) is old and watch.received is None


def test_an_ignored_signal_stays_ignored() -> None:
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        watch = SignalWatch()
        watch.install()
        os.kill(os.getpid(), signal.SIGTERM)
        watch.release()  # delivered to SIG_IGN: nothing happens
        assert watch.received is signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, old)


def test_the_default_handler_terminates_the_process_after_release() -> None:
    code = (
        "import os, signal\n"
        "from safeckpt.keras._preemption import SignalWatch\n"
        "w = SignalWatch(); w.install(); os.kill(os.getpid(), signal.SIGTERM)\n"
        "print('noted', w.received.name, flush=True)\n"
        "w.release()\n"
        "print('not reached', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert done.stdout.splitlines() == ["noted SIGTERM"]


def test_outside_the_main_thread_it_is_refused() -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            SignalWatch().install()
        except RuntimeError as e:
            errors.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert len(errors) == 1 and "main thread" in str(errors[0])
    with pytest.raises(RuntimeError):
        raise errors[0]


def test_a_signal_after_the_watched_fit_is_gone_goes_to_the_previous_handler_at_once() -> None:
    calls: list[int] = []

    def previous(number: int, frame: FrameType | None) -> None:
        calls.append(number)

    def a_fit_that_raised() -> FrameType:
        frame = sys._getframe()
        return frame  # returns: its frame is off the stack from here on

    old = signal.signal(signal.SIGTERM, previous)
    try:
        watch = SignalWatch()
        watch.install(a_fit_that_raised())
        os.kill(os.getpid(), signal.SIGTERM)
        assert calls == [signal.SIGTERM]  # not kept for a backup nobody will write
        assert not watch.installed and signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)


def test_a_signal_while_the_watched_fit_runs_is_kept() -> None:
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        watch = SignalWatch()
        watch.install(sys._getframe())  # this test is the "fit": it is on the stack
        os.kill(os.getpid(), signal.SIGTERM)
        assert watch.received is signal.SIGTERM and watch.installed
        watch.release()
    finally:
        signal.signal(signal.SIGTERM, old)
