"""Directory and checkpoint_name normalization rules (safeckpt/_io/paths.py)."""

from __future__ import annotations

import os
import pathlib
from pathlib import Path

import pytest
import tensorflow as tf

from safeckpt import Cause, CheckpointDirectoryError
from safeckpt._io.fs import basename, dirname, join, scheme_of
from safeckpt._io.paths import mark, normalize_checkpoint_name, normalize_directory


def test_relative_path_becomes_absolute(chdir_tmp: Path) -> None:
    assert normalize_directory("runs/a") == str(chdir_tmp / "runs" / "a")
    assert normalize_directory("./runs/../runs/a/") == str(chdir_tmp / "runs" / "a")


def test_pathlike_is_accepted(tmp_path: Path) -> None:
    assert normalize_directory(tmp_path / "x") == str(tmp_path / "x")
    assert normalize_directory(pathlib.PurePosixPath(str(tmp_path), "y")) == str(tmp_path / "y")


def test_tilde_expands_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert normalize_directory("~/exp1/ckpts") == str(tmp_path / "exp1" / "ckpts")


def test_missing_user_is_rejected() -> None:
    with pytest.raises(CheckpointDirectoryError, match="no user named 'no_such_user_x9'"):
        normalize_directory("~no_such_user_x9/ckpts")


@pytest.mark.parametrize("form", ["$CKPT_ROOT/run", "${CKPT_ROOT}/run"])
def test_set_variables_expand(form: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CKPT_ROOT", str(tmp_path))
    assert normalize_directory(form) == str(tmp_path / "run")


@pytest.mark.parametrize("form", ["$UNSET_SAFECKPT_VAR/run", "${UNSET_SAFECKPT_VAR}/run"])
def test_unset_variable_is_named(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_SAFECKPT_VAR", raising=False)
    with pytest.raises(CheckpointDirectoryError, match=r"\$UNSET_SAFECKPT_VAR, which is not set"):
        normalize_directory(form)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs://bucket/run1/ckpts/", "gs://bucket/run1/ckpts"),
        ("gs://bucket/run1", "gs://bucket/run1"),
        ("ram://ckpts//", "ram://ckpts"),
        ("file:///tmp/x/", "file:///tmp/x"),
    ],
)
def test_uris_are_left_intact(uri: str, expected: str) -> None:
    assert normalize_directory(uri) == expected


@pytest.mark.parametrize(
    ("typo", "fix"),
    [
        ("gs:/bucket/run", "gs://bucket/run"),
        ("s3:/bucket/run", "s3://bucket/run"),
        ("gcs://bucket/run", "gs://bucket/run"),
        ("s3a://bucket/run", "s3://bucket/run"),
    ],
)
def test_near_miss_schemes_are_rejected_with_the_fix(typo: str, fix: str) -> None:
    with pytest.raises(CheckpointDirectoryError) as info:
        normalize_directory(typo)
    assert repr(fix) in str(info.value)
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.UNSUPPORTED_SCHEME


def test_unregistered_scheme_names_the_plugin() -> None:
    with pytest.raises(CheckpointDirectoryError) as info:
        normalize_directory("s3://bucket/run")
    text = str(info.value)
    assert "tensorflow-io" in text
    if tuple(int(p) for p in tf.__version__.split(".")[:2]) <= (2, 16):
        assert "pip install tensorflow-io==0.37.1" in text and "import tensorflow_io" in text
    else:  # no tensorflow-io release loads in TF >= 2.17: say so instead of a broken recipe
        assert "no tensorflow-io release loads" in text and "pip install" not in text
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.UNSUPPORTED_SCHEME


def test_unknown_scheme_is_rejected() -> None:
    with pytest.raises(CheckpointDirectoryError, match="'nosuchfs://'"):
        normalize_directory("nosuchfs://x/y")


@pytest.mark.parametrize("name", ["run[lr=0.1]", "seed*3", "what?", "a]b"])
def test_glob_metacharacters_are_rejected(name: str, tmp_path: Path) -> None:
    with pytest.raises(CheckpointDirectoryError, match="glob metacharacters") as info:
        normalize_directory(tmp_path / name)
    assert info.value.diagnosis is not None
    assert info.value.diagnosis.cause is Cause.GLOB_METACHARACTERS
    assert "^" in str(info.value)


def test_glob_metacharacters_in_uri_are_rejected() -> None:
    with pytest.raises(CheckpointDirectoryError, match="glob"):
        normalize_directory("ram://runs/[1]")


def test_backslashes_are_marked() -> None:
    with pytest.raises(CheckpointDirectoryError) as info:
        normalize_directory("training\\ckpts")
    text = str(info.value)
    assert "backslashes" in text
    assert "'training/ckpts'" in text
    caret_line = text.splitlines()[2]
    assert caret_line.strip() == "^"


@pytest.mark.parametrize("value", [" /tmp/x", "/tmp/x ", "/tmp/x\n", "\t/tmp/x"])
def test_edge_whitespace_is_rejected(value: str) -> None:
    with pytest.raises(CheckpointDirectoryError, match="whitespace") as info:
        normalize_directory(value)
    assert repr(value.strip()) in str(info.value)


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_is_rejected(value: str) -> None:
    with pytest.raises(CheckpointDirectoryError, match="empty"):
        normalize_directory(value)


def test_nul_is_rejected() -> None:
    with pytest.raises(CheckpointDirectoryError, match="NUL"):
        normalize_directory("/tmp/a\x00b")


@pytest.mark.parametrize("value", [None, 3, 2.5, ["a"]])
def test_wrong_types_raise_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="directory=.*expected a str or os.PathLike"):
        normalize_directory(value)


def test_bytes_raise_type_error_with_the_fix() -> None:
    with pytest.raises(TypeError, match="os.fsdecode"):
        normalize_directory(b"/tmp/x")


def test_directory_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="directory="):
        normalize_directory("gs:/bucket")


@pytest.mark.parametrize("name", ["ckpt", "model.ckpt", "my-model_v2"])
def test_good_checkpoint_names(name: str) -> None:
    assert normalize_checkpoint_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("sub/ckpt", "path separator"),
        (" ckpt", "whitespace"),
        ("ck[1]", "glob"),
        ("ck*", "glob"),
    ],
)
def test_bad_checkpoint_names(name: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        normalize_checkpoint_name(name)
    assert f"checkpoint_name={name!r}" in str(info.value)


def test_checkpoint_name_type() -> None:
    with pytest.raises(TypeError, match="checkpoint_name=3"):
        normalize_checkpoint_name(3)


def test_uri_helpers() -> None:
    assert scheme_of("gs://b/x") == "gs"
    assert scheme_of("/gs://b") is None
    assert scheme_of("relative/path") is None
    assert join("gs://b/x/", "ckpt-1") == "gs://b/x/ckpt-1"
    assert join("/a/b", "ckpt-1") == os.path.join("/a/b", "ckpt-1")
    assert dirname("gs://b/x/y") == "gs://b/x"
    assert basename("gs://b/x/y/") == "y"


def test_mark_points_at_positions() -> None:
    text = mark("ab\\c", [2])
    first, second = text.splitlines()
    assert first.strip() == repr("ab\\c")
    assert first.index(repr("ab\\c")) + len(repr("ab")) - 1 == second.index("^")
