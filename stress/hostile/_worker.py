"""The long-lived child that calls safeckpt: ``python -m stress.hostile._worker --fd N``.

Importing TensorFlow costs seconds, so one worker runs many cases. It receives requests
over a private pipe (`multiprocessing.connection.Connection` on an inherited descriptor),
runs one entry point per request and answers with plain facts: the exception's class chain,
the CLI's exit code and output, the diagnosis cause, the CPU seconds. It judges nothing:
the parent (`stress.hostile._oracle`) does, and also watches the clock and the memory, and
kills and replaces a worker that hangs or dies.

At start it builds the pristine checkpoints if asked (with plain TensorFlow), warms up every
entry point once on a copy (so that lazy initialization is not counted as a case's memory),
then drops to the unprivileged user with ``--unprivileged``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Another checkout's safeckpt under test (``--code``): first on the path, before the import.
if os.environ.get("HOSTILE_SAFECKPT"):
    sys.path.insert(0, os.environ["HOSTILE_SAFECKPT"])

import absl.logging
import numpy as np
import tensorflow as tf

import safeckpt
from safeckpt._cli import main as cli
from stress.hostile._case import DATA, INDEX, NAME, STATE, STEPS, ckpt_time
from stress.hostile._entries import ENTRIES, argv_for
from testing.privileges import drop_privileges

#: Output kept per call (the rest is only counted).
OUTPUT_CAP = 1 << 20


# ------------------------------------------------------------------------------------------
# The model: checkpoint k holds values derived from k.


class Inner(tf.Module):  # type: ignore[misc]
    def __init__(self, k: int) -> None:
        super().__init__()
        self.kernel = tf.Variable(np.full((3, 2), float(k), np.float32))
        self.bias = tf.Variable(np.array([k, -k], np.float32))


class Model(tf.Module):  # type: ignore[misc]
    """Nested modules, a scalar and a vector string variable, an int64 step."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.w = tf.Variable(np.full((4,), float(k), np.float32))
        self.step = tf.Variable(np.int64(k))
        self.tag = tf.Variable(f"run-a/step-{k:03d}".encode(), dtype=tf.string)
        self.names = tf.Variable([b"alpha", f"k{k}".encode(), b""], dtype=tf.string)
        self.inner = Inner(k)

    def assign(self, k: int) -> None:
        self.w.assign(np.full((4,), float(k), np.float32))
        self.step.assign(np.int64(k))
        self.tag.assign(f"run-a/step-{k:03d}".encode())
        self.names.assign([b"alpha", f"k{k}".encode(), b""])
        self.inner.kernel.assign(np.full((3, 2), float(k), np.float32))
        self.inner.bias.assign(np.array([k, -k], np.float32))


