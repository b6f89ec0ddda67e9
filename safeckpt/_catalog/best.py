"""The ``keep_best`` rule: which checkpoints are the best, and which the rotation keeps.

Pure functions of names and recorded metrics (no I/O): `rank_best` orders checkpoints by a
`KeepBest` metric, `decide` says which prefixes of the ``max_to_keep`` rotation stay. The
manager applies the decision (`safeckpt._manager.retention`); `safeckpt ls` marks the best
with the same `rank_best`. The rule, as docs/fallback.md states it:

- a checkpoint leaves the directory only when it is neither among the newest ``max_to_keep``
  of the rotation nor among the `k` best of its name by the metric (nor kept by
  ``keep_checkpoint_every_n_hours``, which TensorFlow's sweep still decides);
- checkpoints without the metric, or with a value that is not finite (``nan``, ``inf``),
  are never among the best;
- on equal values the newer checkpoint (higher step, then later in the rotation) ranks first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from safeckpt._metadata import KeepBest


@dataclass(frozen=True)
class Scored:
    """One checkpoint as the rule sees it: its prefix, step and recorded metrics.

    Attributes:
        prefix: The checkpoint prefix.
        step: Its step (None without a ``-N`` suffix).
        metrics: What its metadata file records, or None without a readable one.
    """

    prefix: str
    step: int | None
    metrics: Mapping[str, float] | None


def rank_best(checkpoints: Iterable[Scored], keep: KeepBest) -> list[Scored]:
    """The checkpoints that have the metric (a finite value), best first.

    Ties: the higher step first, then the prefix that sorts last (the input's order is not
    used, so every process ranks the same files the same way).
    """
    scored = [
        (c, keep.score(dict(c.metrics) if c.metrics is not None else None)) for c in checkpoints
    ]
    valued = [(c, v) for c, v in scored if v is not None]
    sign = 1.0 if keep.mode == "min" else -1.0
    valued.sort(key=lambda cv: (sign * cv[1], -(cv[0].step or -1), _reverse(cv[0].prefix)))
    return [c for c, _ in valued]


def _reverse(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)


@dataclass(frozen=True)
class Retention:
    """What the rotation does after a save.

    Attributes:
        protected: Prefixes beyond the newest ``max_to_keep`` that stay because they are among
            the `k` best, oldest first. TensorFlow's sweep never sees them.
        best: The `k` best prefixes of the name, best first.
    """

    protected: tuple[str, ...]
    best: tuple[str, ...]


def decide(
    rotation: Sequence[str],
    max_to_keep: int | None,
    keep: KeepBest | None,
    known: Iterable[Scored],
) -> Retention:
    """Which prefixes of `rotation` (oldest first) stay beyond the newest `max_to_keep`.

    Args:
        rotation: The rotation after the save, oldest first (the new save last).
        max_to_keep: TensorFlow's ``max_to_keep`` (None: nothing is ever deleted).
        keep: The ``keep_best`` option, or None.
        known: Every checkpoint of the manager's name in the directory, with its metrics (the
            rotation's and those outside it, such as checkpoints kept by the hours rule).
    """
    if keep is None:
        return Retention((), ())
    best = tuple(c.prefix for c in rank_best(known, keep)[: keep.k])
    if max_to_keep is None:
        return Retention((), best)
    older = rotation[: max(0, len(rotation) - max_to_keep)]
    return Retention(tuple(p for p in older if p in best), best)
