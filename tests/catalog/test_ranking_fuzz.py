"""The ranking fuzzer (`stress.ranking`), seeded and small enough for ``make test``.

Its oracle is the documented "newest usable checkpoint" rule, computed from the directory
listing and the hashes and values recorded when each checkpoint was written (see
`stress.ranking._oracle`), never from safeckpt's own ranking.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stress import ranking
from stress.ranking import _oracle as oracle
from stress.ranking._scenarios import FAMILIES

pytestmark = pytest.mark.slow

SEED = 20260301
CASES = 150  # about 8 s on an idle 2-core machine
BASELINE_CASES = 100


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> ranking.Summary:
    return ranking.run(CASES, SEED, workdir=str(tmp_path_factory.mktemp("ranking")))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> ranking.Summary:
    # The same kind of scenarios against tf.train.CheckpointManager.restore_or_initialize.
    work = str(tmp_path_factory.mktemp("tf"))
    return ranking.run(BASELINE_CASES, SEED, workdir=work, configs=ranking.BASELINE)


def _explain(s: ranking.Summary) -> str:
    return s.table() + "\n" + json.dumps(s.examples, indent=1, default=str)[:6000]


def test_seeded_cases_violate_nothing(summary: ranking.Summary) -> None:
    assert summary.cases == CASES
    assert summary.ok, _explain(summary)


def test_every_family_is_generated(summary: ranking.Summary) -> None:
    assert set(summary.families) == set(FAMILIES)
    assert all(summary.families[f] >= 5 for f in FAMILIES), summary.families


def test_case_directories_are_removed(summary: ranking.Summary, tmp_path: Path) -> None:
    ranking.run(3, SEED, workdir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_the_oracle_flags_plain_tensorflow(baseline: ranking.Summary) -> None:
    # Plain TF silently starts fresh next to intact checkpoints (missing or foreign state
    # file) and then overwrites ckpt-1, ckpt-2, ... with its restarted save counter.
    assert {"fresh_with_usable", "overwrote_intact"} <= baseline.kinds, baseline.table()
    assert {"latest_checkpoint", "wrong_checkpoint"} <= baseline.kinds, baseline.table()


def test_a_reproduction_replays_from_json_after_minimizing(
    baseline: ranking.Summary, tmp_path: Path
) -> None:
    kind = "overwrote_intact"
    scenario = baseline.examples[kind]["scenario"]
    small = ranking.minimize(scenario, kind, str(tmp_path))
    assert 1 <= len(small["ops"]) <= len(scenario["ops"])
    path = tmp_path / "repro.json"
    path.write_text(json.dumps({"violation": kind, "scenario": small}))
    assert ranking.main(["--replay", str(path)]) == 1
    assert kind in dict(ranking.replay(json.loads(path.read_text())["scenario"]))
    assert ranking.make_scenario(SEED, 5) == ranking.make_scenario(SEED, 5)


def _listing(
    files: dict[str, int], state: str | None, state_mtime: int | None = 50
) -> oracle.Listing:
    both = {}
    for base, t in files.items():
        both[f"{base}.index"] = t
        both[f"{base}.data-00000-of-00001"] = t
    return oracle.Listing("/d", both, state, state_mtime)


def test_the_rule_itself() -> None:
    state = 'model_checkpoint_path: "ckpt-3"\nall_model_checkpoint_paths: "./ckpt-10"\n'
    state += 'all_model_checkpoint_paths: "/elsewhere/ckpt-3"\n'
    # A rewind: the state file's latest (3) beats the higher step 10; 12 is an interrupted
    # save (unlisted, above every listed step, newer than the state file); 11 is older.
    r = oracle.rank(
        _listing({"ckpt-3": 10, "ckpt-10": 20, "ckpt-11": 40, "ckpt-12": 60}, state), "ckpt"
    )
    assert r.order == ("ckpt-12", "ckpt-3", "ckpt-11", "ckpt-10")
    assert r.interrupted == {"ckpt-12"} and r.latest == "ckpt-3"
    # Repeated model_checkpoint_path: the last one wins; a foreign path is re-anchored.
    r = oracle.rank(
        _listing({"ckpt-2": 1, "ckpt-9": 1}, state + 'model_checkpoint_path: "/x/y/ckpt-2"\n'),
        "ckpt",
    )
    assert r.order == ("ckpt-2", "ckpt-9")
    # Garbled, or no model_checkpoint_path: ignored entirely, highest step first.
    for bad in ('model_checkpoint_path: "ckpt-', 'all_model_checkpoint_paths: "ckpt-2"'):
        assert oracle.rank(_listing({"ckpt-2": 1, "ckpt-9": 1}, bad), "ckpt").latest is None
    # Outside the directory with no such base name here: ignored; another name's latest
    # applies only when the manager's name has no candidates.
    r = oracle.rank(_listing({"ckpt-2": 1}, 'model_checkpoint_path: "../o/ckpt-7"'), "ckpt")
    assert r.order == ("ckpt-2",) and r.latest is None
    r = oracle.rank(_listing({"best-4": 1, "best-6": 1}, 'model_checkpoint_path: "best-4"'), "ckpt")
    assert r.order == ("best-4", "best-6") and r.name == "best"
    assert not oracle.complete("ckpt-1", ["ckpt-1.index"])
    assert not oracle.complete("ckpt-1", ["ckpt-1.index", "ckpt-1.data-00000-of-00002"])
