"""The oracle of `stress.keras`: the backup schedule as its own rule, and the checks.

Nothing here reads safeckpt's files or imports safeckpt: what a run did comes from the logs
its child wrote as it trained (`Record`), and where the backups are is computed from the
configuration (`backup_points`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BATCHES_PER_EPOCH = 6
INTERRUPTIONS = ("sigkill", "sigterm", "raise")
INPUTS = ("arrays", "dataset", "pydataset")


@dataclass(frozen=True)
class Config:
    """One ``fit`` configuration (the child's argument, as JSON)."""

    input: str
    save_freq: str | int
    steps_per_execution: int
    backup_rank: int  # where BackupAndRestore sits among the other callbacks

    def to_json(self) -> str:
        """The child's argument."""
        return json.dumps(asdict(self))


def backup_points(config: Config, batches: int) -> list[int]:
    """After how many trained batches a backup is written, up to `batches` (Keras's rule).

    ``save_freq="epoch"``: at each epoch's end. An integer: Keras's own counting
    (``keras/src/callbacks/backup_and_restore.py``, ``_should_save_on_batch``), step by step:
    a step's end batch number ``b`` adds ``b + 1`` if it is not above the last one seen
    (a new epoch), else ``b - last``; a backup when the count reaches ``save_freq`` (the count
    restarts at 0); at each epoch's end the last batch seen is reset to 0.
    """
    if config.save_freq == "epoch":
        return list(range(BATCHES_PER_EPOCH, batches + 1, BATCHES_PER_EPOCH))
    step = config.steps_per_execution
    points: list[int] = []
    count = last = trained = 0
    while trained < batches:
        for begin in range(0, BATCHES_PER_EPOCH, step):
            end = begin + step - 1
            count += end + 1 if end <= last else end - last
            last = end
            trained += step
            if count >= int(config.save_freq):
                count = 0
                if trained <= batches:
                    points.append(trained)
        last = 0
    return points


@dataclass
class Record:
    """What one run did, from its child's logs."""

    seen: list[list[int]]
    rates: dict[int, float]
    saves: list[str]  # ModelCheckpoint's files
    epochs: list[int] | None  # None: fit did not return
    weights: list[Any] | None

    @classmethod
    def read(cls, run_dir: Path) -> Record:
        """The logs of the run in `run_dir`."""
        seen_file, rates_file = run_dir / "seen", run_dir / "rates"
        seen = (
            [json.loads(x) for x in seen_file.read_text().splitlines()]
            if seen_file.exists()
            else []
        )
        rates = (
            {e: r for e, r in (json.loads(x) for x in rates_file.read_text().splitlines())}
            if rates_file.exists()
            else {}
        )
        saves = sorted(p.name for p in run_dir.glob("m-*.weights.h5"))
        result = run_dir / "result.json"
        data = json.loads(result.read_text()) if result.exists() else None
        return cls(
            seen=seen,
            rates=rates,
            saves=saves,
            epochs=data["epochs"] if data else None,
            weights=data["weights"] if data else None,
        )


def allowed_starts(config: Config, interruption: str, trained: int) -> set[int]:
    """The batch counts the resumed run may start after, given how the first run ended."""
    points = backup_points(config, trained)
    if interruption == "sigterm":
        return {trained}  # the batch in progress is finished and backed up
    newest = points[-1] if points else 0
    if interruption == "raise" or trained > newest:
        # A batch trained after the newest backup point proves that backup was written.
        return {newest}
    # Killed right after that point's batch: its backup may or may not have been written.
    return {newest, points[-2] if len(points) > 1 else 0}


def check(
    config: Config, interruption: str, full: Record, first: Record, resumed: Record
) -> tuple[int | None, list[str]]:
    """The violations of one trial, and the batch count the resumed run started after."""
    problems: list[str] = []
    trained = len(first.seen)
    if first.seen != full.seen[:trained]:
        problems.append("the interrupted run did not train the uninterrupted run's batches")
    start = len(full.seen) - len(resumed.seen)
    if resumed.seen != full.seen[start:]:
        problems.append("the resumed run's batches are not the end of the uninterrupted run's")
    allowed = allowed_starts(config, interruption, trained)
    if start not in allowed:
        problems.append(f"resumed after {start} batches, expected one of {sorted(allowed)}")
    if sorted(set(first.saves) | set(resumed.saves)) != full.saves:
        problems.append(f"ModelCheckpoint saved {first.saves} + {resumed.saves}, not {full.saves}")
    if {**first.rates, **resumed.rates} != full.rates:
        problems.append("the learning rates differ from the uninterrupted run's")
    if resumed.epochs is None or full.epochs is None or resumed.weights is None:
        problems.append("the resumed fit did not return")
    else:
        if resumed.epochs[-1:] != full.epochs[-1:]:
            problems.append(f"stopped at epoch {resumed.epochs[-1:]}, not {full.epochs[-1:]}")
        difference = max(
            abs(a - b)
            for x, y in zip(full.weights or [], resumed.weights, strict=True)
            for a, b in zip(_flat(x), _flat(y), strict=True)
        )
        if difference > 1e-6:
            problems.append(f"final weights differ by {difference:g}")
    return start, problems


def _flat(value: Any) -> list[float]:
    if isinstance(value, list):
        return [v for item in value for v in _flat(item)]
    return [float(value)]
