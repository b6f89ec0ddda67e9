"""Table-driven bad inputs: constructor `directory`, `checkpoint_name`, `restore(save_path)`.

Every row gets its documented result (docs/paths.md): it works, or it raises a typed error
whose message names the argument. After every row the whole sandbox (working directory, a
fake home, real checkpoints, symlinks) is compared with a snapshot taken before: nothing may
appear anywhere except where the row legitimately creates its directory, and nothing may
disappear. In particular there is never a literal ``~``, ``$VAR``, ``gs:`` or ``file:`` folder
in the working directory.

Rows that once failed are regression tests for the bugs they found (see docs/reliability.md).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from safeckpt import (
    Cause,
    CheckpointDirectoryError,
    CheckpointNotFoundError,
    RestoreError,
    SafeCheckpointManager,
)
from testing.checkpoints import Trainee, write_checkpoints

UNSET = "SAFECKPT_TEST_UNSET_VAR"
NON_UTF8 = os.fsdecode(b"runs/\xff\xfe")  # what os.listdir returns for a Latin-1 name


@dataclass
class Sandbox:
    """A temporary world: cwd, home, real checkpoints, symlinks, a file."""

    root: Path
    cwd: Path
    home: Path
    ckpts: Path  # ckpt-1..3 holding 1.0, 2.0, 3.0

    def snapshot(self) -> set[str]:
        """Every path under root (symlinks are listed, never followed)."""
        found: set[str] = set()
        for here, dirs, files in os.walk(self.root, followlinks=False):
            for name in (*dirs, *files):
                found.add(os.path.relpath(os.path.join(here, name), self.root))
        return found


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ckpt-1..3 saved once per module; each sandbox gets a copy (much faster than saving)."""
    directory = tmp_path_factory.mktemp("template") / "checkpoints"
    write_checkpoints(directory, 3)
    return directory


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: Path) -> Sandbox:
    root = tmp_path
    cwd, home = root / "cwd", root / "home"
    cwd.mkdir()
    home.mkdir()
    ckpts = root / "run" / "checkpoints"
    shutil.copytree(template, ckpts)
    (root / "target").mkdir()
    (cwd / "afile").write_text("not a directory\n")
    (cwd / "to_dir").symlink_to(root / "target")
    (cwd / "to_ckpts").symlink_to(ckpts)
    (cwd / "dangling").symlink_to(root / "nowhere")
    (cwd / "loop_a").symlink_to(cwd / "loop_b")
    (cwd / "loop_b").symlink_to(cwd / "loop_a")
    (home / "ckpts").symlink_to(ckpts)
    # A prefix under another name whose files are symlinks to ckpt-2's files.
    links = root / "links"
    links.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        (links / f"renamed-7{suffix}").symlink_to(ckpts / f"ckpt-2{suffix}")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SAFECKPT_TEST_ROOT", str(root))
    monkeypatch.delenv(UNSET, raising=False)
    return Sandbox(root, cwd, home, ckpts)


def assert_no_literal_folders(sandbox: Sandbox) -> None:
    """The mistakes TF would make: a literal ~, $VAR, gs: or file: folder in the cwd."""
    for entry in os.listdir(sandbox.cwd):
        assert not entry.startswith(("~", "$", "gs:", "s3:", "file:", "ram:")), entry


def assert_only_created(sandbox: Sandbox, before: set[str], allowed: Path | None) -> None:
    """Nothing vanished; every new path is `allowed`, one of its ancestors, or inside it.

    `allowed` is resolved first: files saved through a symlink appear at its target.
    """
    after = sandbox.snapshot()
    assert before - after == set(), "paths disappeared"
    allowed_rel = None if allowed is None else os.path.relpath(allowed.resolve(), sandbox.root)
    unexpected = {
        p
        for p in after - before
        if allowed_rel is None
        or not (
            p == allowed_rel
            or allowed_rel.startswith(p + os.sep)
            or p.startswith(allowed_rel + os.sep)
        )
    }
    assert unexpected == set()
    assert_no_literal_folders(sandbox)


