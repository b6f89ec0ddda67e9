"""The writer lease (safeckpt/_catalog/lease.py): the rule, the file, and what it costs a directory.

Two real processes are in tests/integration/test_concurrency.py; here the rule is checked as
the table docs/fallback.md states it, and the file against the rest of the library.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import (
    Cause,
    ConcurrentWriterError,
    SafeCheckpointManager,
    SaveError,
    diagnose,
    list_checkpoints,
)
from safeckpt._catalog.housekeeping import cleanup_temp
from safeckpt._catalog.inventory import scan
from safeckpt._catalog.lease import STALE_SECONDS, Holder, Verdict, judge, new_holder
from testing.checkpoints import Trainee, other_writer

LEASE = ".safeckpt-writer-ckpt"


def _lease(directory: Path, name: str = "ckpt") -> dict[str, object]:
    data: dict[str, object] = json.loads((directory / f".safeckpt-writer-{name}").read_text())
    return data


# --- The rule, as docs/fallback.md states it ---------------------------------------------

ME = Holder("me", "host-a", "boot-a/ns", 100, "5000")
SAME_PROCESS = Holder("earlier", "host-a", "boot-a/ns", 100, "5000", 3, 1.0)
SAME_HOST = Holder("other", "host-a", "boot-a/ns", 200, "6000", 3, 1.0)
OTHER_HOST = Holder("other", "host-b", "boot-b/ns", 100, "5000", 3, 1.0)
OTHER_HOST_LATER = Holder("other", "host-b", "boot-b/ns", 100, "5000", 4, 2.0)


@pytest.mark.parametrize(
    ("found", "first_seen", "unchanged_for", "alive", "verdict"),
    [
        (None, None, 0.0, None, Verdict.TAKE),
        (Holder("me", "host-a", "boot-a/ns", 100, "5000", 9, 9.0), None, 0.0, None, Verdict.KEEP),
        (SAME_PROCESS, SAME_PROCESS, 0.0, True, Verdict.TAKE_OVER),
        (SAME_HOST, SAME_HOST, 5000.0, True, Verdict.REFUSE),  # alive: however old
        (SAME_HOST, None, 0.0, False, Verdict.TAKE_OVER),  # gone: however fresh
        # A preempted job restarted on another host: the old lease is minutes old, unchanged.
        (OTHER_HOST, OTHER_HOST, 60.0, None, Verdict.TAKE_OVER),
        # The other host saved after this manager first looked: a live writer...
        (OTHER_HOST_LATER, OTHER_HOST, 60.0, None, Verdict.REFUSE),
        (OTHER_HOST, None, 0.0, None, Verdict.REFUSE),
        # ... until it stays silent longer than the stated time.
        (OTHER_HOST_LATER, OTHER_HOST, STALE_SECONDS + 1, None, Verdict.TAKE_OVER),
    ],
)
def test_the_lease_rule(
    found: Holder | None,
    first_seen: Holder | None,
    unchanged_for: float,
    alive: bool | None,
    verdict: Verdict,
) -> None:
    assert judge(found, ME, first_seen, unchanged_for, alive).verdict is verdict


def test_this_process_as_a_holder() -> None:
    me = new_holder()
    assert me.pid == os.getpid() and me.host and me.writer != new_holder().writer
    if os.path.exists("/proc/self/stat"):
        assert me.started and me.machine
    assert Holder.parse(me.to_bytes()) == me
    for garbage in (b"", b"\xff\xfe", b"[]", b'{"format": "other"}', b'{"format": 1}'):
        assert Holder.parse(garbage) is None
    fields = json.loads(me.to_bytes())
    for key, bad in (("pid", "1"), ("pid", True), ("saved", "x"), ("step", []), ("host", 3)):
        assert Holder.parse(json.dumps({**fields, key: bad}).encode()) is None, (key, bad)
    far = Holder.parse(json.dumps({**fields, "saved": 1e300}).encode())
    assert far is not None and "at ?" in far.describe()


# --- The file ------------------------------------------------------------------------------


def test_a_save_holds_the_lease_and_refreshes_it(tmp_path: Path, trainee: Trainee) -> None:
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, max_to_keep=2)
    trainee.set(1)
    manager.save()
    first = _lease(tmp_path)
    assert first["pid"] == os.getpid() and first["step"] == 1
    trainee.set(2)
    manager.save()
    second = _lease(tmp_path)
    assert second["step"] == 2 and second["writer"] == first["writer"]
    assert second["saved"] >= first["saved"]
    # One file per checkpoint name: a "best" manager in the same directory has its own.
    best = SafeCheckpointManager(trainee.checkpoint, tmp_path, 1, checkpoint_name="best")
    best.save()
    assert _lease(tmp_path, "best")["writer"] != first["writer"]
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_no_lease_when_read_only_or_turned_off(tmp_path: Path, trainee: Trainee) -> None:
    SafeCheckpointManager(trainee.checkpoint, tmp_path, 2, writer_lease=False).save()
    assert LEASE not in os.listdir(tmp_path)
    reader = SafeCheckpointManager(trainee.checkpoint, tmp_path, 2, read_only=True)
    reader.restore()
    assert LEASE not in os.listdir(tmp_path)
    with pytest.raises(TypeError, match="writer_lease"):
        SafeCheckpointManager(trainee.checkpoint, tmp_path, 2, writer_lease="yes")


def test_a_second_manager_of_this_process_takes_over_quietly(
    tmp_path: Path, trainee: Trainee, caplog: pytest.LogCaptureFixture
) -> None:
    # A notebook cell run again, a Keras callback's manager per fit(): the same process.
    first = SafeCheckpointManager(trainee.checkpoint, tmp_path, 3)
    first.save()
    second = SafeCheckpointManager(Trainee().checkpoint, tmp_path, 3)
    with caplog.at_level(logging.INFO, logger="safeckpt"):
        assert second.save() == str(tmp_path / "ckpt-2")
    taking = [r for r in caplog.records if "Taking over the writer lease" in r.getMessage()]
    assert [r.levelno for r in taking] == [logging.INFO]
    assert "another manager of this process" in taking[0].getMessage()
    trainee.set(5)
    assert first.save() == str(tmp_path / "ckpt-3")  # and back: never a refusal in-process


def _planted(directory: Path, holder: Holder) -> None:
    """A lease as another host's writer leaves it (the documented file format)."""
    (directory / LEASE).write_bytes(holder.to_bytes())


