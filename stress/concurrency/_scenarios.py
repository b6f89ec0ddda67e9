"""The scenarios: several processes on one directory, judged by `stress.concurrency._oracle`."""

from __future__ import annotations

import os
import time
from typing import Any

from stress.concurrency import _workers
from stress.concurrency._figures import Figures
from stress.concurrency._procs import Outcome, Team, context, slow_syscalls


def _reported(figures: Figures, outcomes: dict[str, Outcome]) -> None:
    """A worker that did not report, or whose harness code failed, is a violation."""
    for outcome in outcomes.values():
        if outcome.result is None:
            figures.violate(
                f"{outcome.name}: no report (exit code {outcome.exitcode}"
                f"{', killed at the deadline' if outcome.killed else ''})"
            )
        elif "harness_error" in outcome.result:
            figures.violate(f"{outcome.name}: {outcome.result['harness_error']}")


def construction(root: str, *, rounds: int, workers: int = 8, save: bool = True) -> Figures:
    """`workers` processes released together build managers on fresh nested paths.

    Each round every worker waits at a barrier, then constructs a manager on
    ``<root>/<library>/r<round>/a/b/c`` (which nobody created yet) and saves once, under a
    checkpoint name of its own. The same with plain TF. Oracle: every safeckpt construction
    and save succeeds (the path is always creatable, so any error is a false one).
    """
    figures = Figures("construction")
    start = time.monotonic()
    for library in _workers.LIBRARIES:
        team = Team(deadline=60.0 + rounds * 1.0)
        barrier = context().Barrier(workers)
        for index in range(workers):
            team.add(
                f"{library}-{index}",
                _workers.construct,
                index=index,
                root=os.path.join(root, "construction"),
                rounds=rounds,
                library=library,
                barrier=barrier,
                save=save,
            )
        outcomes = team.run()
        _reported(figures, outcomes)
        for outcome in outcomes.values():
            if outcome.result is None or "done" not in outcome.result:
                continue
            figures.add(library, "constructions and saves", outcome.result["done"])
            for error in outcome.result["errors"]:
                figures.add(library, "errors", example=error)
                if library == "safeckpt":
                    figures.violate(f"{outcome.name}: {error}")
    figures.seconds = time.monotonic() - start
    return figures


def slow_directory(root: str, *, seconds: float, delay_us: int = 2000) -> Figures:
    """Managers built on a directory another process keeps creating and removing.

    One process creates and removes an (always empty) directory as fast as it can; another
    constructs read-only managers on it for `seconds`, with every system call on that path
    slowed by `delay_us` (strace: a slow filesystem), so that two questions about the path
    see two different moments. The path is never a file. Oracle: no safeckpt construction
    says ``not_a_directory``. (``directory_missing`` is right whenever the directory was
    gone.) The same with plain TF, which does not look at the directory at construction.
    """
    figures = Figures("slow_directory")
    start = time.monotonic()
    for library in _workers.LIBRARIES:
        directory = os.path.join(root, "slow", library, "flapping")
        os.makedirs(os.path.dirname(directory), exist_ok=True)
        team = Team(deadline=seconds + 60.0)
        team.add("flap", _workers.flap, directory=directory, seconds=seconds,
                 hold=2 * delay_us / 1e6)  # fmt: skip
        team.add("probe", _workers.probe_kind, directory=directory, seconds=seconds,
                 library=library)  # fmt: skip
        tracers: list[Any] = []

        def attach(
            team: Team = team, directory: str = directory, tracers: list[Any] = tracers
        ) -> None:
            tracers.append(slow_syscalls(team.pid("probe"), directory, delay_us))

        try:
            outcomes = team.run(on_start=attach)
        finally:
            for tracer in tracers:
                tracer.kill()
                tracer.wait(30)
        _reported(figures, outcomes)
        flips = outcomes["flap"].result or {}
        figures.add(library, "directory flips", int(flips.get("flips", 0)))
        probe = outcomes["probe"].result or {}
        for cause, n in dict(probe.get("causes", {})).items():
            figures.add(library, f"construction: {cause}", n)
            if library == "safeckpt" and cause not in ("constructed", "directory_missing"):
                figures.violate(f"{n} construction(s) said {cause} on a path that is never a file")
    figures.seconds = time.monotonic() - start
    return figures