# Expected results ------------------------------------------------------------------------

Value = Callable[[Sandbox], object]


@dataclass(frozen=True)
class Works:
    """The input is accepted; `where` is the resulting directory / restored prefix."""

    where: Callable[[Sandbox], str]
    value: float | None = None  # restore rows: the restored w


@dataclass(frozen=True)
class Raises:
    """A typed error whose message contains `text` (which names the argument)."""

    error: type[BaseException]
    text: str


def row(id_: str, value: Value, expect: Works | Raises, *marks: pytest.MarkDecorator) -> object:
    return pytest.param(value, expect, id=id_, marks=marks)


LONG_COMPONENT = "a" * 300  # longer than NAME_MAX (255)


def _long_total(s: Sandbox) -> str:  # longer than PATH_MAX (4096), every component legal
    return str(s.root / "deep" / "/".join(["b" * 200] * 25))


# Constructor `directory` -----------------------------------------------------------------

DIRECTORY_ROWS = [
    row("None", lambda s: None, Raises(TypeError, "directory=None")),
    row("empty", lambda s: "", Raises(CheckpointDirectoryError, "directory='': is empty")),
    row("blank", lambda s: "   ", Raises(CheckpointDirectoryError, "is empty")),
    row("int", lambda s: 42, Raises(TypeError, "directory=42: expected a str")),
    row("float", lambda s: 1.5, Raises(TypeError, "directory=1.5")),
    row("bool", lambda s: True, Raises(TypeError, "got bool")),
    row("bytes", lambda s: b"runs/a", Raises(TypeError, "directory=b'runs/a': bytes paths")),
    row("nul", lambda s: "runs/a\x00b", Raises(CheckpointDirectoryError, "NUL character")),
    row(
        "edge-whitespace",
        lambda s: "runs/a\n",
        Raises(CheckpointDirectoryError, "leading or trailing whitespace"),
    ),
    row("backslash", lambda s: "runs\\a", Raises(CheckpointDirectoryError, "backslashes")),
    row(
        "long-component",
        lambda s: str(s.root / LONG_COMPONENT),
        Raises(CheckpointDirectoryError, "too long"),
    ),
    row(
        "long-total",
        _long_total,
        Raises(CheckpointDirectoryError, "too long"),
    ),
    row(
        "tilde-missing-user",
        lambda s: "~no_such_user_sfx9/ckpts",
        Raises(CheckpointDirectoryError, "no user named 'no_such_user_sfx9'"),
    ),
    row("tilde", lambda s: "~/exp/ckpts", Works(lambda s: str(s.home / "exp" / "ckpts"))),
    row(
        "unset-var",
        lambda s: f"${UNSET}/ckpts",
        Raises(CheckpointDirectoryError, f"${UNSET}, which is not set"),
    ),
    row(
        "unset-var-braces",
        lambda s: f"${{{UNSET}}}/ckpts",
        Raises(CheckpointDirectoryError, f"${UNSET}, which is not set"),
    ),
    row(
        "set-var",
        lambda s: "$SAFECKPT_TEST_ROOT/from_var",
        Works(lambda s: str(s.root / "from_var")),
    ),
    row("relative", lambda s: "runs/a", Works(lambda s: str(s.cwd / "runs" / "a"))),
    row(
        "relative-dotdot-inside",
        lambda s: "./runs/../runs/./b/",
        Works(lambda s: str(s.cwd / "runs" / "b")),
    ),
    row(
        "relative-dotdot-outside",
        lambda s: "../outside/ckpts",
        Works(lambda s: str(s.root / "outside" / "ckpts")),
    ),
    row("dot", lambda s: ".", Works(lambda s: str(s.cwd))),
    row("pathlib", lambda s: Path("runs") / "p", Works(lambda s: str(s.cwd / "runs" / "p"))),
    row("unicode", lambda s: "runs/modèle-日本", Works(lambda s: str(s.cwd / "runs/modèle-日本"))),
    row("symlink-to-dir", lambda s: "to_dir", Works(lambda s: str(s.cwd / "to_dir"))),
    row(
        "symlink-to-dir-sub",
        lambda s: "to_dir/sub",
        Works(lambda s: str(s.cwd / "to_dir" / "sub")),
    ),
    row("symlink-dangling", lambda s: "dangling", Raises(CheckpointDirectoryError, "dangling")),
    row("symlink-loop", lambda s: "loop_a", Raises(CheckpointDirectoryError, "loop_a")),
    row(
        "symlink-loop-sub",
        lambda s: "loop_a/sub",
        Raises(CheckpointDirectoryError, "loop_a/sub"),
    ),
    row(
        "a-file",
        lambda s: "afile",
        Raises(CheckpointDirectoryError, "is a file, not a directory"),
    ),
    row(
        "below-a-file",
        lambda s: "afile/sub",
        Raises(CheckpointDirectoryError, "afile/sub"),
    ),
    row(
        "a-checkpoint-file",
        lambda s: str(s.ckpts / "ckpt-2.index"),
        Raises(CheckpointDirectoryError, "checkpoint file of the prefix"),
    ),
    row(
        "the-state-file",
        lambda s: str(s.ckpts / "checkpoint"),
        Raises(CheckpointDirectoryError, "state file"),
    ),
    row(
        "file-uri",
        lambda s: f"file://{s.root}/via_uri/",
        Works(lambda s: f"file://{s.root}/via_uri"),
    ),
    row(
        "file-uri-with-host",
        lambda s: "file://relative",
        Raises(CheckpointDirectoryError, "file://relative"),
    ),
    row(
        "unknown-scheme",
        lambda s: "foo://bucket/x",
        Raises(CheckpointDirectoryError, "'foo://', which this TensorFlow cannot"),
    ),
    row(
        "plugin-scheme",
        lambda s: "hdfs://namenode/x",
        Raises(CheckpointDirectoryError, "until a plugin registers one"),
    ),
    row("scheme-typo", lambda s: "gcs://b/x", Raises(CheckpointDirectoryError, "'gs://b/x'")),
    row(
        "one-slash",
        lambda s: "gs:/bucket/run",
        Raises(CheckpointDirectoryError, "directory='gs://bucket/run'"),
    ),
    row(
        "no-slash",
        lambda s: "gs:bucket/run",
        Raises(CheckpointDirectoryError, "gs://bucket/run"),
    ),
    row("ram-no-location", lambda s: "ram://", Raises(CheckpointDirectoryError, "no location")),
    row(
        "ram-backslash",
        lambda s: "ram://safeckpt-bad-inputs/a\\b",
        Raises(CheckpointDirectoryError, "ram://safeckpt-bad-inputs/a"),
    ),
    row("glob-brackets", lambda s: "runs/[1]", Raises(CheckpointDirectoryError, "glob")),
    row("glob-star", lambda s: "runs/*", Raises(CheckpointDirectoryError, "glob")),
    row("glob-question", lambda s: "runs/a?", Raises(CheckpointDirectoryError, "glob")),
    row("non-utf8", lambda s: NON_UTF8, Raises(CheckpointDirectoryError, "directory=")),
]


