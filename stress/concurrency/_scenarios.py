"""The scenarios: several processes on one directory, judged by `stress.concurrency._oracle`."""

from __future__ import annotations

import os
import time
from typing import Any

from stress.concurrency import _oracle, _workers
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


def _judge_all(
    figures: Figures, library: str, outcomes: dict[str, Outcome], written: set[int]
) -> None:
    """Judge each evaluator's sequence; problems are violations for safeckpt only."""
    for name, outcome in outcomes.items():
        if name == "trainer" or outcome.result is None or "records" not in outcome.result:
            continue
        judged = _oracle.judge_sequence(outcome.result["records"], written)
        for kind, n in judged.counts.items():
            figures.add(library, f"{name}: {kind}", n, judged.examples.get(kind))
        for kind in _oracle.PROBLEMS:
            if library == "safeckpt" and judged.counts[kind]:
                figures.violate(
                    f"{name}: {judged.counts[kind]} {kind}, e.g. {judged.examples[kind]}"
                )


def evaluator(root: str, *, seconds: float) -> Figures:
    """A trainer saves as fast as it can (``max_to_keep=2``) while evaluators read.

    One evaluator restores in a loop with one read-only manager, another polls a new
    manager's ``latest_checkpoint``; plain TF's evaluator does
    ``checkpoint.restore(tf.train.latest_checkpoint(dir))``. Oracle, for safeckpt: no error,
    never backwards (a lower step than one already had, or nothing after something), the
    values always those of the save named, and that save one the trainer wrote.
    """
    figures = Figures("evaluator")
    start = time.monotonic()
    for library in _workers.LIBRARIES:
        directory = os.path.join(root, "evaluator", library)
        team = Team(deadline=seconds + 90.0)
        ready = team.event()
        common = {"directory": directory, "seconds": seconds, "library": library, "ready": ready}
        team.add("trainer", _workers.trainer, **common)
        team.add("restorer", _workers.restorer, **common)
        team.add("poller", _workers.poller, **common)
        outcomes = team.run()
        _reported(figures, outcomes)
        trained = outcomes["trainer"].result or {}
        written = set(trained.get("written", []))
        figures.add(library, "trainer: saves", len(written))
        for error in trained.get("errors", []):
            figures.add(library, "trainer: errors", example=error)
            if library == "safeckpt":
                figures.violate(f"trainer: {error}")
        _judge_all(figures, library, outcomes, written)
    figures.seconds = time.monotonic() - start
    return figures


def busy_doctor(root: str, *, seconds: float) -> Figures:
    """``safeckpt doctor`` in a loop on a directory a trainer is saving into.

    Oracle: the directory is healthy (the trainer damages nothing), so every run exits 0.
    """
    figures = Figures("busy_doctor")
    start = time.monotonic()
    directory = os.path.join(root, "doctor")
    team = Team(deadline=seconds + 90.0)
    ready = team.event()
    team.add("trainer", _workers.trainer, directory=directory, seconds=seconds,
             library="safeckpt", ready=ready)  # fmt: skip
    team.add("doctor", _workers.doctor, directory=directory, seconds=seconds, ready=ready)
    outcomes = team.run()
    _reported(figures, outcomes)
    trained = outcomes["trainer"].result or {}
    figures.add("safeckpt", "trainer: saves", len(trained.get("written", [])))
    ran = outcomes["doctor"].result or {}
    codes = list(ran.get("codes", []))
    figures.add("safeckpt", "doctor runs", len(codes))
    for code in sorted(set(codes)):
        figures.add("safeckpt", f"doctor exit {code}", codes.count(code))
    failed = [c for c in codes if c != 0]
    if failed:
        shown = ran.get("failures", [""])[0]
        figures.violate(f"doctor exited non-zero {len(failed)} times; first:\n{shown}")
    figures.seconds = time.monotonic() - start
    return figures


def two_writers(root: str, *, saves: int = 3, tries: int = 3) -> Figures:
    """A second writer starts on a directory while the first is still saving into it.

    The first saves `saves` times, then keeps saving while the second constructs a manager
    on the same directory, restores and tries `tries` saves (values no first-writer save
    has), then saves `saves` more. Then the same with the first writer killed (a preempted
    job) before the second starts. Oracle, for safeckpt: while the first writer lives, every
    save of the second is refused with an error naming the first writer's process; every file
    of the first writer's kept checkpoints has the sha256 it had when written (checked before
    each of its saves and at the end); no checkpoint holds the second writer's values. After
    the first writer is killed, the second saves.
    """
    figures = Figures("two_writers")
    start = time.monotonic()
    for library in _workers.LIBRARIES:
        for die in (False, True):
            label = "preempted" if die else "running"
            directory = os.path.join(root, "writers", library, label)
            team = Team(deadline=180.0)
            ready, done = team.event(), team.event()
            team.add(
                "first",
                _workers.first_writer,
                directory=directory,
                library=library,
                before=saves,
                after=saves,
                ready=ready,
                second_done=done,
                die=die,
            )
            team.add("second", _workers.second_writer, directory=directory, library=library,
                     tries=tries, ready=ready, second_done=done)  # fmt: skip
            outcomes = team.run()
            second = outcomes["second"].result or {}
            if die:
                _reported(figures, {"second": outcomes["second"]})
            else:
                _reported(figures, outcomes)
            tried = list(second.get("outcomes", []))
            saved = [o for o in tried if o.startswith("saved ")]
            refused = [o for o in tried if not o.startswith("saved ")]
            failed = str(second.get("restore_failed", ""))
            figures.add(library, f"{label}: second writer's restore failed", int(bool(failed)),
                        failed or None)  # fmt: skip
            figures.add(library, f"{label}: second writer's saves", len(saved))
            figures.add(library, f"{label}: second writer refused", len(refused),
                        refused[0] if refused else None)  # fmt: skip
            first = outcomes["first"].result
            if not die and first is not None and "hashes" in first:
                # Checked by the first writer before each of its saves, and once at the end.
                lost = list(first["lost"])
                lost_second = _oracle.first_writer_losses(
                    directory, second.get("hashes", {}), second.get("kept", [])
                )
                figures.add(library, f"{label}: first writer's files lost or overwritten",
                            len(lost), lost[0] if lost else None)  # fmt: skip
                figures.add(library, f"{label}: second writer's files lost or overwritten",
                            len(lost_second), lost_second[0] if lost_second else None)  # fmt: skip
                intruded = _oracle.checkpoints_holding(directory, _workers.INTRUDER)
                figures.add(library, f"{label}: checkpoints with the second's values",
                            len(intruded), intruded[0] if intruded else None)  # fmt: skip
                if library == "safeckpt":
                    pid = f"pid {first['pid']}"
                    if saved or any("ConcurrentWriterError" not in o or pid not in o
                                    for o in refused):  # fmt: skip
                        figures.violate(f"{label}: the second writer was not refused: {tried}")
                    if lost or intruded or first["errors"]:
                        figures.violate(
                            f"{label}: the first writer lost {lost}, intruders {intruded}, "
                            f"its errors {first['errors']}"
                        )
            if die and library == "safeckpt" and (refused or len(saved) != tries):
                figures.violate(f"{label}: the restart could not save: {tried}")
    figures.seconds = time.monotonic() - start
    return figures
