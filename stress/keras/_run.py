"""The trials of `stress.keras`: an uninterrupted run, an interrupted one, its resumption."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from stress.keras._oracle import INPUTS, INTERRUPTIONS, Config, Record, check
from stress.keras._summary import Summary, Trial

TIMEOUT = 300.0
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SAFECKPT_ALLOW_EPHEMERAL": "1"}


def _command(config: Config, run_dir: Path, backups: str, *extra: str) -> list[str]:
    run_dir.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "stress.keras._child", config.to_json(), str(run_dir), backups,
            *extra]  # fmt: skip


def _trained(run_dir: Path) -> int:
    seen = run_dir / "seen"
    return len(seen.read_text().splitlines()) if seen.exists() else 0


def _finish(child: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = child.communicate(timeout=TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, err


def interrupt(
    config: Config, interruption: str, at_batch: int, run_dir: Path, backups: str
) -> tuple[int, str]:
    """Run the interrupted ``fit``; its exit status and stderr."""
    if interruption == "raise":
        done = subprocess.run(_command(config, run_dir, backups, str(at_batch)), text=True,
                              capture_output=True, env=ENV, timeout=TIMEOUT, cwd=_ROOT)  # fmt: skip
        return done.returncode, done.stderr
    child = subprocess.Popen(_command(config, run_dir, backups), text=True, env=ENV, cwd=_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    while child.poll() is None and _trained(run_dir) < at_batch and time.monotonic() < deadline:
        time.sleep(0.005)
    if child.poll() is None:
        child.send_signal(signal.SIGKILL if interruption == "sigkill" else signal.SIGTERM)
    return _finish(child)


_ROOT = str(Path(__file__).resolve().parents[2])  # the checkout: ``-m stress.keras._child``


def run(
    trials: int,
    seed: int,
    workdir: Path,
    log: Callable[[str], None] = lambda line: None,
    interruptions: tuple[str, ...] = INTERRUPTIONS,
) -> Summary:
    """Run `trials` trials drawn with `seed` under `workdir`."""
    rng = random.Random(seed)
    summary = Summary(seed=seed)
    started = time.monotonic()
    full_runs: dict[Config, Record] = {}
    for index in range(trials):
        begun = time.monotonic()
        config = Config(
            input=rng.choice(INPUTS),
            save_freq=rng.choice(["epoch", 1, 2, 3, 4, 5]),
            steps_per_execution=rng.choice([1, 1, 2]),
            backup_rank=rng.randrange(0, 5),
        )
        interruption = interruptions[index % len(interruptions)]
        trial = Trial(index=index, config=config, interruption=interruption, at_batch=0)
        summary.trials.append(trial)
        base = workdir / f"trial-{index:03d}"
        if config not in full_runs:
            done = subprocess.run(_command(config, base / "full", "-"), capture_output=True,
                                  text=True, env=ENV, timeout=TIMEOUT, cwd=_ROOT)  # fmt: skip
            if done.returncode != 0:
                trial.errors.append(f"the uninterrupted run failed: {done.stderr[-2000:]}")
                continue
            full_runs[config] = Record.read(base / "full")
        full = full_runs[config]
        trial.at_batch = rng.randrange(1, len(full.seen))
        backups = str(base / "backup")
        status, err = interrupt(config, interruption, trial.at_batch, base / "first", backups)
        trial.exit_status = status
        first = Record.read(base / "first")
        trial.trained = len(first.seen)
        if status == 0 and first.epochs is not None:
            trial.missed = True  # the fit ended before the signal came: nothing to resume
            log(f"trial {index}: {interruption} came after the fit ended")
            continue
        expected = {"sigkill": -signal.SIGKILL, "sigterm": -signal.SIGTERM, "raise": 1}
        if status != expected[interruption]:
            trial.errors.append(f"the interrupted run ended with {status}: {err[-2000:]}")
            continue
        done = subprocess.run(_command(config, base / "resumed", backups), capture_output=True,
                              text=True, env=ENV, timeout=TIMEOUT, cwd=_ROOT)  # fmt: skip
        if done.returncode != 0:
            trial.violations.append(f"the resumed run failed: {done.stderr[-2000:]}")
            continue
        trial.started_after, trial.violations = check(
            config, interruption, full, first, Record.read(base / "resumed")
        )
        trial.seconds = time.monotonic() - begun
        log(
            f"trial {index}: {interruption} {config} at {trial.at_batch}, trained "
            f"{trial.trained}, resumed after {trial.started_after}: "
            + ("ok" if not trial.violations else "; ".join(trial.violations))
        )
    summary.seconds = time.monotonic() - started
    return summary