def spelled(value: object) -> str:
    """`manager.directory` by the documented rule (docs/paths.md): the string TensorFlow's
    manager returns, with ``$VAR`` and ``~`` expanded and a relative path joined to the cwd."""
    text = os.fspath(value)
    if "://" in text:
        return str(text)
    return os.path.join(os.getcwd(), os.path.expanduser(os.path.expandvars(text)))


def _roundtrip(value: object, directory: str, checkpoint_name: str = "ckpt") -> None:
    """Save twice with max_to_keep=1; a new manager must restore the second save."""
    trainee = Trainee()
    manager = SafeCheckpointManager(
        trainee.checkpoint, value, max_to_keep=1, checkpoint_name=checkpoint_name
    )
    assert manager.directory == spelled(value)
    if "://" not in directory:  # the same directory, spelled as given
        assert os.path.normpath(manager.directory) == directory
    trainee.set(1)
    manager.save()
    trainee.set(2)
    second = manager.save()
    assert manager.checkpoints == [second]
    again = Trainee()
    report = SafeCheckpointManager(
        again.checkpoint, value, max_to_keep=1, checkpoint_name=checkpoint_name
    ).restore()
    assert report.save_path == second
    assert again.value == 2.0


def _local(path: str) -> Path:
    return Path(path[len("file://") :] if path.startswith("file://") else path)


