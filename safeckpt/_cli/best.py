"""``safeckpt ls`` and ``inspect``: the metrics and metadata recorded beside checkpoints.

Metadata files are plain JSON read through `safeckpt._format.metadata` (no TensorFlow call on
local paths). The best are marked by the same rule the manager keeps them by
(`safeckpt._catalog.best.rank_best`): by ``--best METRIC[:min|max][:K]``, else by the
``keep_best`` recorded in the newest metadata file of each checkpoint name.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from safeckpt._catalog.best import Scored, rank_best
from safeckpt._format.metadata import read_metadata
from safeckpt._info import CheckpointInfo
from safeckpt._metadata import CheckpointMetadata, KeepBest


def parse_best(text: str | None) -> KeepBest | None:
    """``--best val_loss``, ``val_loss:min``, ``acc:max:3`` as a `KeepBest` (None: not given).

    Raises:
        ValueError, TypeError: The text does not describe a valid `KeepBest`.
    """
    if text is None:
        return None
    metric, _, rest = text.partition(":")
    mode, _, k = rest.partition(":")
    return KeepBest(metric, mode or "min", int(k) if k else 1)


def with_metrics(info: CheckpointInfo) -> CheckpointInfo:
    """`info` with the metrics its metadata file records (one read; none without a file)."""
    if info.metadata_file is None:
        return info
    meta = read_metadata(info.prefix).metadata
    return replace(info, metrics=None if meta is None else dict(meta.metrics))


def best_of(infos: list[CheckpointInfo], given: KeepBest | None) -> dict[str, KeepBest]:
    """The `KeepBest` each checkpoint name is ranked by (``--best``, else recorded)."""
    rules: dict[str, KeepBest] = {}
    names = dict.fromkeys(i.name for i in infos)
    for name in names:
        if given is not None:
            rules[name] = given
            continue
        recorded = [i for i in infos if i.name == name and i.metadata_file is not None]
        if recorded:
            meta = read_metadata(recorded[-1].prefix).metadata
            if meta is not None and meta.keep_best is not None:
                rules[name] = meta.keep_best
    return rules


def best_prefixes(infos: list[CheckpointInfo], rules: dict[str, KeepBest]) -> set[str]:
    """The prefixes among the `k` best of their name (complete checkpoints only)."""
    best: set[str] = set()
    for name, rule in rules.items():
        scored = [
            Scored(i.prefix, i.step, i.metrics) for i in infos if i.name == name and i.complete
        ]
        best.update(s.prefix for s in rank_best(scored, rule)[: rule.k])
    return best


def metrics_text(metrics: dict[str, float] | None, sep: str = ",") -> str:
    """``acc=0.9,val_loss=0.31`` (one table cell: no spaces), or ``-``."""
    if not metrics:
        return "-"
    return sep.join(f"{k}={v:.6g}" for k, v in sorted(metrics.items()))


def metadata_lines(meta: CheckpointMetadata) -> list[str]:
    """``safeckpt inspect``'s lines about a checkpoint's metadata file."""
    lines = [
        f"written by: {meta.writer_text()}",
        f"step: {meta.step}",
        f"metrics: {metrics_text(meta.metrics, ' ')}",
    ]
    if meta.metadata:
        lines.append("metadata: " + ", ".join(f"{k}={v!r}" for k, v in meta.metadata.items()))
    if meta.variables is not None:
        lines.append(f"variables: {meta.variables.count} values, {meta.variables.digest}")
    if meta.keep_best is not None:
        rule = meta.keep_best
        lines.append(f"keep_best: {rule.metric} ({rule.mode}), k={rule.k}")
    return lines


def metadata_json(prefix: str) -> dict[str, Any] | None:
    """The metadata of `prefix` for ``--json`` output: its fields, or its problem, or None."""
    read = read_metadata(prefix)
    if read.metadata is not None:
        return read.metadata.to_dict()
    if read.problem is not None:
        return {"problem": read.problem, "path": read.path}
    return None
