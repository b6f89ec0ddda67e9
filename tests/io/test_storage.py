"""Storage that will not outlive the job: one warning at construction, a note in ``doctor``.

A real tmpfs mounted for the test (as root; skipped with the reason elsewhere), the system's
temporary folder, and the parsing of ``/proc/self/mountinfo`` on recorded real lines (a
container's overlay root cannot be mounted over this machine's root in a test).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from safeckpt import SafeCheckpointManager
from safeckpt._catalog import volume
from safeckpt._cli.main import main
from safeckpt._io.storage import QUIET_ENV, Mount, ephemeral_reason, mount_of, parse_mountinfo
from testing.checkpoints import Trainee
from testing.jsonschema import command_problems
from testing.mounts import tmpfs

WARNING = "will not outlive the job"

#: Recorded lines: a Docker container (overlay root, a bind-mounted volume, /dev/shm), a
#: Kubernetes pod's emptyDir on tmpfs, and a mount point with a space (``\\040``).
MOUNTINFO = "\n".join(
    (
        "584 464 0:52 / / rw,relatime master:253 - overlay overlay rw,lowerdir=/var/lib/docker/"
        "overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/x/diff,"
        "workdir=/var/lib/docker/overlay2/x/work",
        "585 584 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw",
        "590 584 254:1 /home/me/data /data rw,relatime - ext4 /dev/vda1 rw,discard",
        "591 584 0:58 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k",
        "592 584 0:60 / /var/lib/kubelet/pods/p1/volumes/kubernetes.io~empty-dir/cache "
        "rw,relatime - tmpfs tmpfs rw,size=1048576k",
        r"593 584 254:1 /srv /mnt/my\040disk rw,relatime - ext4 /dev/vda1 rw",
    )
)


@pytest.fixture
def loud(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warning on (conftest silences it for the tests that save under /tmp)."""
    monkeypatch.delenv(QUIET_ENV, raising=False)
    monkeypatch.setattr(volume, "_WARNED", set())


@pytest.fixture
def tmpfs_dir(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted at ``tmp_path/ram``, unmounted afterwards."""
    with tmpfs(tmp_path / "ram", "4m") as where:
        yield where


def test_mountinfo_lines_are_parsed_and_the_longest_mount_point_wins() -> None:
    mounts = parse_mountinfo(MOUNTINFO + "garbage line\n")
    assert Mount("/", "overlay", "overlay") in mounts
    assert Mount("/mnt/my disk", "ext4", "/dev/vda1") in mounts  # \040 decoded
    assert mount_of("/data/run1", mounts) == Mount("/data", "ext4", "/dev/vda1")
    assert mount_of("/database", mounts) == Mount("/", "overlay", "overlay")  # not /data
    assert mount_of("/dev/shm/x", mounts) == Mount("/dev/shm", "tmpfs", "shm")


def test_the_reasons_on_recorded_mounts(tmp_path: Path) -> None:
    # Paths that do not exist here are judged by the recorded lines (their real path is
    # their own: nothing on the way is a link on this machine).
    overlay = ephemeral_reason("/opt/run/ckpts", MOUNTINFO)
    assert overlay is not None and "overlay" in overlay and "root file system" in overlay
    assert ephemeral_reason("/data/run/ckpts", MOUNTINFO) is None  # a mounted volume
    empty_dir = "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~empty-dir/cache/ckpts"
    pod = ephemeral_reason(empty_dir, MOUNTINFO)
    assert pod is not None and "tmpfs" in pod and "kubernetes.io~empty-dir/cache" in pod
    under_temp = ephemeral_reason(str(tmp_path / "ckpts"), "")  # no mountinfo: by the folder
    assert under_temp is not None and tempfile.gettempdir() in under_temp


def test_a_tmpfs_directory_warns_once(
    tmpfs_dir: Path, loud: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "safeckpt"):
        manager = SafeCheckpointManager(Trainee().checkpoint, tmpfs_dir / "ckpts", max_to_keep=2)
        SafeCheckpointManager(Trainee().checkpoint, tmpfs_dir / "ckpts", max_to_keep=2)
    warnings = [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "is on tmpfs" in warnings[0] and str(tmpfs_dir) in warnings[0]
    assert "do not survive a restart" in warnings[0]
    assert manager.save() is not None  # a warning, not a refusal


@pytest.mark.parametrize("how", ["option", "environment", "read_only"])
def test_the_warning_is_silenced(
    tmpfs_dir: Path,
    loud: None,
    how: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kwargs: dict[str, object] = {}
    if how == "option":
        kwargs["allow_ephemeral"] = True
    elif how == "environment":
        monkeypatch.setenv(QUIET_ENV, "1")
    else:
        SafeCheckpointManager(Trainee().checkpoint, tmpfs_dir, max_to_keep=2, allow_ephemeral=True)
        kwargs["read_only"] = True  # it writes nothing: nothing to lose
    with caplog.at_level(logging.WARNING, "safeckpt"):
        SafeCheckpointManager(Trainee().checkpoint, tmpfs_dir, max_to_keep=2, **kwargs)
    assert WARNING not in caplog.text


def test_persistent_storage_does_not_warn(loud: None, caplog: pytest.LogCaptureFixture) -> None:
    home = Path(__file__).resolve().parent / ".." / "build" / "persistent-test-ckpts"
    reason = ephemeral_reason(str(home))
    if reason is not None:
        pytest.skip(f"the checkout itself is on storage that will not outlive the job: {reason}")
    assert volume.ephemeral_note(str(home)) is None


def test_doctor_notes_it_without_failing(
    tmpfs_dir: Path, loud: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = SafeCheckpointManager(Trainee().checkpoint, tmpfs_dir, max_to_keep=2)
    manager.save()
    assert main(["doctor", str(tmpfs_dir)]) == 0  # healthy: the note changes no exit code
    out = capsys.readouterr().out
    assert "note: " in out and "is on tmpfs" in out
    assert main(["doctor", "--json", str(tmpfs_dir)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and "is on tmpfs" in data["notes"][0]
    assert command_problems("doctor", data) == []  # the notes are documented (docs/cli.md)
    monkeypatch.setenv(QUIET_ENV, "1")
    assert main(["doctor", str(tmpfs_dir)]) == 0
    assert "note: " not in capsys.readouterr().out