@pytest.mark.parametrize(("value", "expect"), DIRECTORY_ROWS)
def test_directory_inputs(sandbox: Sandbox, value: Value, expect: Works | Raises) -> None:
    given = value(sandbox)
    before = sandbox.snapshot()
    if isinstance(expect, Works):
        directory = expect.where(sandbox)
        _roundtrip(given, directory)
        assert_only_created(sandbox, before, _local(directory))
        # The checkpoints really are where `directory` says (through symlinks too).
        assert (_local(directory) / "ckpt-2.index").is_file()
    else:
        with pytest.raises(expect.error) as info:
            SafeCheckpointManager(Trainee().checkpoint, given, max_to_keep=1)
        assert expect.text in str(info.value)
        assert_only_created(sandbox, before, None)


# Constructor `checkpoint_name` -----------------------------------------------------------

NAME_ROWS = [
    row("None", lambda s: None, Raises(TypeError, "checkpoint_name=None")),
    row("int", lambda s: 3, Raises(TypeError, "checkpoint_name=3")),
    row("bytes", lambda s: b"ckpt", Raises(TypeError, "checkpoint_name=b'ckpt'")),
    row("empty", lambda s: "", Raises(ValueError, "checkpoint_name='': is empty")),
    row("slash", lambda s: "sub/ckpt", Raises(ValueError, "checkpoint_name='sub/ckpt'")),
    row("absolute", lambda s: "/tmp/ckpt", Raises(ValueError, "path separator")),
    row("nul", lambda s: "ck\x00pt", Raises(ValueError, "checkpoint_name='ck\\x00pt'")),
    row("edge-whitespace", lambda s: "ckpt ", Raises(ValueError, "whitespace")),
    row("glob", lambda s: "ckpt-[0]", Raises(ValueError, "checkpoint_name='ckpt-[0]'")),
    row("glob-star", lambda s: "ck*", Raises(ValueError, "glob metacharacters")),
    row(
        "backslash",
        lambda s: "a\\b",
        Raises(ValueError, "checkpoint_name='a\\\\b'"),
    ),
    row(
        "too-long",
        lambda s: "c" * 300,
        Raises(ValueError, "checkpoint_name="),
    ),
    row(
        "non-utf8",
        lambda s: os.fsdecode(b"ckpt\xff"),
        Raises(ValueError, "checkpoint_name="),
    ),
    row("tilde", lambda s: "~", Works(lambda s: "~")),
    row("dollar", lambda s: "$HOME", Works(lambda s: "$HOME")),
    row("dotdot", lambda s: "..", Works(lambda s: "..")),
    row("gs-colon", lambda s: "gs:model", Works(lambda s: "gs:model")),
    row("unicode", lambda s: "modèle-日本", Works(lambda s: "modèle-日本")),
    row("checkpoint", lambda s: "checkpoint", Works(lambda s: "checkpoint")),
]


@pytest.mark.parametrize(("value", "expect"), NAME_ROWS)
def test_checkpoint_name_inputs(sandbox: Sandbox, value: Value, expect: Works | Raises) -> None:
    given = value(sandbox)
    directory = sandbox.root / "named"
    before = sandbox.snapshot()
    if isinstance(expect, Works):
        assert isinstance(given, str)
        _roundtrip(directory, str(directory), checkpoint_name=given)
        # The name is a file name inside `directory`: never expanded, never a folder.
        assert (directory / f"{given}-2.index").is_file()
        assert not (directory / f"{given}-1.index").exists()
        assert_only_created(sandbox, before, directory)
    else:
        with pytest.raises(expect.error) as info:
            SafeCheckpointManager(
                Trainee().checkpoint, directory, max_to_keep=1, checkpoint_name=given
            )
        assert expect.text in str(info.value)
        assert_only_created(sandbox, before, None)


