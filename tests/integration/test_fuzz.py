"""The corruption fuzzer (`stress.fuzz`), seeded and small enough for ``make test``.

``make stress`` runs 2,000 cases plus 200 as an unprivileged user; here a fixed seed runs
CASES cases through the four configurations (verify deep/quick x default /
``("previous_valid", "fresh_init")``). The oracle (intact = byte-identical to what TensorFlow
wrote) is described in `stress.fuzz`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stress import fuzz
from testing.privileges import is_root, run_unprivileged

IS_ROOT = is_root()

pytestmark = pytest.mark.slow

SEED = 20260101
CASES = 200  # about 30 s on an idle 2-core machine


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> fuzz.Summary:
    return fuzz.run(CASES, SEED, workdir=str(tmp_path_factory.mktemp("fuzz")))


def test_seeded_cases_violate_nothing(summary: fuzz.Summary) -> None:
    assert summary.cases == CASES
    assert summary.ok, summary.table()


def test_cases_cover_the_damage_kinds_and_every_outcome(summary: fuzz.Summary) -> None:
    applicable = set(fuzz.KINDS) - set(summary.skipped_kinds)
    assert set(summary.damage_kinds) == applicable, summary.table()
    assert summary.cases_with_intact > 0
    assert summary.cases_without_intact > 0
    for config in fuzz.CONFIGS:
        outcomes = summary.outcomes[config.label]
        assert outcomes["restored"] > 0
        assert outcomes["fell_back"] > 0
        raised = sum(n for o, n in outcomes.items() if o.startswith("raised:"))
        if config.fallback == "default":
            assert raised > 0 and outcomes["initialized"] == 0
        else:  # fresh_init ends the chain: it never raises, it starts fresh
            assert raised == 0 and outcomes["initialized"] > 0
        assert not any(o.startswith("escaped:") for o in outcomes)
    if IS_ROOT:
        assert set(summary.skipped_kinds) == {"chmod_file", "chmod_dir"}


def test_deep_verification_keeps_damaged_tensors_away_from_tensorflow(
    summary: fuzz.Summary,
) -> None:
    for config in fuzz.CONFIGS:
        caught = summary.tf_caught.get(config.label, {})
        late = summary.late[config.label]
        if config.verify == "deep":
            assert not caught
            assert set(late) <= {"ok", "not run"}
        else:
            # A flipped tensor passes the quick check and TensorFlow's own checksum catches
            # it inside restore(); the fallback then goes on from there.
            assert sum(caught.values()) > 0
            assert not any("INTACT LEFT" in k or "wrong" in k for k in caught)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> fuzz.Summary:
    # The same kind of cases against tf.train.CheckpointManager.restore_or_initialize.
    return fuzz.run(40, SEED, configs=fuzz.BASELINE, workdir=str(tmp_path_factory.mktemp("tf")))


def test_the_oracle_flags_plain_tensorflow(baseline: fuzz.Summary) -> None:
    # Its raw errors and its silent fresh starts must not go unnoticed.
    kinds = {k.split()[-1] for k in baseline.violation_counts}
    assert {"escaped_exception", "fresh_with_intact"} <= kinds, baseline.table()


def test_a_case_replays_identically_and_minimizes(baseline: fuzz.Summary, tmp_path: Path) -> None:
    kinds, _skipped = fuzz.available_kinds()
    pristine = fuzz.build_pristine(str(tmp_path))
    runs = []
    for n in range(2):
        case, damages, max_to_keep = fuzz.make_case(pristine, str(tmp_path / str(n)), 5, 9, kinds)
        runs.append((damages, max_to_keep, fuzz.compute_truth(case).intact))
        case.remove()
    assert runs[0] == runs[1]
    first = baseline.violations[0]
    found = fuzz.minimize(SEED, first["case"], configs=fuzz.BASELINE)
    assert found["violation"] == first["violation"]
    assert 1 <= len(found["damages"]) <= len(found["original_damages"])
    found = json.loads(json.dumps(found))
    _truth, results = fuzz.replay(found, fuzz.BASELINE)
    assert found["violation"] in {kind for kind, _ in results[0].violations}


@pytest.mark.skipif(not IS_ROOT, reason="covered in-process by the seeded cases when not root")
def test_permission_damage_as_an_unprivileged_user(unprivileged: Path) -> None:
    out = run_unprivileged(
        f"""
kinds = ["chmod_file", "chmod_dir", "flip_data", "delete_index", "state_garble", "temp_leftover"]
s = fuzz.run(24, {SEED}, kinds=kinds, workdir={str(unprivileged / "fuzz")!r})
print(json.dumps(s.to_dict(), default=str))
""",
        preimport="from stress import fuzz",
    )
    result = fuzz.Summary.from_dict(json.loads(out.strip().splitlines()[-1]))
    assert result.ok, result.table()
    assert not result.skipped_kinds
    assert result.damage_kinds["chmod_file"] > 0 and result.damage_kinds["chmod_dir"] > 0
    causes = {e for c in result.errors.values() for e in c}
    assert any("permission_denied" in e for e in causes), result.table()
