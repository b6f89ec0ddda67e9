"""The one rule for "the newest checkpoint".

`rank` orders the checkpoints of one name, most recent first. `latest_checkpoint`,
``restore(None)``, retention (the order of the ``max_to_keep`` rotation) and housekeeping all
use it, so they can never disagree. The rule, as stated in ``docs/fallback.md``:

- **Identity:** a checkpoint is its prefix ``<directory>/<base name>``; every spelling of a
  path in the state file maps to it (`safeckpt._format.statefile.resolve_recorded`).
- **Candidates:** the checkpoints named ``<checkpoint_name>-<N>`` whose ``.index`` and every
  data shard their file names declare exist. Only when there is none does the state file's
  latest of another name apply (TensorFlow's behaviour): that name's checkpoints then are the
  candidates.
- **Order:** the state file's ``model_checkpoint_path`` first when it is a candidate (after a
  rewind the last save is not the highest step). Before it come the interrupted saves:
  candidates the state file does not list at all, with a step above every step it lists for
  this name and, where the filesystem has times, files no older than the state file. Then
  every other candidate by step, highest first. Without a usable ``model_checkpoint_path``: by step.
- **Within one manager, never back in time** (`not_before`): a checkpoint the manager already
  returned, restored or saved stays first while it is a candidate and the rule would put an
  older one (a lower step, written no later) before it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from safeckpt._catalog.inventory import Inventory, scan
from safeckpt._info import CheckpointInfo
from safeckpt._io.errors import io_errors


@dataclass(frozen=True)
class Ranking:
    """The candidates of one checkpoint name, newest first, and how they were ordered.

    Attributes:
        name: The checkpoint name the candidates have (the manager's, or the other name the
            state file's latest has when the manager's name has no candidate).
        candidates: Checkpoints whose index and every data shard exist, newest first.
        state_latest: The checkpoint the state file's ``model_checkpoint_path`` names inside
            the directory (complete or not), or None.
        interrupted: Candidates ranked before the state file's latest because they are newer
            than the state file (a save interrupted before its state write).
        notes: What a person should know about how the order came about.
    """

    name: str
    candidates: tuple[CheckpointInfo, ...]
    state_latest: CheckpointInfo | None = None
    interrupted: tuple[CheckpointInfo, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def first(self) -> CheckpointInfo | None:
        """The newest candidate, or None."""
        return self.candidates[0] if self.candidates else None

    @property
    def latest_unusable(self) -> CheckpointInfo | None:
        """The state file's latest when it has this name but is not a candidate."""
        latest = self.state_latest
        if latest is None or latest.name != self.name or latest in self.candidates:
            return None
        return latest


def _by_step(inventory: Inventory, infos: list[CheckpointInfo]) -> list[CheckpointInfo]:
    """`infos` by step, highest first; equal steps (``ckpt-3``, ``ckpt-03``) by time, name."""
    tied = {step for step, n in Counter(c.step for c in infos).items() if n > 1}

    def key(info: CheckpointInfo) -> tuple[int, float, str]:
        when = (inventory.mtime_of(info) or 0.0) if info.step in tied else 0.0
        return (-1 if info.step is None else info.step, when, info.prefix)

    return sorted(infos, key=key, reverse=True)


def _state_latest(inventory: Inventory) -> CheckpointInfo | None:
    latest = inventory.state_latest()
    if latest is None or latest.prefix is None:
        return None
    return next((c for c in inventory.checkpoints if c.prefix == latest.prefix), None)