# restore(save_path=...) ------------------------------------------------------------------

RESTORE_ROWS = [
    row("None", lambda s: None, Works(lambda s: str(s.ckpts / "ckpt-3"), 3.0)),
    row("empty", lambda s: "", Raises(CheckpointDirectoryError, "save_path='': is empty")),
    row("blank", lambda s: " ", Raises(CheckpointDirectoryError, "save_path=' '")),
    row("int", lambda s: 2, Raises(TypeError, "save_path=2: expected a str")),
    row("bytes", lambda s: b"ckpt-2", Raises(TypeError, "save_path=b'ckpt-2': bytes")),
    row(
        "nul",
        lambda s: str(s.ckpts / "ckpt-2") + "\x00",
        Raises(CheckpointDirectoryError, "NUL character"),
    ),
    row(
        "long-component",
        lambda s: str(s.ckpts / LONG_COMPONENT),
        Raises(CheckpointNotFoundError, LONG_COMPONENT),
    ),
    row("long-total", _long_total, Raises(CheckpointNotFoundError, "Cannot restore")),
    row(
        "tilde-missing-user",
        lambda s: "~no_such_user_sfx9/ckpt-2",
        Raises(CheckpointDirectoryError, "save_path='~no_such_user_sfx9/ckpt-2'"),
    ),
    row("tilde", lambda s: "~/ckpts/ckpt-2", Works(lambda s: str(s.home / "ckpts/ckpt-2"), 2.0)),
    row(
        "unset-var",
        lambda s: f"${UNSET}/ckpt-2",
        Raises(CheckpointDirectoryError, f"${UNSET}, which is not set"),
    ),
    row(
        "set-var",
        lambda s: "$SAFECKPT_TEST_ROOT/run/checkpoints/ckpt-1",
        Works(lambda s: str(s.ckpts / "ckpt-1"), 1.0),
    ),
    row(
        "relative-dotdot",
        lambda s: "../run/checkpoints/../checkpoints/ckpt-1",
        Works(lambda s: str(s.ckpts / "ckpt-1"), 1.0),
    ),
    row(
        "relative-wrong-cwd",
        lambda s: "ckpt-2",
        Raises(CheckpointNotFoundError, "ckpt-2"),
    ),
    row("the-directory", lambda s: s.ckpts, Works(lambda s: str(s.ckpts / "ckpt-3"), 3.0)),
    row(
        "the-state-file",
        lambda s: s.ckpts / "checkpoint",
        Works(lambda s: str(s.ckpts / "ckpt-3"), 3.0),
    ),
    row(
        "an-index-file",
        lambda s: s.ckpts / "ckpt-2.index",
        Works(lambda s: str(s.ckpts / "ckpt-2"), 2.0),
    ),
    row(
        "a-data-file",
        lambda s: s.ckpts / "ckpt-1.data-00000-of-00001",
        Works(lambda s: str(s.ckpts / "ckpt-1"), 1.0),
    ),
    row(
        "symlink-to-dir",
        lambda s: "to_ckpts",
        Works(lambda s: str(s.cwd / "to_ckpts" / "ckpt-3"), 3.0),
    ),
    row(
        "symlinked-prefix",
        lambda s: s.root / "links" / "renamed-7",
        Works(lambda s: str(s.root / "links" / "renamed-7"), 2.0),
    ),
    row("symlink-dangling", lambda s: "dangling", Raises(CheckpointNotFoundError, "dangling")),
    row("symlink-loop", lambda s: "loop_a", Raises(RestoreError, "loop_a")),
    row("symlink-loop-sub", lambda s: "loop_a/ckpt-1", Raises(RestoreError, "loop_a/ckpt-1")),
    row(
        "a-file",
        lambda s: "afile",
        Raises(RestoreError, "afile is not a TensorFlow checkpoint"),
    ),
    row("below-a-file", lambda s: "afile/ckpt-1", Raises(CheckpointNotFoundError, "afile/ckpt-1")),
    row(
        "missing-step",
        lambda s: s.ckpts / "ckpt-9",
        Raises(CheckpointNotFoundError, "step 9 does not exist"),
    ),
    row(
        "file-uri",
        lambda s: f"file://{s.ckpts}/ckpt-2",
        Works(lambda s: f"file://{s.ckpts}/ckpt-2", 2.0),
    ),
    row(
        "unknown-scheme",
        lambda s: "foo://x/ckpt-1",
        Raises(CheckpointDirectoryError, "save_path='foo://x/ckpt-1'"),
    ),
    row(
        "one-slash",
        lambda s: "gs:/bucket/ckpt-1",
        Raises(CheckpointDirectoryError, "save_path='gs://bucket/ckpt-1'"),
    ),
    row(
        "glob",
        lambda s: str(s.ckpts / "ckpt-[12]"),
        Raises(CheckpointDirectoryError, "glob metacharacters"),
    ),
    row(
        "glob-star",
        lambda s: str(s.ckpts / "ckpt-*"),
        Raises(CheckpointDirectoryError, "glob metacharacters"),
    ),
    row(
        "backslash",
        lambda s: "..\\run\\checkpoints\\ckpt-2",
        Raises(CheckpointDirectoryError, "backslashes"),
    ),
    row(
        "non-utf8",
        lambda s: os.fsdecode(b"/tmp/\xff/ckpt-1"),
        Raises(CheckpointDirectoryError, "save_path="),
    ),
]


