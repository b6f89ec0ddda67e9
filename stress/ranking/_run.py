"""Running `stress.ranking` scenarios: one against the manager under test, and many.

`execute` builds a scenario's directory (`stress.ranking._build`), records the facts the
oracle needs, drives the manager (construct, restore, save once more, reopen) and returns
the oracle's violations; `replay` runs one in a temporary directory, `run` many seeded cases.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import absl.logging
import tensorflow as tf

import safeckpt
from stress.ranking import _oracle as oracle
from stress.ranking._build import Run, sha
from stress.ranking._case import CONFIGS, Config, Scenario, make_scenario
from stress.ranking._oracle import NEW_VALUE, SENTINEL, STATE, prefixes_of
from stress.ranking._scenarios import NAME
from stress.ranking._summary import Summary

absl.logging.set_verbosity(absl.logging.ERROR)
tf.get_logger().setLevel(logging.ERROR)
logging.getLogger("safeckpt").setLevel(logging.CRITICAL)


class _Model:
    """Fresh variables holding the sentinel, and the checkpoint tracking them."""

    def __init__(self) -> None:
        self.v = tf.Variable(SENTINEL)
        self.step = tf.Variable(-1, dtype=tf.int64)
        self.ckpt = tf.train.Checkpoint(v=self.v, step=self.step)


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]


def _ckpt_files(directory: str) -> dict[str, str]:
    return {
        f: sha(os.path.join(directory, f))
        for f in sorted(os.listdir(directory))
        if prefixes_of([f]) and os.path.isfile(os.path.join(directory, f))
    }


def _quarantined(directory: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for top, _dirs, files in os.walk(os.path.join(directory, "quarantine")):
        for f in files:
            out.setdefault(f, set()).add(sha(os.path.join(top, f)))
    return out


def _outside(root: str, directory: str) -> dict[str, str]:
    out = {}
    for top, _dirs, files in os.walk(root):
        if os.path.commonpath([top, directory]) == directory:
            continue
        out.update({os.path.join(top, f): sha(os.path.join(top, f)) for f in files})
    return out


def _all_files(directory: str) -> dict[str, str]:
    """Every regular file of `directory` (metadata files included) -> sha256."""
    return {
        f: sha(os.path.join(directory, f))
        for f in sorted(os.listdir(directory))
        if os.path.isfile(os.path.join(directory, f))
    }


def _listing(directory: str) -> oracle.Listing:
    files, text, mtime = {}, None, None
    for f in os.listdir(directory):
        path = os.path.join(directory, f)
        if f == STATE and os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f_in:
                text = f_in.read()
            mtime = os.stat(path).st_mtime_ns
        elif os.path.isfile(path):
            files[f] = os.stat(path).st_mtime_ns
    return oracle.Listing(directory, files, text, mtime)


def _manager(config: Config, model: _Model, directory: str) -> Any:
    if config.subject == "tf":
        return tf.train.CheckpointManager(model.ckpt, directory, max_to_keep=config.max_to_keep)
    return safeckpt.SafeCheckpointManager(
        model.ckpt, directory, max_to_keep=config.max_to_keep, verify=config.verify
    )


def _restore(config: Config, manager: Any) -> tuple[str | None, str]:
    if config.subject == "tf":
        path = manager.restore_or_initialize()
        return path, "restored" if path else "initialized"
    report = manager.restore()
    return report.save_path, report.outcome.value


def drive(config: Config, directory: str) -> oracle.Observed:
    """Construct, restore, save once more, reopen: what the manager did."""
    o = oracle.Observed()
    model = _Model()
    try:
        manager = _manager(config, model, directory)
    except Exception as e:
        o.construct_error = _err(e)
        return o
    o.latest = manager.latest_checkpoint
    try:
        o.save_path, o.outcome = _restore(config, manager)
        o.value = float(model.v.numpy())
    except Exception as e:
        o.restore_error, o.not_found = _err(e), isinstance(e, tf.errors.NotFoundError)
        return o
    model.v.assign(NEW_VALUE)
    try:
        o.new_save = manager.save()
    except Exception as e:
        o.save_error = _err(e)
        return o
    o.after, o.quarantined = _ckpt_files(directory), _quarantined(directory)
    o.all_after = _all_files(directory)
    again = _Model()
    try:
        reopened = _manager(config, again, directory)
        o.reopen_latest = reopened.latest_checkpoint
        _restore(config, reopened)
        o.reopen_value = float(again.v.numpy())
    except Exception as e:
        o.reopen_error = _err(e)
    return o


def execute(scenario: Scenario, tmp: str) -> list[tuple[str, str]]:
    """Build the scenario under ``tmp`` and check the manager under test against the rule."""
    root = os.path.join(tmp, "s")
    run = Run(root)
    for op in scenario["ops"]:
        run.apply(op)
    directory = run.dir
    listing = _listing(directory)
    before = oracle.Before(
        directory,
        NAME,
        oracle.rank(listing, NAME),
        dict(run.facts),
        _ckpt_files(directory),
        _outside(root, directory),
    )
    config = Config.from_dict(scenario["config"])
    tf_intact = None
    if config.subject == "safeckpt" and config.max_to_keep is None:
        shutil.copytree(root, os.path.join(tmp, "tf"))  # copy2: same bytes and mtimes
        tf_dir = os.path.join(tmp, "tf", os.path.relpath(directory, root))
        after = drive(Config("tf", None, "none"), tf_dir).after
        tf_intact = {
            c
            for c, w in before.facts.items()
            if before.intact(c) and after and all(after.get(f) == h for f, h in w.hashes.items())
        }
    files_before = _all_files(directory)
    observed = drive(config, directory)
    observed.tf_intact = tf_intact
    observed.outside_after = _outside(root, directory)
    found = oracle.check(before, observed, config.max_to_keep)
    if observed.new_save is not None:  # the save ran: its rotation decided
        found += oracle.metadata_violations(files_before, observed.all_after, observed.new_save)
    return found


def replay(scenario: Scenario, workdir: str | None = None) -> list[tuple[str, str]]:
    """Run one scenario in a temporary directory (removed afterwards)."""
    tmp = tempfile.mkdtemp(prefix="ranking-case-", dir=workdir)
    try:
        return execute(scenario, os.path.realpath(tmp))
    except Exception as e:  # a scenario the harness itself cannot build
        return [("harness_error", _err(e))]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(
    cases: int, seed: int, workdir: str | None = None, configs: Sequence[Config] = CONFIGS
) -> Summary:
    """Run ``cases`` seeded cases; each in its own temporary directory, removed afterwards."""
    summary = Summary()
    start = time.perf_counter()
    for case in range(cases):
        scenario = make_scenario(seed, case, configs)
        summary.add(scenario, replay(scenario, workdir))
    summary.seconds = time.perf_counter() - start
    return summary
