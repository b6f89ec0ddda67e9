"""Running `stress.crash`: kill a training process at each planned point, check the resume."""

from __future__ import annotations

import os
import random
import shutil
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stress.crash._child import (
    CHECKPOINT_NAME,
    MAX_TO_KEEP,
    N_VARS,
    PYTHON_POINTS,
    elements_per_var,
)
from stress.crash._inject import POINTS, RANDOM, point_needs_strace, strace_args, strace_available
from stress.crash._oracle import (
    METADATA_SUFFIX,
    Facts,
    Oracle,
    leftover_prefix,
    leftovers,
    listing,
    metadata_findings,
    state_paths,
    where_landed,
)
from stress.crash._process import Child, ChildEndedError, one_line
from stress.crash._schedule import cleanup_flags, schedule
from stress.crash._summary import Summary, Trial


class _TrialAbortedError(Exception):
    """A violation ended the trial early (already recorded)."""


class _Harness:
    def __init__(
        self,
        size_mb: float,
        seed: int,
        workdir: Path,
        chain_length: int,
        summary: Summary,
        log: Any,
    ) -> None:
        self.size_mb = size_mb
        self.rng = random.Random(seed)
        self.workdir = workdir
        self.chain_length = chain_length
        self.summary = summary
        self.say = log
        self.elements = elements_per_var(size_mb, N_VARS)
        self.model_bytes = self.elements * 4 * N_VARS
        self.oracle = Oracle(N_VARS, self.elements)
        self.proc: Child | None = None
        self.chain = -1
        self.chain_dir = ""
        self.chain_trials = 0
        self.chain_bad = False
        self.kept_dirs = 0
        self.nproc = 0
        self.save_seconds: list[float] = []
        self.counter = 0  # the save_counter of the live process
        self.reported: set[str] = set()  # leftovers reported in this chain
        self.listed_at_start: set[str] = set()  # state-file entries when the resume starts
        self.stderr = str(workdir / "strace.stderr")

    # processes ------------------------------------------------------------------

    def _start(self, cleanup_temp: bool) -> Child:
        self.nproc += 1
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        self.stderr = str(logs / f"proc-{self.nproc:04d}.stderr")
        return Child(
            {
                "directory": self.chain_dir,
                "log": str(logs / f"proc-{self.nproc:04d}.log"),
                "stderr": self.stderr,
                "size_mb": self.size_mb,
                "vars": N_VARS,
                "max_to_keep": MAX_TO_KEEP,
                "cleanup_temp": cleanup_temp,
            }
        )

    def _new_chain(self) -> None:
        self._drop_process()
        if self.chain_dir:
            self._drop_chain_dir()
        self.chain += 1
        self.chain_dir = str(self.workdir / f"chain-{self.chain:03d}")
        os.makedirs(self.chain_dir)
        self.chain_trials = 0
        self.chain_bad = False
        self.counter = 0
        self.reported = set()

    def _drop_chain_dir(self) -> None:
        if self.chain_bad and self.kept_dirs < 5:
            self.kept_dirs += 1
            self.say(f"  keeping {self.chain_dir} for inspection")
        else:
            shutil.rmtree(self.chain_dir, ignore_errors=True)

    def _drop_process(self) -> None:
        if self.proc is not None:
            self.proc.close()
            self.proc = None

    def close(self) -> None:
        self._drop_process()
        if self.chain_dir:
            self._drop_chain_dir()

    # one trial --------------------------------------------------------------------

    def trial(self, index: int, point: str, cleanup_temp: bool) -> Trial:
        started = time.monotonic()
        if self.proc is None or self.chain_trials >= self.chain_length:
            self._new_chain()
        self.chain_trials += 1
        trial = Trial(index=index, chain=self.chain, point=point, cleanup_temp=cleanup_temp)
        aborted = False
        try:
            self._kill(trial)
            self._resume(trial)
        except _TrialAbortedError:
            aborted = True
        except (ChildEndedError, TimeoutError, OSError) as exc:
            trial.errors.append(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # keep the run (and its summary) going
            trial.errors.append(f"harness failure {type(exc).__name__}: {exc}")
        if trial.violations or trial.errors:
            self.chain_bad = True
        if trial.errors or aborted:  # start over in a new directory
            self._drop_process()
        trial.seconds = time.monotonic() - started
        return trial

    def _launch(self, trial: Trial) -> None:
        """Start the training process of a new chain (an empty directory)."""
        if self.proc is not None:
            return
        self.proc = self._start(self.rng.random() < 0.5)
        event = self.proc.wait_for("restored", "restore_failed")
        started = [e for e in self.proc.logged() if e["event"] == "started"]
        if started and not self.summary.safeckpt:
            self.summary.safeckpt = started[0]["safeckpt"]
        if event["event"] == "restore_failed" or event["outcome"] != "initialized":
            trial.violations.append(f"the first process in an empty directory: {event}")
            raise _TrialAbortedError
        self.counter = event["save_counter"]

    def _kill(self, trial: Trial) -> None:
        self._launch(trial)
        proc = self.proc
        assert proc is not None
        trial.target = self.counter + 1
        if point_needs_strace(trial.point):
            proc.attach_strace(strace_args(trial.point, self.chain_dir, trial.target), self.stderr)
        commanded = time.time()
        if trial.point == RANDOM:
            count = self.rng.randint(1, 3)
            trial.target = self.counter + count
            proc.send(cmd="save", count=count)
            for _ in range(count):
                proc.wait_for("saving")
            estimate = (
                statistics.median(self.save_seconds[-20:])
                if self.save_seconds
                else (0.1 + self.size_mb * 0.01)
            )
            if self.rng.random() < 0.65:
                delay = self.rng.uniform(0.0, estimate)
            else:  # aim at the end of the save: merge, state writes, sweep, cleanup
                delay = estimate * self.rng.uniform(0.8, 1.0)
            trial.kill_delay = round(delay, 4)
            time.sleep(delay)
            proc.kill()
        else:
            proc.send(
                cmd="save", count=5, arm=trial.point if trial.point in PYTHON_POINTS else None
            )
            try:
                proc.wait_for("done")
            except ChildEndedError:
                pass
            else:
                trial.errors.append("the injection never fired (the child finished its saves)")
                proc.kill()
        proc.close()
        self.proc = None
        trial.logs.append(proc.log)
        events = proc.logged()
        saved = [e for e in events if e["event"] == "saved"]
        self.save_seconds += [e["seconds"] for e in saved if e["t"] >= commanded]
        saving = [e for e in events if e["event"] == "saving"]
        injected = [e for e in events if e["event"] == "injected"]
        running = saving[-1]["step"] if saving else None
        if saved and running == saved[-1]["step"]:
            running = None
        trial.killed_step = running
        before = self.oracle.scan(self.chain_dir)
        if injected:
            trial.landed = injected[-1]["point"]
        elif running is None:
            trial.landed = "after_save"
        else:
            trial.landed = where_landed(self.chain_dir, running, self.model_bytes, before)
        if trial.point not in (RANDOM, *PYTHON_POINTS) and trial.landed != trial.point:
            trial.errors.append(f"aimed at {trial.point}, landed at {trial.landed}")
        self._check_crash(trial, before, saved)

    def _check_crash(
        self, trial: Trial, before: dict[int, Facts], saved: list[dict[str, Any]]
    ) -> None:
        complete = {k: f for k, f in before.items() if f.status == "complete"}
        for found in before.values():
            if found.status == "inconsistent":
                trial.violations.append(f"ckpt-{found.step} is readable but {found.reason}")
        if saved:
            last = saved[-1]
            facts = complete.get(last["step"])
            if facts is None:
                trial.violations.append(
                    f"the save of ckpt-{last['step']} returned, but it is not complete "
                    f"({before.get(last['step'])})"
                )
            elif facts.tag != last["tag"]:
                trial.violations.append(f"ckpt-{last['step']} does not hold what its save wrote")
        trial.complete_before = sorted(complete)
        trial.newest_complete = max(complete) if complete else None
        if trial.newest_complete is not None:
            _latest, listed = state_paths(self.chain_dir)
            trial.newest_unlisted = f"{CHECKPOINT_NAME}-{trial.newest_complete}" not in listed
        trial.leftovers_before = leftovers(self.chain_dir, complete.values())
        trial.disk_before = listing(self.chain_dir)

    def _resume(self, trial: Trial) -> None:
        before = {
            k: f for k, f in self.oracle.scan(self.chain_dir).items() if f.status == "complete"
        }
        # Files of checkpoints the state file lists when the manager starts are never
        # housekeeping's to remove (docs/fallback.md), even when only data is left of them
        # (a kill during the sweep): the next manager, whose state file no longer lists
        # them, removes them.
        self.listed_at_start = set(state_paths(self.chain_dir)[1])
        newest = trial.newest_complete
        proc = self.proc = self._start(trial.cleanup_temp)
        trial.logs.append(proc.log)
        event = proc.wait_for("restored", "restore_failed")
        if event["event"] == "restore_failed":
            trial.outcome = "restore-failed"
            trial.violations.append(f"restore() raised {one_line(event['error'])}")
            raise _TrialAbortedError
        trial.restore_outcome = event["outcome"]
        trial.restored = event["step"] if event["save_path"] else None
        trial.skipped = event["skipped"]
        self._check_restore(trial, event, before)
        self.counter = event["save_counter"]
        proc.send(cmd="save", count=1)
        try:
            saved = proc.wait_for("saved")
            proc.wait_for("done")
        except ChildEndedError:
            trial.violations.append(f"the save after resuming failed (see {self.stderr})")
            raise _TrialAbortedError from None
        self.counter = saved["step"]
        self.save_seconds.append(saved["seconds"])
        trial.saved = saved["step"]
        after = self.oracle.scan(self.chain_dir)
        self._check_save(trial, saved, before, after, newest)

    def _check_restore(self, trial: Trial, event: dict[str, Any], before: dict[int, Facts]) -> None:
        newest = trial.newest_complete
        values = event["values"]
        bad = trial.violations
        if trial.restored is None:
            trial.outcome = "initialized-correctly" if newest is None else "started-fresh"
            if newest is not None:
                bad.append(f"started fresh ({event['outcome']}) although ckpt-{newest} is complete")
            elif any(v != [0.0, 0.0] for v in values.values()):
                bad.append(f"initialized, but the variables hold checkpoint values {values}")
            return
        r = trial.restored
        if r != newest:
            trial.outcome = "wrong-checkpoint"
            bad.append(
                f"resumed from ckpt-{r}, but the newest complete checkpoint is ckpt-{newest}"
            )
        else:
            trial.outcome = "resumed-newest" if event["outcome"] == "restored" else "fell-back"
        if any(v != [float(r), float(r)] for v in values.values()):
            bad.append(f"restored ckpt-{r}, but the variables hold {values}")
        if event["save_counter"] != r:
            bad.append(f"restored ckpt-{r}, but save_counter is {event['save_counter']}")
        facts = before.get(r)
        if facts is not None and event["tag"] != facts.tag:
            bad.append(f"restored ckpt-{r}, but its tag is not the one on disk")
        if event["consumed"] != "ok":
            bad.append(f"assert_consumed() failed: {event['consumed']}")

    def _check_save(
        self,
        trial: Trial,
        saved: dict[str, Any],
        before: dict[int, Facts],
        after: dict[int, Facts],
        newest: int | None,
    ) -> None:
        bad = trial.violations
        s = saved["step"]
        if not saved["path"] or not saved["path"].endswith(f"/{CHECKPOINT_NAME}-{s}"):
            bad.append(f"save() returned {saved['path']!r} for the values of step {s}")
        facts = after.get(s)
        if facts is None or facts.status != "complete" or facts.tag != saved["tag"]:
            bad.append(f"the resumed run's ckpt-{s} is not complete: {facts}")
        complete_after = {k: f for k, f in after.items() if f.status == "complete"}
        trial.complete_after = sorted(complete_after)
        protected = set(sorted(before)[-(MAX_TO_KEEP - 1) :])
        if trial.restored is not None:
            protected |= {k for k in before if k >= trial.restored}
        for k, old in sorted(before.items()):
            new = complete_after.get(k)
            if new is None:
                if k in protected:
                    bad.append(f"the resumed run deleted the complete ckpt-{k}")
            elif new.hashes != old.hashes:
                bad.append(f"the resumed run overwrote the complete ckpt-{k}")
        latest, _listed = state_paths(self.chain_dir)
        if latest != f"{CHECKPOINT_NAME}-{s}":
            bad.append(f"after the save the state file names {latest}, not ckpt-{s}")
        trial.leftovers_after = leftovers(self.chain_dir, complete_after.values())
        bad.extend(metadata_findings(self.chain_dir, complete_after))
        if facts is not None and not os.path.exists(
            os.path.join(self.chain_dir, f"{CHECKPOINT_NAME}-{s}{METADATA_SUFFIX}")
        ):
            bad.append(f"the resumed run's ckpt-{s} has no metadata file after save() returned")
        if trial.cleanup_temp:
            # Each leftover is reported once, by the first cleanup_temp=True save it survives.
            fresh = [
                x
                for x in trial.leftovers_after
                if x not in self.reported and leftover_prefix(x) not in self.listed_at_start
            ]
            self.reported.update(fresh)
            if fresh:
                bad.append(f"cleanup_temp=True left {fresh} after the save")
        else:
            # quarantine/ is where a cleanup_temp=False manager deliberately keeps files it
            # would otherwise write over; a later cleanup_temp=True manager leaves it alone.
            self.reported.update(x for x in trial.leftovers_after if x.startswith("quarantine/"))


def run(
    kills: int,
    size_mb: float,
    seed: int,
    workdir: str | os.PathLike[str],
    *,
    points: Sequence[str] | None = None,
    cleanup: Sequence[bool] | None = None,
    chain_length: int = 8,
    log: Any = None,
) -> Summary:
    """Kill a training process `kills` times and check every resume; see the module doc.

    Args:
        kills: How many kills (trials).
        size_mb: Model size in MiB (the checkpoint's data shard is about this big).
        seed: Seeds the schedule, the random delays and the children's cleanup options.
        workdir: An existing directory for the checkpoint directories and the child logs.
        points: The kill point of each trial (`POINTS` names or ``"random"``); by default
            every other kill is random and the others cycle through `POINTS`. Points that
            need strace are skipped (recorded in ``skipped_points``) when it is unavailable.
        cleanup: The resuming process's ``cleanup_temp`` for each trial (cycled); by
            default it alternates between the kills at each point.
        chain_length: Kills per checkpoint directory before starting over in an empty one.
        log: A callable for progress lines (default: silent).

    Returns:
        The `Summary`.
    """
    say = log or (lambda _line: None)
    have_strace = strace_available()
    plan = list(points) if points is not None else schedule(kills, seed, have_strace)
    plan = plan[:kills]
    unknown = [p for p in plan if p != RANDOM and p not in POINTS]
    if unknown:
        raise ValueError(f"unknown kill points {unknown}; choose from {[*POINTS, RANDOM]}")
    summary = Summary(kills, size_mb, seed, str(workdir), have_strace)
    if not have_strace:
        summary.skipped_points = sorted({p for p in plan if point_needs_strace(p)})
        plan = [p for p in plan if not point_needs_strace(p)]
    flags = list(cleanup) if cleanup else cleanup_flags(plan, seed)
    harness = _Harness(size_mb, seed, Path(workdir), chain_length, summary, say)
    started = time.monotonic()
    try:
        for i, point in enumerate(plan):
            trial = harness.trial(i, point, flags[i % len(flags)])
            summary.trials.append(trial)
            say(
                f"[{i + 1}/{len(plan)}] {point:<17} landed={trial.landed:<17} "
                f"complete={trial.complete_before} -> {trial.restore_outcome} "
                f"ckpt-{trial.restored} saved ckpt-{trial.saved} cleanup={trial.cleanup_temp} "
                f"{trial.outcome} {'; '.join(trial.violations + trial.errors)}"
            )
    finally:
        harness.close()
        summary.seconds = time.monotonic() - started
    return summary
