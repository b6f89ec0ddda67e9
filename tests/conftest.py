"""Shared fixtures: real TensorFlow checkpoints in temporary directories."""

from __future__ import annotations

import contextlib
import inspect
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests save under the system's temporary folder: no "will not outlive the job" warning
# (tests/test_save_storage.py unsets it to test that warning).
os.environ.setdefault("SAFECKPT_ALLOW_EPHEMERAL", "1")
# TensorFlow reads its gs:// retry settings once, when it is imported: short retries (the
# gs:// fixtures at the end of this file; the values are stress._gcs.RETRY_ENV).
os.environ.setdefault("GCS_RETRY_CONFIG_MAX_RETRIES", "2")
os.environ.setdefault("GCS_RETRY_CONFIG_INIT_DELAY_TIME_US", "10000")
os.environ.setdefault("GCS_RETRY_CONFIG_MAX_DELAY_TIME_US", "100000")

import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the harnesses (stress/) are not installed
    sys.path.insert(0, str(ROOT))

from stress._privileges import is_root, nobody_exists, python_child, unprivileged_code  # noqa: E402


class Trainee:
    """A tiny trainable state: one weight vector and a step counter."""

    def __init__(self) -> None:
        self.w = tf.Variable(tf.zeros([4]), name="w")
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        self.checkpoint = tf.train.Checkpoint(w=self.w, step=self.step)

    def set(self, value: float) -> None:
        self.w.assign(tf.fill([4], float(value)))
        self.step.assign(int(value))

    @property
    def value(self) -> float:
        return float(self.w.numpy()[0])


@pytest.fixture
def trainee() -> Trainee:
    return Trainee()


def tf_manager_parameters() -> list[inspect.Parameter]:
    """`tf.train.CheckpointManager.__init__`'s parameters as of TF 2.20 (with ``self``).

    TF 2.16-2.19 lack ``last_checkpoint_step`` (added in 2.20); safeckpt takes it on every
    version, in the same place, so it is appended where TF lacks it.
    """
    params = list(inspect.signature(tf.train.CheckpointManager.__init__).parameters.values())
    if "last_checkpoint_step" not in {p.name for p in params}:
        params.append(
            inspect.Parameter(
                "last_checkpoint_step", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None
            )
        )
    return params


def write_checkpoints(directory: Path, count: int, name: str = "ckpt") -> list[str]:
    """Save `count` checkpoints with plain TF; checkpoint k holds the value k."""
    t = Trainee()
    manager = tf.train.CheckpointManager(
        t.checkpoint, str(directory), max_to_keep=None, checkpoint_name=name
    )
    paths = []
    for k in range(1, count + 1):
        t.set(k)
        paths.append(manager.save())
    return paths


@pytest.fixture
def ckpt_dir(tmp_path: Path) -> Path:
    """A directory with three healthy checkpoints ckpt-1..3 holding 1.0, 2.0, 3.0."""
    directory = tmp_path / "run" / "checkpoints"
    write_checkpoints(directory, 3)
    return directory


class RotatedWhileRead(tf.train.Checkpoint):  # type: ignore[misc]
    """A `tf.train.Checkpoint` whose restore lets a trainer save first: another process's
    rotation deleting what is being read, at that exact moment.

    The first `times` restores of a path run `saves` real saves of `trainer` (a plain TF
    manager, ``max_to_keep=2``, value k in ckpt-k) before TensorFlow reads the path.
    """

    def __init__(self, trainer: tf.train.CheckpointManager, saves: int, times: int, **kw: object):
        super().__init__(**kw)
        self._trainer, self._saves, self._times = trainer, saves, times

    def restore(self, save_path: str | None, options: object = None) -> object:
        if save_path is not None and self._times > 0:
            self._times -= 1
            for _ in range(self._saves):
                step = int(self._trainer.checkpoint.save_counter.numpy()) + 1
                self._trainer.checkpoint.v.assign(float(step))
                self._trainer.save()
        return super().restore(save_path, options=options)


def rotating_trainer(directory: Path, saves: int) -> tf.train.CheckpointManager:
    """A plain TF manager (``max_to_keep=2``) that saved ckpt-1..`saves` (value k in ckpt-k)."""
    checkpoint = tf.train.Checkpoint(v=tf.Variable(0.0))
    manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=2)
    for step in range(1, saves + 1):
        checkpoint.v.assign(float(step))
        manager.save()
    return manager