def build_pristine(directory: str) -> None:
    """``ckpt-1`` .. ``ckpt-3`` written by plain TensorFlow, and a deterministic state file."""
    tmp = directory + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    model = Model(0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), tmp, None)
    for k in STEPS:
        model.assign(k)
        manager.save()
    # TF's state file holds the wall-clock time; write the same content with fixed times
    # so that every run (and every replay) starts from the same bytes.
    lines = [f'model_checkpoint_path: "{NAME}-{STEPS[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{NAME}-{k}"' for k in STEPS]
    lines += [f"all_model_checkpoint_timestamps: {ckpt_time(k):.1f}" for k in STEPS]
    lines.append(f"last_preserved_timestamp: {ckpt_time(0):.1f}")
    with open(os.path.join(tmp, STATE), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    for k in STEPS:
        for suffix in (INDEX, DATA):
            os.utime(os.path.join(tmp, f"{NAME}-{k}{suffix}"), (ckpt_time(k),) * 2)
    os.rename(tmp, directory)


# ------------------------------------------------------------------------------------------
# Entry points


class Call:
    """What one call observed (sent to the parent as a dict)."""

    def __init__(self) -> None:
        self.facts: dict[str, Any] = {}
        self.output = ""  # stdout of the CLI, or a library result's to_json()
        self.output_len = 0
        self.stderr = ""
        self.exit: int | None = None

    def keep_output(self, text: str) -> None:
        self.output_len = len(text)
        self.output = text[:OUTPUT_CAP]

    def note_diagnosis(self, diagnosis: Any) -> None:
        self.facts["ok"] = bool(diagnosis.ok)
        self.facts["cause"] = diagnosis.cause.value
        str(diagnosis)
        self.keep_output(diagnosis.to_json())


def _manager(paths: dict[str, str], **kwargs: Any) -> Any:
    checkpoint = tf.train.Checkpoint(model=Model(-1))
    return safeckpt.SafeCheckpointManager(checkpoint, paths["dir"], 2, **kwargs)


def _restore(call: Call, manager: Any) -> None:
    report = manager.restore()
    call.facts["outcome"] = report.outcome.value
    call.facts["restored"] = report.save_path
    str(report)
    call.keep_output(report.to_json())


def _save(call: Call, paths: dict[str, str], **kwargs: Any) -> None:
    manager = _manager(paths, **kwargs)
    try:
        _restore(call, manager)
    except safeckpt.SafeCheckpointError as exc:  # documented: a user saves anyway
        cause = getattr(getattr(exc, "diagnosis", None), "cause", None)
        call.facts["restore_error"] = f"{type(exc).__name__} ({getattr(cause, 'value', None)})"
    call.facts["saved"] = manager.save()


def _lib(name: str, call: Call, paths: dict[str, str]) -> None:
    if name in ("diagnose", "diagnose_deep"):
        call.note_diagnosis(safeckpt.diagnose(paths["path"], deep=name.endswith("deep")))
    elif name in ("verify", "verify_deep"):
        call.note_diagnosis(safeckpt.verify(paths["prefix"], deep=name.endswith("deep")))
    elif name == "list_checkpoints":
        infos = safeckpt.list_checkpoints(paths["dir"])
        call.facts["listed"] = len(infos)
        call.facts["prefixes"] = [os.path.basename(i.prefix) for i in infos][:50]
        for info in infos:
            info.to_dict()
    elif name == "construct":
        _manager(paths)
    elif name == "latest_ro":
        latest = _manager(paths, read_only=True).latest_checkpoint
        call.facts["latest"] = latest
    elif name == "restore_ro":
        _restore(call, _manager(paths, read_only=True))
    elif name == "restore":
        _restore(call, _manager(paths))
    elif name == "restore_deep":
        _restore(call, _manager(paths, verify="deep"))
    elif name == "save_cleanup":
        _save(call, paths, cleanup_temp=True)
    elif name == "save_quarantine":
        _save(call, paths, quarantine=True)
    else:
        _control(name, call, paths)


def _control(name: str, call: Call, paths: dict[str, str]) -> None:
    """Deliberately misbehaving calls (`_entries._CONTROL`)."""
    if name == "control_write_outside":
        with open(os.path.join(paths["root"], "thesis.tex"), "ab") as handle:
            handle.write(b"% overwritten\n")
    elif name == "control_write_inside":
        with open(os.path.join(paths["dir"], "stray.txt"), "w") as handle:
            handle.write("a read-only call wrote this\n")
    elif name == "control_raise":
        struct.unpack("<Q", b"\0")
    elif name == "control_hang":
        time.sleep(3600)
    elif name == "control_abort":
        os.abort()
    elif name == "control_memory":
        hog = b"\x01" * (768 << 20)
        call.facts["hog"] = len(hog)
    elif name == "control_healthy":
        call.facts["ok"] = True
    else:
        raise ValueError(f"unknown entry point {name}")


def _cli_call(name: str, call: Call, paths: dict[str, str]) -> None:
    argv = argv_for(ENTRIES[name], paths)
    out, err = io.StringIO(), io.StringIO()
    if name == "control_cli_nan":
        print('{"timestamp": NaN}', file=out)
        code = 0
    elif name == "control_cli_traceback":
        print('Traceback (most recent call last):\n  File "x", line 1', file=err)
        code = 3
    else:
        code = cli.main(argv, stdout=out, stderr=err)
    call.exit = code
    call.keep_output(out.getvalue())
    text = err.getvalue()
    call.facts["stderr_len"] = len(text)
    call.stderr = text[:OUTPUT_CAP]


def run_entry(name: str, paths: dict[str, str]) -> dict[str, Any]:
    """Run one entry point; never raises (an exception becomes a fact)."""
    call = Call()
    entry = ENTRIES[name]
    exc_info: dict[str, Any] | None = None
    cpu, wall = time.process_time(), time.monotonic()
    try:
        if entry.cli:
            _cli_call(name, call, paths)
        else:
            _lib(name, call, paths)
    except BaseException as exc:
        exc_info = describe(exc)
    return {
        "exc": exc_info,
        "exit": call.exit,
        "output": call.output,
        "output_len": call.output_len,
        "stderr": call.stderr,
        "facts": call.facts,
        "cpu": time.process_time() - cpu,
        "wall": time.monotonic() - wall,
    }


def describe(exc: BaseException) -> dict[str, Any]:
    """The class chain, message, origin and diagnosis cause of an escaped exception."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "/safeckpt/" in f.filename and "site-packages" not in f.filename]
    frame = inside[-1] if inside else (frames[-1] if frames else None)
    where = f"{os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
    diagnosis = getattr(exc, "diagnosis", None)
    cause = getattr(getattr(diagnosis, "cause", None), "value", None)
    return {
        "mro": [f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__],
        "type": type(exc).__name__,
        "message": str(exc)[:400],
        "where": where,
        "cause": cause,
    }


# ------------------------------------------------------------------------------------------
# The loop


def quiet() -> None:
    logging.getLogger("safeckpt").setLevel(logging.CRITICAL)
    tf.get_logger().setLevel(logging.ERROR)
    with contextlib.suppress(Exception):
        absl.logging.set_verbosity(absl.logging.ERROR)


def warm_up(pristine: str) -> None:
    """Run every drawn entry point once on a copy of the pristine directory."""
    root = tempfile.mkdtemp(prefix="safeckpt-hostile-warm-")
    try:
        directory = os.path.join(root, "run", "ckpts")
        shutil.copytree(pristine, directory)
        paths = {
            "root": root,
            "dir": directory,
            "path": directory,
            "prefix": os.path.join(directory, f"{NAME}-{STEPS[-1]}"),
            "other": os.path.join(directory, f"{NAME}-1"),
        }
        for name in ENTRIES:
            if not name.startswith("control_"):
                run_entry(name, paths)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def serve(conn: Connection, handlers: dict[str, Callable[..., Any]]) -> None:
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "quit":
            return
        conn.send(handlers[request[0]](*request[1:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.hostile._worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--pristine", required=True)
    parser.add_argument("--unprivileged", action="store_true")
    parser.add_argument("--no-warm-up", action="store_true")
    args = parser.parse_args(argv)
    conn = Connection(args.fd)
    quiet()
    if not os.path.isdir(args.pristine):
        build_pristine(args.pristine)
    if not args.no_warm_up:
        warm_up(args.pristine)
    if args.unprivileged:
        drop_privileges()
    conn.send({"ready": os.getpid(), "uid": os.geteuid(), "safeckpt": safeckpt.__file__})
    serve(conn, {"call": run_entry})
    return 0


if __name__ == "__main__":
    sys.exit(main())
