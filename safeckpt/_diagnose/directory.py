"""`diagnose_directory`: what is wrong with a checkpoint directory, and what to do."""

from __future__ import annotations

from dataclasses import replace

from safeckpt._catalog.inflight import InFlight, in_flight
from safeckpt._catalog.inventory import Inventory, measured_locally, scan
from safeckpt._catalog.lease import lease_evidence
from safeckpt._catalog.nearby import similar_checkpoint_dirs, summarize
from safeckpt._catalog.removed import relisted_if_gone
from safeckpt._causes import Cause
from safeckpt._diagnose.metadata import metadata_evidence, orphan_evidence
from safeckpt._diagnose.names import describe_files, name_mismatch
from safeckpt._diagnosis import Diagnosis, capped, describe_exception
from safeckpt._format.verify import check_prefix
from safeckpt._info import CheckpointInfo
from safeckpt._io import fs
from safeckpt._io.errors import io_errors
from safeckpt._io.translate import cause_of

_MAX_VERIFIED_CANDIDATES = 10
_RESCANS = 3
_REPAIR = "Run `safeckpt repair {d}` to rewrite the state file from the checkpoints that verify."


def unavailable(path: str, exc: BaseException) -> Diagnosis:
    return Diagnosis(
        Cause.STORAGE_UNAVAILABLE,
        "The storage holding this path could not be reached.",
        fs.dirname(path),
        None,
        (f"{path}: {describe_exception(exc)}",),
        ("Check network access and credentials, then retry.",),
        error=describe_exception(exc),
    )


def diagnose_directory(
    directory: str, *, checkpoint_name: str | None = None, deep: bool = False
) -> Diagnosis:
    """Diagnose a normalized, existing checkpoint directory."""
    try:
        inventory = scan(directory)
        for _ in range(_RESCANS):  # another process replaced the state file meanwhile
            if not inventory.state_changed():
                break
            inventory = scan(directory)
    except io_errors() as exc:
        if cause_of(exc) is Cause.PERMISSION_DENIED:
            return _denied(directory, exc)
        return unavailable(directory, exc)
    result = _diagnose_scanned(inventory, checkpoint_name, deep)
    if not inventory.undecodable:
        return result
    skipped = capped(
        (
            f"{fs.join(directory, name)}: the name is not UTF-8; skipped."
            for name in inventory.undecodable
        ),
        len(inventory.undecodable),
    )
    return replace(result, evidence=(*result.evidence, *skipped))


def _diagnose_scanned(inventory: Inventory, checkpoint_name: str | None, deep: bool) -> Diagnosis:
    directory = inventory.directory
    if "saved_model.pb" in inventory.other or "saved_model.pbtxt" in inventory.other:
        return _saved_model(directory)
    parent = fs.dirname(directory)
    if fs.basename(directory) == "variables" and _has_saved_model(parent):
        return _saved_model(parent)
    for _ in range(_RESCANS):
        found = _diagnose_inventory(inventory, checkpoint_name, deep)
        listed = next((c for c in inventory.checkpoints if c.prefix == found.checkpoint), None)
        if found.ok or listed is None or not listed.complete:
            return found
        fresh = relisted_if_gone(listed, found, unproven=True)  # another process removed it
        if fresh is None:
            return found
        inventory = fresh
    return _diagnose_inventory(inventory, checkpoint_name, deep)


def _diagnose_inventory(inventory: Inventory, checkpoint_name: str | None, deep: bool) -> Diagnosis:
    """Diagnose the directory `inventory` lists."""
    counts = inventory.names()
    nested = _nested_prefix(inventory)
    if nested is not None:
        return nested
    name = checkpoint_name or inventory.default_name()
    flight = in_flight(inventory)
    family = [c for c in inventory.family(name) if c not in flight.checkpoints]
    complete = [c for c in family if c.complete]
    if not complete:
        if any(n != name for n in counts):
            return name_mismatch(inventory, name, None, counts, None)
        return _nothing_usable(inventory, name, family, flight)
    return _with_checkpoints(inventory, name, family, complete, deep, flight)


def _nested_prefix(inventory: Inventory) -> Diagnosis | None:
    """A folder named like the checkpoint prefix it holds (an archive extracted one level deep)."""
    own = fs.basename(inventory.directory)
    if inventory.state.exists:
        return None
    inside = [c for c in inventory.checkpoints if c.complete and own in (c.basename, c.name)]
    if not inside:
        return None
    prefix = inside[-1].prefix
    return Diagnosis(
        Cause.DIRECTORY_NOT_PREFIX,
        f"{own} is a directory holding the checkpoint {inside[-1].basename}, not a prefix.",
        inventory.directory,
        prefix,
        (
            f"{prefix}.index exists inside the directory {inventory.directory}.",
            "An archive was probably extracted into a folder named like the checkpoint.",
        ),
        (
            f"Pass the prefix inside it: {prefix!r}.",
            f"Or move its files up one level into {fs.dirname(inventory.directory)!r}.",
        ),
        (inside[-1],),
    )


