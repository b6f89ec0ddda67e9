"""Diagnosing a checkpoint that is not where it was expected: another step, another name."""

from __future__ import annotations

from safeckpt._catalog.inventory import Inventory, measured_locally
from safeckpt._causes import Cause
from safeckpt._diagnosis import Diagnosis, capped
from safeckpt._format.layout import INDEX_SUFFIX, data_shard
from safeckpt._info import CheckpointInfo
from safeckpt._io import fs


def describe_files(inventory: Inventory, info: CheckpointInfo) -> tuple[str, ...]:
    d = inventory.directory
    base = info.basename
    lines = [
        f"{fs.join(d, f)} exists ({'directory' if f.endswith('/') else 'file'})."
        for f in info.files
    ]
    if not any(f.endswith(INDEX_SUFFIX) for f in info.files):
        lines.append(f"{fs.join(d, base + '.index')} does not exist.")
    elif Cause.MISSING_DATA_SHARD in info.problems:
        present = {f for f in info.files if data_shard(f) is not None}
        count = max((shard[2] for f in present if (shard := data_shard(f))), default=1)
        absent = (
            f"{fs.join(d, name)} does not exist."
            for k in range(count)
            if (name := f"{base}.data-{k:05d}-of-{count:05d}") not in present
        )
        same = sum(1 for f in present if (shard := data_shard(f)) and shard[2] == count)
        lines.extend(capped(absent, count - same))
    if info.in_state_file:
        lines.append(f"The state file {inventory.state.path} lists {base}.")
    return tuple(lines)


def step_not_found(
    inventory: Inventory, path: str, name: str, step: int | None, family: list[CheckpointInfo]
) -> Diagnosis:
    directory, base = inventory.directory, fs.basename(path)
    steps = [c.step for c in family if c.step is not None]
    newest = family[-1]
    evidence = [
        f"{path}.index does not exist.",
        f"Checkpoints named {name!r} here have steps: {_steps_text(steps)}.",
    ]
    if step is None:
        summary = f"{base} is the save prefix without its -N step suffix."
    else:
        summary = f"There is no checkpoint {base}; step {step} does not exist."
        if steps and step < min(steps):
            keep = len(inventory.state.all_paths) or len(family)
            evidence.append(
                f"Step {step} is older than every kept checkpoint: it was most likely deleted "
                f"by retention (the state file keeps {keep}; max_to_keep={keep}?)."
            )
        elif steps and step > max(steps):
            evidence.append(f"Step {step} is newer than any checkpoint that was saved here.")
    suggestions = [f"Restore the newest checkpoint: checkpoint.restore({newest.prefix!r})."]
    if step is not None:
        below = [c for c in family if c.step is not None and c.step < step]
        if below and below[-1] is not newest:
            suggestions.append(f"The closest older one is {below[-1].prefix!r}.")
    return Diagnosis(
        Cause.STEP_NOT_FOUND,
        summary,
        directory,
        path,
        tuple(evidence),
        tuple(suggestions),
        tuple(reversed(family)),
    )


def _steps_text(steps: list[int]) -> str:
    if not steps:
        return "none"
    if len(steps) > 8:
        return f"{', '.join(map(str, steps[:3]))}, …, {', '.join(map(str, steps[-3:]))}"
    return ", ".join(map(str, steps))


def name_mismatch(
    inventory: Inventory, name: str, step: int | None, others: dict[str, int], path: str | None
) -> Diagnosis:
    directory = inventory.directory
    evidence = [f"No checkpoint named {name!r} exists in {directory}."]
    suggestions = []
    for other, count in sorted(others.items(), key=lambda kv: -kv[1]):
        family = [c for c in inventory.family(other) if c.complete]
        evidence.append(
            f"{count} checkpoint{'s' if count != 1 else ''} named {other!r} exist: "
            f"{', '.join(c.basename for c in family[-3:])}."
        )
        same = [c for c in family if step is not None and c.step == step]
        if same:
            suggestions.append(f"Restore {same[0].prefix!r} (same step, other name).")
        suggestions.append(
            f"Use checkpoint_name={other!r}: SafeCheckpointManager(checkpoint, {directory!r}, "
            f"max_to_keep=..., checkpoint_name={other!r})."
        )
    best = max(others, key=lambda n: others[n])
    complete = [c for c in inventory.family(best) if c.complete]
    candidates = tuple(reversed(measured_locally(complete)))
    return Diagnosis(
        Cause.NAME_MISMATCH,
        f"Checkpoints here are named {best!r}, not {name!r}.",
        directory,
        path,
        tuple(evidence),
        tuple(suggestions),
        candidates,
    )