def test_another_hosts_lease_unchanged_since_start_is_taken_over(
    tmp_path: Path, trainee: Trainee, caplog: pytest.LogCaptureFixture
) -> None:
    # A preempted job restarts on another host a minute later: its old lease is fresh, but
    # it has not changed since the restart first looked.
    SafeCheckpointManager(Trainee().checkpoint, tmp_path, 3, writer_lease=False).save()
    _planted(tmp_path, Holder("old-job", "host-b", "boot-b/ns", 4242, "1", 1, time.time() - 60))
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, 3)
    manager.restore()
    with caplog.at_level(logging.WARNING, logger="safeckpt"):
        assert manager.save() == str(tmp_path / "ckpt-2")
    assert any("Taking over the writer lease" in r.getMessage() for r in caplog.records)
    assert "host host-b, pid 4242" in caplog.text
    assert _lease(tmp_path)["pid"] == os.getpid()


def test_another_host_that_saves_meanwhile_is_refused_and_nothing_is_written(
    tmp_path: Path, trainee: Trainee
) -> None:
    SafeCheckpointManager(Trainee().checkpoint, tmp_path, 3, writer_lease=False).save()
    _planted(tmp_path, Holder("old-job", "host-b", "boot-b/ns", 4242, "1", 1, time.time() - 60))
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, 3)
    manager.restore()  # first look
    _planted(tmp_path, Holder("old-job", "host-b", "boot-b/ns", 4242, "1", 2, time.time()))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ConcurrentWriterError) as info:
        manager.save()
    error = info.value
    assert isinstance(error, SaveError)
    assert isinstance(error, tf.errors.FailedPreconditionError)
    assert error.diagnosis is not None and error.diagnosis.cause is Cause.CONCURRENT_WRITER
    assert "host host-b, pid 4242, last save step 2" in str(error)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_live_writer_on_this_host_is_refused(tmp_path: Path, trainee: Trainee) -> None:
    with other_writer(tmp_path) as saved:
        manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, 3)
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        with pytest.raises(ConcurrentWriterError, match="its process is running on this host"):
            manager.save()
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
        pid = _lease(tmp_path)["pid"]
    # The other process ended: its lease is taken over, and the save does not write over
    # what it saved.
    assert manager.save() == str(tmp_path / "ckpt-2")
    assert saved == str(tmp_path / "ckpt-1") and pid != os.getpid()
    assert _lease(tmp_path)["pid"] == os.getpid()


# --- What else sees the file ----------------------------------------------------------------


def test_the_lease_is_safeckpts_own_file(tmp_path: Path, trainee: Trainee) -> None:
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, max_to_keep=1)
    for k in range(1, 4):
        trainee.set(k)
        manager.save()  # the rotation deletes ckpt-1, ckpt-2, never the lease
    inventory = scan(str(tmp_path))
    assert inventory.own == (LEASE,) and inventory.other == ()
    assert [c.basename for c in list_checkpoints(tmp_path)] == ["ckpt-3"]
    found = diagnose(tmp_path)
    assert found.ok, str(found)
    assert any(f"written by host {os.uname().nodename}" in e for e in found.evidence), found
    assert LEASE in os.listdir(tmp_path)


def test_cleanup_temp_removes_a_killed_writers_lease_temporary(
    tmp_path: Path, trainee: Trainee
) -> None:
    manager = SafeCheckpointManager(trainee.checkpoint, tmp_path, 3)
    stale = tmp_path / f"{LEASE}.tmp-0123456789ab"
    stale.write_bytes(b"{}")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    manager.save()
    removed = cleanup_temp(scan(str(tmp_path)), "ckpt")
    assert removed == [str(stale)]
    assert LEASE in os.listdir(tmp_path)