def _has_saved_model(directory: str) -> bool:
    try:
        return any(
            fs.exists(fs.join(directory, f)) for f in ("saved_model.pb", "saved_model.pbtxt")
        )
    except io_errors():
        return False


def _denied(directory: str, exc: BaseException) -> Diagnosis:
    return Diagnosis(
        Cause.PERMISSION_DENIED,
        "The directory cannot be listed.",
        directory,
        None,
        (f"{directory}: {describe_exception(exc)}",),
        (f"Check its permissions: ls -ld {directory!r}.",),
        error=describe_exception(exc),
    )


def _saved_model(directory: str) -> Diagnosis:
    variables = fs.join(directory, "variables/variables")
    return Diagnosis(
        Cause.SAVED_MODEL,
        "This is a SavedModel directory, not a checkpoint directory.",
        directory,
        variables,
        (
            f"{fs.join(directory, 'saved_model.pb')} exists.",
            f"Its weights are the checkpoint {variables}.",
        ),
        (
            f"Load the model with tf.saved_model.load({directory!r}).",
            f"Or restore its weights: tf.train.Checkpoint(model=model).restore({variables!r}).",
        ),
    )


def _nothing_usable(
    inventory: Inventory, name: str, family: list[CheckpointInfo], flight: InFlight
) -> Diagnosis:
    directory = inventory.directory
    if family:
        newest = family[-1]
        cause = newest.problems[0]
        summary = {
            Cause.INCOMPLETE_SAVE: "The only checkpoint here is an interrupted save.",
            Cause.STATE_FILE_STALE: "The state file lists checkpoints whose files are gone.",
        }.get(cause, f"No complete checkpoint: {newest.basename} is damaged ({cause.value}).")
        evidence = [line for info in reversed(family) for line in describe_files(inventory, info)]
        return Diagnosis(
            cause,
            summary,
            directory,
            newest.prefix,
            tuple(evidence),
            ("No usable checkpoint remains here; look for a copy elsewhere.",),
        )
    evidence = [f"{directory} holds no checkpoint files (no *.index).", *flight.describe(directory)]
    suggestions = []
    suggested: set[str] = set()
    for entry in sorted(inventory.other)[:50]:
        sub = fs.join(directory, entry)
        nested = summarize(sub) if fs.isdir(sub) else None
        if nested is not None:
            evidence.append(f"The subdirectory {nested.describe()} has checkpoints.")
            suggestions.append(f"did you mean {nested.describe()}?")
            suggested.add(nested.directory)
    for near in similar_checkpoint_dirs(directory):
        if near.directory != directory and near.directory not in suggested:
            suggested.add(near.directory)
            suggestions.append(f"did you mean {near.describe()}?")
    if fs.scheme_of(directory) is None:
        import os

        evidence.append(f"The working directory is {os.getcwd()}.")
    suggestions.append("If this is the first run of this job, this is expected.")
    return Diagnosis(
        Cause.NO_CHECKPOINTS,
        "There are no checkpoints in this directory.",
        directory,
        None,
        tuple(evidence),
        tuple(dict.fromkeys(suggestions)),
    )


def _with_checkpoints(
    inventory: Inventory,
    name: str,
    family: list[CheckpointInfo],
    complete: list[CheckpointInfo],
    deep: bool,
    flight: InFlight,
) -> Diagnosis:
    directory = inventory.directory
    findings: list[tuple[Cause, str]] = []
    evidence: list[str] = flight.describe(directory)
    newest = family[-1]
    check = None
    if newest.problems:
        findings.append(
            (
                newest.problems[0],
                f"The newest checkpoint {newest.basename} is damaged ({newest.problems[0].value}).",
            )
        )
        evidence.extend(describe_files(inventory, newest))
    else:
        check = check_prefix(newest.prefix, deep=deep)
        if not check.ok:
            findings.append((check.cause, check.summary))
            evidence.extend(check.evidence)
    candidates = _verified(complete, exclude=newest.prefix if findings else None)
    best = candidates[0].prefix if candidates else None
    findings[:0] = _state_findings(inventory, name, complete, evidence)
    for temp in inventory.leftovers():
        if fs.basename(temp) in flight.leftovers:
            continue
        evidence.append(
            f"{temp} is a leftover of an interrupted save (safe to remove once a newer "
            "checkpoint is complete; SafeCheckpointManager(..., cleanup_temp=True) does it)."
        )
    evidence.extend(lease_evidence(directory, inventory.own))
    evidence.extend(metadata_evidence(newest.prefix) if newest.metadata_file else [])
    evidence.extend(orphan_evidence(inventory))
    for worker in inventory.worker_temps:
        evidence.append(f"{fs.join(directory, worker)} is a multi-worker temporary directory.")
    if not findings:
        level = "deep" if deep else "quick"
        summary = (
            f"{len(complete)} checkpoint{'s' if len(complete) != 1 else ''} named "
            f"{name!r}; the newest, {newest.basename}, verified ({level} check)."
        )
        return Diagnosis(
            Cause.HEALTHY, summary, directory, newest.prefix, tuple(evidence), (), tuple(candidates)
        )
    cause, summary = findings[0]
    evidence[:0] = [text for _c, text in findings[1:]]
    suggestions = []
    if best is not None:
        suggestions.append(
            f"Restore the newest checkpoint that verifies: checkpoint.restore({best!r})."
        )
    if cause.value.startswith("state_file") or cause is Cause.PERMISSION_DENIED:
        suggestions.append(_REPAIR.format(d=directory))
    if cause is Cause.PERMISSION_DENIED:
        suggestions.insert(0, f"Check the files' permissions: ls -l {directory!r}.")
    if (check is not None and not check.ok) or newest.problems:
        suggestions.append(
            f"Move the damaged {newest.basename} files into "
            f"{fs.join(directory, 'quarantine')}/ so that nothing tries them again "
            "(SafeCheckpointManager(..., quarantine=True) does it at restore)."
        )
        suggestions.append(
            "SafeCheckpointManager.restore() skips it and restores the newest checkpoint "
            "that verifies (the default fallback='previous_valid')."
        )
    target = newest.prefix if (newest.problems or (check and not check.ok)) else None
    return Diagnosis(
        cause,
        summary,
        directory,
        target if not cause.value.startswith("state_file") else (best or target),
        tuple(evidence),
        tuple(suggestions),
        tuple(candidates),
    )


