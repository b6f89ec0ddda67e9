"""Shared fixtures: real TensorFlow checkpoints in temporary directories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests save under the system's temporary folder: no "will not outlive the job" warning
# (tests/io/test_storage.py unsets it to test that warning).
os.environ.setdefault("SAFECKPT_ALLOW_EPHEMERAL", "1")
# TensorFlow reads its gs:// retry settings once, when it is imported: short retries (the
# gs:// fixtures at the end of this file; the values are testing.gcs.server.RETRY_ENV).
os.environ.setdefault("GCS_RETRY_CONFIG_MAX_RETRIES", "2")
os.environ.setdefault("GCS_RETRY_CONFIG_INIT_DELAY_TIME_US", "10000")
os.environ.setdefault("GCS_RETRY_CONFIG_MAX_DELAY_TIME_US", "100000")

from testing.checkpoints import Trainee, write_checkpoints
from testing.gcs.server import GcsEmulator, apply_env, restore_env, skip_reason
from testing.privileges import is_root, nobody_exists


@pytest.fixture
def trainee() -> Trainee:
    return Trainee()


@pytest.fixture
def ckpt_dir(tmp_path: Path) -> Path:
    """A directory with three healthy checkpoints ckpt-1..3 holding 1.0, 2.0, 3.0."""
    directory = tmp_path / "run" / "checkpoints"
    write_checkpoints(directory, 3)
    return directory


@pytest.fixture
def chdir_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def unprivileged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A world-accessible scratch directory for code run by `run_unprivileged`.

    Permission checks cannot be tested as root (root bypasses file modes), so tests that
    need them run their scenario in a child process that drops to the user ``nobody``.
    """
    if is_root() and not nobody_exists():
        pytest.skip("running as root and there is no 'nobody' user to drop privileges to")
    base = Path("/tmp") / f"safeckpt-unpriv-{os.getpid()}-{tmp_path_factory.getbasetemp().name}"
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o777)
    try:
        yield base
    finally:
        import shutil

        for root, dirs, _files in os.walk(base):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o777)
        shutil.rmtree(base, ignore_errors=True)


# --- gs:// against a local GCS server (testing/gcs/) ----------------------------------------
#
# TensorFlow's real gs:// client talks to fake-gcs-server through the counting, faulting proxy
# of testing.gcs. The emulator starts once per session (only when a test asks for it); the
# variables that point libcurl at the proxy (https_proxy, CURL_CA_BUNDLE, ...) are set only
# while a test that uses `gcs` or `gcs_dir` runs: libcurl reads them on every request, and
# other tests expect gs:// to be unreachable (no network). The retry settings, which TF reads
# at import, are set at the top of this file. The stat cache keeps TF's default (5 s): each
# test gets a fresh prefix.


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    """The session's GCS emulator and proxy (skipped only when the server binary cannot run)."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(f"gs:// tests need fake-gcs-server: {reason}")
    emulator = GcsEmulator()
    emulator.start()  # the binary runs: failing to start is a failure, not a reason to skip
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def gcs(gcs_emulator: GcsEmulator) -> Iterator[GcsEmulator]:
    """The emulator, with no fault armed, counts reset and TF pointed at it for this test."""
    gcs_emulator.clear_faults()
    previous = apply_env(gcs_emulator.env())
    gcs_emulator.reset_counts()
    try:
        yield gcs_emulator
    finally:
        gcs_emulator.clear_faults()
        restore_env(previous)


@pytest.fixture
def gcs_dir(gcs: GcsEmulator, request: pytest.FixtureRequest) -> str:
    """A fresh ``gs://bucket/<test name>-<n>-<hex>``: nothing exists under it yet."""
    return gcs.new_prefix(request.node.name)


@pytest.fixture
def gcs_child_env(gcs: GcsEmulator) -> dict[str, str]:
    """The environment for a child process using the emulator, with TF's stat cache off.

    TF reads ``GCS_STAT_CACHE_MAX_AGE`` once per process, so a run without the 5-second stat
    cache has to be a child process (``subprocess.run(..., env=gcs_child_env)``).
    """
    return {**os.environ, **gcs.env(stat_cache_max_age=0)}