@pytest.mark.parametrize(("value", "expect"), RESTORE_ROWS)
def test_restore_save_path_inputs(sandbox: Sandbox, value: Value, expect: Works | Raises) -> None:
    trainee = Trainee()
    manager = SafeCheckpointManager(trainee.checkpoint, sandbox.ckpts, max_to_keep=5)
    trainee.set(42)
    given = value(sandbox)
    before = sandbox.snapshot()
    if isinstance(expect, Works):
        report = manager.restore(given)
        assert report.save_path == expect.where(sandbox)
        assert trainee.value == expect.value
    else:
        with pytest.raises(expect.error) as info:
            manager.restore(given)
        assert expect.text in str(info.value)
        assert trainee.value == 42.0, "a failed explicit restore changed the variables"
        if isinstance(info.value, RestoreError):
            assert info.value.diagnosis is not None
    assert_only_created(sandbox, before, None)
    # The manager is still usable after any of these.
    assert manager.restore().save_path == str(sandbox.ckpts / "ckpt-3")


# Errors that are typed but name the wrong cause ------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(
            "dangling",
            id="symlink-dangling",
        ),
        pytest.param(
            "loop_a",
            id="symlink-loop",
        ),
        pytest.param(
            "afile/sub",
            id="below-a-file",
        ),
        pytest.param(
            "$SAFECKPT_TEST_ROOT/" + LONG_COMPONENT,
            id="long-component",
        ),
        pytest.param(
            "file://relative",
            id="file-uri-with-host",
        ),
        pytest.param(
            NON_UTF8,
            id="non-utf8",
        ),
    ],
)
def test_directory_errors_name_the_real_cause(sandbox: Sandbox, value: str) -> None:
    with pytest.raises(CheckpointDirectoryError) as info:
        SafeCheckpointManager(Trainee().checkpoint, value, max_to_keep=1)
    diagnosis = info.value.diagnosis
    assert diagnosis is not None
    assert diagnosis.cause not in (Cause.PERMISSION_DENIED, Cause.STORAGE_UNAVAILABLE)
    assert "network" not in str(info.value)
    assert "right owner" not in str(info.value)


def test_read_only_never_creates_anything(sandbox: Sandbox) -> None:
    before = sandbox.snapshot()
    for value in ("runs/ro", "~/ro", "to_dir/ro", f"file://{sandbox.root}/ro"):
        with pytest.raises(CheckpointDirectoryError, match="does not exist"):
            SafeCheckpointManager(Trainee().checkpoint, value, max_to_keep=1, read_only=True)
    assert_only_created(sandbox, before, None)