_WRITER = """
import sys
import tensorflow as tf
import safeckpt
v = tf.Variable(7.0)
manager = safeckpt.SafeCheckpointManager(tf.train.Checkpoint(v=v), sys.argv[1], max_to_keep=3)
print(manager.save(), flush=True)
sys.stdin.read()  # hold on until the test is done with this writer
"""


@contextlib.contextmanager
def other_writer(directory: Path) -> Iterator[str]:
    """A separate process that saved into `directory` with safeckpt and is still running.

    Yields the path it saved; the process ends when the block exits.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        saved = proc.stdout.readline().strip()
        assert saved, f"the other writer did not save (exit code {proc.poll()})"
        yield saved
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def chdir_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    return tmp_path


IS_ROOT = is_root()


@pytest.fixture
def unprivileged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A world-accessible scratch directory for code run by `run_unprivileged`.

    Permission checks cannot be tested as root (root bypasses file modes), so tests that
    need them run their scenario in a child process that drops to the user ``nobody``.
    """
    if IS_ROOT and not nobody_exists():
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


def run_unprivileged(code: str, timeout: float = 120, preimport: str = "") -> str:
    """Run Python `code` without root privileges; return its stdout.

    As root, the child imports TensorFlow, safeckpt and `preimport` (Python statements, e.g.
    ``"from stress import fuzz"``) first, and then drops to ``nobody`` before running `code`:
    the interpreter and the checkout may live where ``nobody`` cannot read (a clone in a
    mode-0700 folder). The code should print its results. A non-zero exit fails the calling
    test with the child's stderr.
    """
    proc = python_child(
        ["-c", unprivileged_code(code, preimport)],
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/tmp",
    )
    if proc.returncode != 0:
        pytest.fail(f"unprivileged child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


# --- gs:// against a local GCS server (stress/_gcs.py) ----------------------------------------
#
# TensorFlow's real gs:// client talks to fake-gcs-server through the counting, faulting proxy
# of stress._gcs. The emulator starts once per session (only when a test asks for it); the
# variables that point libcurl at the proxy (https_proxy, CURL_CA_BUNDLE, ...) are set only
# while a test that uses `gcs` or `gcs_dir` runs: libcurl reads them on every request, and
# other tests expect gs:// to be unreachable (no network). The retry settings, which TF reads
# at import, are set at the top of this file. The stat cache keeps TF's default (5 s): each
# test gets a fresh prefix.

from stress import _gcs  # noqa: E402


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[_gcs.GcsEmulator]:
    """The session's GCS emulator and proxy (skipped only when the server binary cannot run)."""
    reason = _gcs.skip_reason()
    if reason is not None:
        pytest.skip(f"gs:// tests need fake-gcs-server: {reason}")
    emulator = _gcs.GcsEmulator()
    emulator.start()  # the binary runs: failing to start is a failure, not a reason to skip
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def gcs(gcs_emulator: _gcs.GcsEmulator) -> Iterator[_gcs.GcsEmulator]:
    """The emulator, with no fault armed, counts reset and TF pointed at it for this test."""
    gcs_emulator.clear_faults()
    previous = _gcs.apply_env(gcs_emulator.env())
    gcs_emulator.reset_counts()
    try:
        yield gcs_emulator
    finally:
        gcs_emulator.clear_faults()
        _gcs.restore_env(previous)


@pytest.fixture
def gcs_dir(gcs: _gcs.GcsEmulator, request: pytest.FixtureRequest) -> str:
    """A fresh ``gs://bucket/<test name>-<n>-<hex>``: nothing exists under it yet."""
    return gcs.new_prefix(request.node.name)


@pytest.fixture
def gcs_child_env(gcs: _gcs.GcsEmulator) -> dict[str, str]:
    """The environment for a child process using the emulator, with TF's stat cache off.

    TF reads ``GCS_STAT_CACHE_MAX_AGE`` once per process, so a run without the 5-second stat
    cache has to be a child process (``subprocess.run(..., env=gcs_child_env)``).
    """
    return {**os.environ, **gcs.env(stat_cache_max_age=0)}
