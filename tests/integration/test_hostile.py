"""The hostile-input harness (`stress.hostile`): its oracle, its table writer, a seeded slice.

``make stress`` runs 2,000 cases; here a fixed seed runs CASES of them through the same
workers and oracle, and control entry points that misbehave on purpose prove that the oracle
flags each kind of violation (a write outside the directory, a write by a read-only call, an
undocumented exception, a hang, an abort, runaway memory, non-strict JSON, a traceback, a
damaged checkpoint called healthy).
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Iterator

import pytest
import tensorflow as tf

from stress import hostile
from stress.hostile import _wire as wire
from stress.hostile._run import pristine_files

pytestmark = pytest.mark.slow

SEED = hostile.DEFAULT_SEED
CASES = 300


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hostile.Runner]:
    with hostile.runner(str(tmp_path_factory.mktemp("hostile"))) as active:
        yield active


@pytest.fixture(scope="module")
def pristine(runner: hostile.Runner) -> hostile.Pristine:
    return hostile.Pristine(pristine_files(runner.pristine))


def _kinds(result: hostile.CaseResult) -> set[str]:
    return {kind for kind, _ in result.violations}


# The oracle flags what it must ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "violation"),
    [
        ("control_write_outside", "outside_changed"),
        ("control_write_inside", "readonly_changed"),
        ("control_raise", "escaped:error"),
        ("control_abort", "crashed"),
        ("control_memory", "memory"),
        ("control_cli_nan", "json"),
        ("control_cli_traceback", "cli_traceback"),
        ("control_healthy", "expect:not_healthy"),
    ],
)
def test_the_oracle_flags_a_misbehaving_call(
    runner: hostile.Runner, entry: str, violation: str
) -> None:
    result = runner.run_case(hostile.control_case(entry))
    assert violation in _kinds(result), result
    # and a worker that died is replaced: the next call works and violates nothing
    assert runner.run_case(hostile.control_case("verify")).violations == []


def test_a_hang_is_killed_and_flagged(runner: hostile.Runner) -> None:
    bounds = dataclasses.replace(runner.bounds, timeout=3.0)
    result = runner.run_case(hostile.control_case("control_hang"), bounds=bounds)
    assert result.outcome == "hang"
    assert "hang" in _kinds(result)
    assert runner.run_case(hostile.control_case("diagnose")).violations == []


def test_a_bad_exit_code_is_flagged(runner: hostile.Runner) -> None:
    result = runner.run_case(hostile.control_case("control_cli_traceback"))
    assert {"cli_exit", "cli_traceback"} <= _kinds(result)


@pytest.mark.parametrize("entry", ["verify", "verify_deep", "cli_verify_prefix", "diagnose"])
def test_correct_calls_are_not_flagged(runner: hostile.Runner, entry: str) -> None:
    # A truncated shard that safeckpt does find: the expectation holds, nothing is flagged.
    assert runner.run_case(hostile.damaged_target_case(entry)).violations == []


def test_strict_json() -> None:
    assert hostile.json_error('{"a": [1, 2.5, null, "x"]}') is None
    assert hostile.json_error('{"t": NaN}') == "NaN is not JSON"
    assert hostile.json_error('{"t": -Infinity}') == "-Infinity is not JSON"
    assert hostile.json_error('{"a": 1} {"b": 2}') is not None


def test_snapshot_never_opens_a_fifo(tmp_path: os.PathLike[str]) -> None:
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "run", "ckpts"))
    os.mkfifo(os.path.join(root, "run", "ckpts", "pipe"))
    os.mkfifo(os.path.join(root, "outside-pipe"))
    os.symlink("/dev/zero", os.path.join(root, "zero"))
    inside = hostile.snapshot(root, inside=True)
    outside = hostile.snapshot(root, inside=False)
    assert inside[os.path.join("run", "ckpts", "pipe")][0] == "special"
    assert outside["outside-pipe"][0] == "special"
    assert outside["zero"] == ("link", "/dev/zero")


# The harness's own table writer --------------------------------------------------------------


def test_crc32c_matches_the_standard_check_value() -> None:
    assert wire.crc32c(b"123456789") == 0xE3069283
    assert wire.mask(0) == 0xA282EAD8


def test_tensorflow_reads_a_table_the_harness_wrote(
    pristine: hostile.Pristine, tmp_path: os.PathLike[str]
) -> None:
    # The writer is what makes CRC-valid hostile indexes possible: TF must accept its output.
    items = pristine.tables[3].items
    table = wire.build_table(wire.split_blocks(items, 2)).data
    assert table != pristine.index(3)  # other block boundaries, same entries
    prefix = os.path.join(str(tmp_path), "ckpt-3")
    with open(prefix + ".index", "wb") as handle:
        handle.write(table)
    with open(prefix + ".data-00000-of-00001", "wb") as handle:
        handle.write(pristine.data(3))
    reader = tf.train.load_checkpoint(prefix)
    assert int(reader.get_tensor("model/step/.ATTRIBUTES/VARIABLE_VALUE")) == 3
    assert reader.get_tensor("model/tag/.ATTRIBUTES/VARIABLE_VALUE") == b"run-a/step-003"
    assert wire.parse_table(table).items == items


def test_string_tensor_layout_matches_tensorflow(pristine: hostile.Pristine) -> None:
    entry = dict(pristine.entries(3))[wire.GRAPH_KEY]
    payload = pristine.data(3)[entry.offset : entry.offset + entry.size]
    (graph,) = wire.read_string_tensor(payload)
    assert wire.string_tensor([graph]) == (payload, entry.crc)


def test_entries_round_trip_and_hold_impossible_values() -> None:
    entry = wire.Entry(dtype=999, dims=[-1, 1 << 40], offset=(1 << 63) - 1, size=-1, crc=5)
    again = wire.Entry.decode(entry.encode())
    assert (again.dtype, again.dims, again.offset, again.size) == (
        999,
        [-1, 1 << 40],
        (1 << 63) - 1,
        -1,
    )
    assert struct.unpack("<Q", wire.footer((1, 2), (3, 4))[-8:])[0] == wire.MAGIC


# Cases are reproducible -----------------------------------------------------------------------


def test_cases_are_seeded_and_keys_rebuild_them(pristine: hostile.Pristine) -> None:
    for index in range(40):
        case = hostile.generate(SEED, index, pristine)
        assert case is not None
        assert hostile.generate(SEED, index, pristine) == case
        family, kind, entry, seed, idx = hostile._generate.parse_key(case.key)
        assert hostile._generate.build(seed, idx, family, kind, entry, pristine) == case


# The seeded slice -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slice_results(runner: hostile.Runner) -> list[hostile.CaseResult]:
    cases = hostile.make_cases(runner, CASES, SEED)
    return [runner.run_case(case) for case in cases]


def test_the_slice_covers_every_family_and_many_entry_points(
    slice_results: list[hostile.CaseResult],
) -> None:
    families = {r.case.family for r in slice_results}
    assert families == set(hostile.FAMILIES)
    assert len({r.case.entry for r in slice_results}) >= 25
    assert len({(r.case.family, r.case.kind) for r in slice_results}) >= 50


def test_seeded_slice_violates_nothing(slice_results: list[hostile.CaseResult]) -> None:
    summary = hostile.Summary(seed=SEED)
    for result in slice_results:
        summary.add(result)
    assert summary.ok, summary.table()