def _verified(complete: list[CheckpointInfo], exclude: str | None) -> list[CheckpointInfo]:
    out: list[CheckpointInfo] = []
    for info in reversed(complete):
        if info.prefix == exclude:
            continue
        if len(out) >= _MAX_VERIFIED_CANDIDATES or check_prefix(info.prefix).ok:
            out.append(info)
    return measured_locally(out)


def _state_findings(
    inventory: Inventory, name: str, complete: list[CheckpointInfo], evidence: list[str]
) -> list[tuple[Cause, str]]:
    state = inventory.state
    newest = complete[-1].basename
    found: list[tuple[Cause, str]] = []
    if state.problem is Cause.PERMISSION_DENIED:
        found.append((Cause.PERMISSION_DENIED, "The state file cannot be read."))
        evidence.append(state.error or state.path)
    elif state.problem is Cause.STORAGE_UNAVAILABLE:
        found.append((Cause.STORAGE_UNAVAILABLE, "The state file could not be read."))
        evidence.append(state.error or state.path)
    elif state.problem is Cause.NOT_A_REGULAR_FILE:
        found.append((Cause.NOT_A_REGULAR_FILE, "The state file is not a regular file."))
        evidence.append(state.error or state.path)
    elif state.problem is not None:
        found.append(
            (
                Cause.STATE_FILE_CORRUPT,
                f"The state file is unreadable; TensorFlow ignores all {len(complete)} "
                "checkpoints here and starts from scratch.",
            )
        )
        evidence.append(state.error or state.path)
    elif not state.exists:
        found.append(
            (
                Cause.STATE_FILE_MISSING,
                f"The state file is missing; TensorFlow sees none of the "
                f"{len(complete)} checkpoints here (newest {newest}).",
            )
        )
        evidence.append(f"{state.path} does not exist.")
    foreign = [r for r in inventory.recorded if r.foreign]
    if foreign:
        found.append(
            (Cause.STATE_FILE_FOREIGN_PATHS, "The state file records paths outside this directory.")
        )
        for rec in foreign:
            where = (
                f"re-anchored to {rec.prefix}"
                if rec.reanchored
                else "no checkpoint of that name exists here; not followed"
            )
            evidence.append(f"{state.path} records {rec.recorded!r}: {where}.")
    latest = inventory.state_latest()
    by_prefix = {c.prefix: c for c in inventory.checkpoints}
    if latest is not None and latest.prefix is not None:
        info = by_prefix.get(latest.prefix)
        if info is None or Cause.STATE_FILE_STALE in info.problems:
            found.append(
                (
                    Cause.STATE_FILE_STALE,
                    f"The state file names {fs.basename(latest.prefix)}, whose files are gone.",
                )
            )
            evidence.append(f"{latest.prefix}.index does not exist.")
        elif info.step is not None and info.name == name:
            newer = [c for c in complete if c.step is not None and c.step > info.step]
            if newer:
                found.append(
                    (
                        Cause.STATE_FILE_STALE,
                        f"The state file names {info.basename}, but a newer complete "
                        f"checkpoint {newer[-1].basename} exists (a save was interrupted "
                        "before the state file was written).",
                    )
                )
                evidence.append(f"{newer[-1].prefix}.index exists but is not in {state.path}.")
        if info is not None and info.name != name:
            evidence.append(
                f"The state file's latest checkpoint is named {info.name!r}, not {name!r}."
            )
    missing = [
        c
        for c in inventory.checkpoints
        if Cause.STATE_FILE_STALE in c.problems and not (latest and c.prefix == latest.prefix)
    ]
    for info in missing:
        evidence.append(f"The state file lists {info.basename}, whose files are gone.")
    return found
