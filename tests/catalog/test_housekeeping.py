"""Choosing the leftovers `cleanup_temp` removes: one row per rule, as a pure function.

The inventories are built by hand (what a listing and the state file would give); the rule
under test decides from them and from the leftovers' times alone.
"""

from __future__ import annotations

import pytest

from safeckpt._catalog.housekeeping import choose_leftovers
from safeckpt._catalog.inventory import Inventory
from safeckpt._causes import Cause
from safeckpt._format.statefile import StateFile
from safeckpt._info import CheckpointInfo

D = "/run"
T = 1000.0  # the newest complete checkpoint's time


def info(base: str, *problems: Cause, files: tuple[str, ...] = (), listed: bool = False,
         mtime: float | None = T) -> CheckpointInfo:  # fmt: skip
    name, step = base.rsplit("-", 1)
    return CheckpointInfo(f"{D}/{base}", name, int(step), files, 0, mtime, listed, problems)


COMPLETE = info("ckpt-3", files=("ckpt-3.data-00000-of-00001", "ckpt-3.index"))


def inventory(*extra: CheckpointInfo, temps: tuple[str, ...] = (),
              state_temps: tuple[str, ...] = ()) -> Inventory:  # fmt: skip
    return Inventory(
        D, StateFile(f"{D}/checkpoint", True, "ckpt-3", ("ckpt-3",)),
        (*extra, COMPLETE), (), temps, state_temps, (), (),
    )  # fmt: skip


ROWS = [
    # (what, inventory, mtimes, finished, protected, chosen)
    ("older _temp dir", inventory(temps=("ckpt-2_temp",)), {"ckpt-2_temp": T - 1}, None, (),
     ["ckpt-2_temp"]),
    ("newer _temp dir: maybe an async save in flight", inventory(temps=("ckpt-4_temp",)),
     {"ckpt-4_temp": T + 1}, None, (), []),
    ("another name's _temp dir", inventory(temps=("best-1_temp",)), {"best-1_temp": T - 1},
     None, (), []),
    ("the finished save's own stale _temp, whatever its time", inventory(temps=("ckpt-3_temp",)),
     {"ckpt-3_temp": T + 5}, f"{D}/ckpt-3", (), ["ckpt-3_temp"]),
    ("older state temp", inventory(state_temps=("checkpoint.tmp1",)), {"checkpoint.tmp1": T - 1},
     None, (), ["checkpoint.tmp1"]),
    ("state temp without times is kept", inventory(state_temps=("checkpoint.tmp1",)),
     {"checkpoint.tmp1": None}, None, (), []),
    ("data of a save that never got an index",
     inventory(info("ckpt-2", Cause.MISSING_INDEX, files=("ckpt-2.data-00000-of-00001",))),
     {"ckpt-2.data-00000-of-00001": T - 1}, None, (), ["ckpt-2.data-00000-of-00001"]),
    ("... unless the state file lists it",
     inventory(info("ckpt-2", Cause.MISSING_INDEX, files=("ckpt-2.data-00000-of-00001",),
                    listed=True)),
     {"ckpt-2.data-00000-of-00001": T - 1}, None, (), []),
    ("... or listed it when the manager was created",
     inventory(info("ckpt-2", Cause.MISSING_INDEX, files=("ckpt-2.data-00000-of-00001",))),
     {"ckpt-2.data-00000-of-00001": T - 1}, None, (f"{D}/ckpt-2",), []),
    ("a damaged (truncated) checkpoint is never a leftover",
     inventory(info("ckpt-2", Cause.TRUNCATED_DATA, files=("ckpt-2.data-00000-of-00001",))),
     {"ckpt-2.data-00000-of-00001": T - 1}, None, (), []),
    ("no times: a _temp below the newest complete step", inventory(temps=("ckpt-2_temp",)),
     {"ckpt-2_temp": None}, None, (), ["ckpt-2_temp"]),
    ("no times: a _temp above it is kept", inventory(temps=("ckpt-4_temp",)),
     {"ckpt-4_temp": None}, None, (), []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("inv", "mtimes", "finished", "protected", "chosen"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_choose_leftovers(
    inv: Inventory,
    mtimes: dict[str, float | None],
    finished: str | None,
    protected: tuple[str, ...],
    chosen: list[str],
) -> None:
    got = choose_leftovers(inv, "ckpt", mtimes, finished=finished, protected=frozenset(protected))
    assert [item.name for item in got] == chosen


def test_nothing_is_removed_without_a_complete_checkpoint() -> None:
    inv = Inventory(D, StateFile(f"{D}/checkpoint", False), (), (), ("ckpt-1_temp",), (), (), ())
    assert choose_leftovers(inv, "ckpt", {"ckpt-1_temp": 0.0}) == []