def rank(inventory: Inventory, name: str, *, times: bool = True) -> Ranking:
    """Order the candidates of `name` in `inventory` by the rule (see the module docstring).

    Args:
        inventory: The directory's inventory.
        name: The manager's checkpoint name.
        times: Compare modification times with the state file's (stats only of the
            checkpoints that may be interrupted saves); False orders by names alone.
    """
    latest = _state_latest(inventory)
    candidates = [c for c in inventory.family(name) if c.complete]
    notes: list[str] = []
    if not candidates and latest is not None and latest.complete and latest.name != name:
        notes.append(
            f"No checkpoint is named {name!r}; following the state file's latest, "
            f"{latest.basename} (checkpoint_name={latest.name!r}), as TensorFlow does."
        )
        name = latest.name
        candidates = [c for c in inventory.family(name) if c.complete]
    by_step = _by_step(inventory, candidates)
    if latest is None or latest not in candidates:
        return Ranking(name, tuple(by_step), latest, (), tuple(notes))
    listed = [c.step for c in inventory.family(name) if c.in_state_file and c.step is not None]
    top = max(listed, default=-1)
    maybe = [c for c in by_step if not c.in_state_file and c.step is not None and c.step > top]
    interrupted: list[CheckpointInfo] = []
    if maybe:
        when = inventory.state_mtime() if times else None
        if when is not None:
            inventory.prefetch_mtimes(maybe)
        interrupted = [
            c for c in maybe if when is None or (t := inventory.mtime_of(c)) is None or t >= when
        ]
    for info in interrupted:
        notes.append(
            f"{info.basename} is complete and newer than the state file's latest "
            f"({latest.basename}), which does not list it: a save was interrupted before the "
            "state file was written."
        )
    rest = [c for c in by_step if c is not latest and c not in interrupted]
    return Ranking(name, (*interrupted, latest, *rest), latest, tuple(interrupted), tuple(notes))


def _older(inventory: Inventory, info: CheckpointInfo, than: CheckpointInfo) -> bool:
    """Whether `info` is older than `than`: a lower step, and written no later (if known)."""
    if info.name != than.name or info.step is None or than.step is None:
        return False
    if info.step >= than.step:
        return False
    mine, theirs = inventory.mtime_of(info), inventory.mtime_of(than)
    return mine is None or theirs is None or mine <= theirs


def not_before(ranking: Ranking, inventory: Inventory, floor: str | None) -> Ranking:
    """`ranking`, with `floor` first again when the rule would now go back in time.

    `floor` is the checkpoint a manager last returned as `latest_checkpoint`, restored or
    saved. Another process changes the directory while the manager runs: the state file
    another trainer rewrote a moment later can make the rule put an older checkpoint first
    (an interrupted save becomes an ordinary one once the state file is newer than it). When
    `floor` is still a candidate and the first candidate is older than it (a lower step,
    written no later where the storage reports times), `floor` stays first. A checkpoint
    with a lower step written later (another process rewound and saved again) is not older.
    """
    first = ranking.first
    if floor is None or first is None or first.prefix == floor:
        return ranking
    held = next((c for c in ranking.candidates if c.prefix == floor), None)
    if held is None or not _older(inventory, first, held):
        return ranking
    note = (
        f"{held.basename} stays the newest: this manager already used it, and the rule now "
        f"ranks the older {first.basename} first (another process changed the directory "
        "meanwhile)."
    )
    rest = tuple(c for c in ranking.candidates if c is not held)
    return replace(ranking, candidates=(held, *rest), notes=(*ranking.notes, note))


#: How many times a restore reads the directory again when the state file changed under it.
_RESCANS = 3


def consistent_rank(inventory: Inventory, name: str) -> tuple[Inventory, Ranking]:
    """The inventory and its ranking, read again while they disagree because of a writer.

    When the state file names a checkpoint whose files the listing lacks and the state file
    has changed since it was read (another process is saving and rotating), both are read
    again (a few times at most): the names then come from one moment.
    """
    ranking = rank(inventory, name)
    for _ in range(_RESCANS):
        if ranking.latest_unusable is None or not inventory.state_changed():
            break
        try:
            inventory = scan(inventory.directory)
        except io_errors():
            break
        ranking = rank(inventory, name)
    return inventory, ranking
