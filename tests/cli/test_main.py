"""The command line (safeckpt/_cli/main.py): exit codes, text and JSON round trips."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from safeckpt import Diagnosis
from safeckpt._cli.main import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_doctor_healthy(ckpt_dir: Path) -> None:
    code, out, _ = run("doctor", str(ckpt_dir))
    assert code == 0
    assert "[healthy]" in out
    assert "ckpt-3" in out


def test_doctor_problem_exit_1_and_json_round_trip(ckpt_dir: Path) -> None:
    (ckpt_dir / "checkpoint").unlink()
    code, out, _ = run("doctor", str(ckpt_dir), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["cause"] == "state_file_missing"
    assert Diagnosis.from_dict(data).to_dict() == data


def test_doctor_deep_finds_bit_flip(ckpt_dir: Path) -> None:
    shard = ckpt_dir / "ckpt-3.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[2] ^= 0x01
    shard.write_bytes(bytes(data))
    assert run("doctor", str(ckpt_dir))[0] == 0
    code, out, _ = run("doctor", str(ckpt_dir), "--deep")
    assert code == 1
    assert "[corrupt_data]" in out


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run()[0] == 2
    assert run("frobnicate")[0] == 2
    assert run("doctor")[0] == 2
    code, _, err = run("ls", "gs:/bucket")
    assert code == 2
    assert "gs://bucket" in err


def test_ls_text_and_json(ckpt_dir: Path) -> None:
    (ckpt_dir / "ckpt-3.index").unlink()
    code, out, _ = run("ls", str(ckpt_dir))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{ckpt_dir}: 3 checkpoints"
    assert lines[1].split() == ["STEP", "PREFIX", "SIZE", "WRITTEN", "STATE", "STATUS"]
    assert lines[2].split()[0:2] == ["1", "ckpt-1"]
    assert lines[4].split()[-1] == "missing_index"
    code, out, _ = run("ls", str(ckpt_dir), "--json")
    data = json.loads(out)
    assert [c["step"] for c in data["checkpoints"]] == [1, 2, 3]
    assert data["checkpoints"][2]["problems"] == ["missing_index"]
    assert data["state_file"]["latest"] == "ckpt-3"


def test_verify_directory_and_prefix(ckpt_dir: Path) -> None:
    code, out, _ = run("verify", str(ckpt_dir), "--deep")
    assert code == 0
    assert out.count("OK ") == 3
    with open(ckpt_dir / "ckpt-2.data-00000-of-00001", "r+b") as handle:
        handle.truncate(5)
    code, out, _ = run("verify", str(ckpt_dir), "--json")
    assert code == 1
    results = json.loads(out)
    assert [r["cause"] for r in results] == ["healthy", "truncated_data", "healthy"]
    code, out, _ = run("verify", str(ckpt_dir / "ckpt-3"))
    assert code == 0
    assert out.startswith("OK ")


def test_repair_dry_run_then_real(ckpt_dir: Path) -> None:
    (ckpt_dir / "checkpoint").write_text("garbage garbage")
    with open(ckpt_dir / "ckpt-3.data-00000-of-00001", "r+b") as handle:
        handle.truncate(5)
    before = sorted(p.name for p in ckpt_dir.iterdir())
    code, out, _ = run("repair", str(ckpt_dir), "--dry-run")
    assert code == 0
    assert "dry run" in out
    assert (ckpt_dir / "checkpoint").read_text() == "garbage garbage"
    code, out, _ = run("repair", str(ckpt_dir))
    assert code == 0
    assert f"left out {ckpt_dir / 'ckpt-3'}" in out
    state = (ckpt_dir / "checkpoint").read_text()
    assert 'model_checkpoint_path: "ckpt-2"' in state
    assert 'all_model_checkpoint_paths: "ckpt-1"' in state
    backups = [p for p in ckpt_dir.iterdir() if p.name.startswith("checkpoint.bak-")]
    assert len(backups) == 1
    assert backups[0].read_text() == "garbage garbage"
    after = sorted(p.name for p in ckpt_dir.iterdir() if not p.name.startswith("checkpoint"))
    assert after == [n for n in before if not n.startswith("checkpoint")]
    code, out, _ = run("repair", str(ckpt_dir))
    assert code == 0
    assert "already lists exactly" in out


def test_repair_nothing_valid(tmp_path: Path) -> None:
    code, out, _ = run("repair", str(tmp_path))
    assert code == 1
    assert "nothing written" in out


def test_python_dash_m(ckpt_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "safeckpt", "doctor", str(ckpt_dir), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cause"] == "healthy"


def test_ls_status_comes_from_a_quick_verification(ckpt_dir: Path) -> None:
    with open(ckpt_dir / "ckpt-3.data-00000-of-00001", "r+b") as handle:
        handle.truncate(5)  # all files present: only verification can tell
    code, out, _ = run("ls", str(ckpt_dir))
    assert code == 0
    assert out.splitlines()[4].split()[-1] == "truncated_data"
    assert out.splitlines()[3].split()[-1] == "ok"
    code, out, _ = run("ls", "--json", str(ckpt_dir))
    statuses = [c["status"] for c in json.loads(out)["checkpoints"]]
    assert statuses == ["ok", "ok", "truncated_data"]


def test_inspect_and_diff(tmp_path: Path) -> None:
    import json as _json

    import tensorflow as _tf

    a = tmp_path / "a"
    b = tmp_path / "b"
    _tf.train.Checkpoint(w=_tf.Variable(_tf.zeros([4])), step=_tf.Variable(1)).write(
        str(a / "ckpt-1")
    )
    _tf.train.Checkpoint(w=_tf.Variable(_tf.zeros([5])), lr=_tf.Variable(0.1)).write(
        str(b / "ckpt-1")
    )
    out = io.StringIO()
    assert main(["inspect", str(a / "ckpt-1")], stdout=out) == 0
    text = out.getvalue()
    assert "  w     4 float32, 16 B" in text and "step" in text and "2 values" in text
    out = io.StringIO()
    assert main(["inspect", str(a / "ckpt-1.index"), "--json"], stdout=out) == 0
    data = _json.loads(out.getvalue())
    assert {e["path"]: e["shape"] for e in data["entries"]} == {"w": [4], "step": []}
    out = io.StringIO()
    assert main(["diff", str(a / "ckpt-1"), str(b / "ckpt-1"), "--json"], stdout=out) == 1
    data = _json.loads(out.getvalue())
    assert data["only_in_a"] == ["step"] and data["only_in_b"] == ["lr"]
    assert data["changed"] == [
        {
            "path": "w",
            "a": {"shape": [4], "dtype": "float32"},
            "b": {"shape": [5], "dtype": "float32"},
        }
    ]
    assert main(["diff", str(a / "ckpt-1"), str(a / "ckpt-1")], stdout=io.StringIO()) == 0
    err = io.StringIO()
    assert main(["inspect", str(tmp_path / "nope")], stdout=io.StringIO(), stderr=err) == 1
    assert "not a checkpoint" in err.getvalue()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import safeckpt

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"safeckpt {safeckpt.__version__}"


def _strict(text: str) -> object:
    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_json_output_is_strict_json_even_for_non_finite_timestamps(ckpt_dir: Path) -> None:
    # Timestamps like 1e999 (inf) and nan in the state file once printed Infinity / NaN.
    (ckpt_dir / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-3"\n'
        + "".join(f'all_model_checkpoint_paths: "ckpt-{k}"\n' for k in (1, 2, 3))
        + "all_model_checkpoint_timestamps: 1e999\n" * 2
        + "all_model_checkpoint_timestamps: nan\n"
        + "last_preserved_timestamp: -1e999\n"
    )
    for argv in (
        ("repair", "--dry-run", "--json"),
        ("repair", "--json"),
        ("doctor", "--json"),
        ("ls", "--json"),
        ("verify", "--json"),
    ):
        code, out, err = run(argv[0], str(ckpt_dir), *argv[1:])
        assert code in (0, 1), err
        _strict(out)
    code, out, _ = run("inspect", "--json", str(ckpt_dir / "ckpt-3"))
    assert code == 0
    _strict(out)
    state = (ckpt_dir / "checkpoint").read_text()  # repaired: times of the files instead
    assert "inf" not in state and "nan" not in state


def test_verify_of_a_directory_lists_it_once_whatever_it_holds(
    ckpt_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 60 index-less data files (and junk): each was diagnosed with a listing of its own, and
    # 5,000 junk files with 500 such files took seconds (the hostile-input harness).
    data = (ckpt_dir / "ckpt-1.data-00000-of-00001").read_bytes()
    for step in range(100, 160):
        (ckpt_dir / f"ckpt-{step}.data-00000-of-00001").write_bytes(data)
        (ckpt_dir / f"junk-{step}.txt").write_text("x")
    import os

    import tensorflow as tf

    listings: list[str] = []
    for owner, name in ((os, "scandir"), (tf.io.gfile, "listdir")):
        real = getattr(owner, name)

        def counting(path: object, *args: object, _real: object = real) -> object:
            listings.append(str(path))
            return _real(path, *args)  # type: ignore[operator]

        monkeypatch.setattr(owner, name, counting)
    code, out, _ = run("verify", str(ckpt_dir), "--json")
    monkeypatch.undo()
    results = json.loads(out)
    assert code == 1
    assert [r["cause"] for r in results].count("missing_index") == 60
    assert sum(r["cause"] == "healthy" for r in results) == 3
    assert listings.count(str(ckpt_dir)) <= 2, len(listings)
    suggestion = next(r for r in results if r["cause"] == "missing_index")["suggestions"]
    assert any(str(ckpt_dir / "ckpt-3") in s for s in suggestion)
