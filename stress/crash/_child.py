"""The training process of the crash harness (`stress.crash`): resume, then save until killed.

`child_main` runs in a process forked from a server that has already imported TensorFlow
and safeckpt (multiprocessing's forkserver), so it starts in a fraction of a second with no
state from any earlier process. It

1. builds a model of ``vars`` float32 variables totalling ``size_mb`` MiB plus an int64
   ``tag`` variable, and a `safeckpt.SafeCheckpointManager` (``max_to_keep``, ``cleanup_temp``
   from the options);
2. calls ``manager.restore()`` and reports what it restored (outcome, step, the values it
   finds in the variables, the tag, ``save_counter``);
3. reads commands from its pipe: ``{"cmd": "save", "count": n, "arm": point}`` saves ``n``
   checkpoints, ``{"cmd": "exit"}`` ends the process.

Checkpoint ``k`` holds every float variable filled with ``k`` and a random 62-bit ``tag``
that names the process save that wrote it, so the harness can tell from the files alone
which save produced a checkpoint and whether it was overwritten.

Every event is appended to the side log (unbuffered ``os.write``, so it survives SIGKILL)
*before* it is sent on the pipe: the harness uses the pipe to synchronise and the side log
as the record of which saves returned.

``arm`` makes this process SIGKILL itself at a Python-level point of the next saves (the
state-file writes and the sweep run in Python inside ``tf.train.CheckpointManager``). The
hooks wrap TensorFlow's ``file_io.rename`` / ``file_io.delete_file`` in this process only
and kill it *before* the real call: a real crash at that moment, nothing is mocked. Points
inside TensorFlow's C++ save (renames and the index write of ``MergeV2Checkpoints``) are
injected from outside with ``strace`` by the harness.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from typing import Any

#: Points this process injects itself (see `Hooks`); every other point is strace's.
PYTHON_POINTS = ("state_write", "sweep_index", "sweep_data", "state_rewrite")

STATE_FILE = "checkpoint"
CHECKPOINT_NAME = "ckpt"
#: The options the harness gives every child: ``max_to_keep`` and the number of variables.
MAX_TO_KEEP = 3
N_VARS = 4


def var_names(count: int) -> list[str]:
    """Names of the float variables (also their keys in the checkpoint's object graph)."""
    return [f"v{i}" for i in range(count)]


def var_key(name: str) -> str:
    """The checkpoint key of the variable `name` of the `tf.train.Checkpoint`."""
    return f"{name}/.ATTRIBUTES/VARIABLE_VALUE"


TAG_KEY = var_key("tag")
COUNTER_KEY = var_key("save_counter")


def elements_per_var(size_mb: float, count: int) -> int:
    """How many float32 elements each variable holds for a model of `size_mb` MiB."""
    return max(1, int(size_mb * 2**20 / 4 / count))


class Hooks:
    """SIGKILL this process at a Python-level point of TensorFlow's save, once armed.

    Points: ``state_write`` / ``state_rewrite`` kill before the 1st / 2nd rename of a
    ``checkpoint.tmp*`` file onto the state file (before / after the sweep), ``sweep_index``
    / ``sweep_data`` before the sweep deletes an evicted checkpoint's index / data file.
    """

    def __init__(self, directory: str, emit: Callable[..., None]) -> None:
        from tensorflow.python.lib.io import file_io

        self._directory = directory
        self._emit = emit
        self._armed: str | None = None
        self._count = 0
        rename, delete = file_io.rename, file_io.delete_file

        def hooked_rename(oldname: Any, newname: Any, overwrite: bool = False) -> Any:
            if self._armed in ("state_write", "state_rewrite") and self._is_state(newname):
                self._count += 1
                if self._count == (1 if self._armed == "state_write" else 2):
                    self._kill(f"rename {oldname} -> {newname}")
            return rename(oldname, newname, overwrite)

        def hooked_delete(filename: Any) -> Any:
            name = os.path.basename(os.fspath(filename))
            if (self._armed == "sweep_index" and name.endswith(".index")) or (
                self._armed == "sweep_data" and ".data-" in name
            ):
                self._kill(f"delete {filename}")
            return delete(filename)

        file_io.rename = hooked_rename
        file_io.delete_file = hooked_delete

    def _is_state(self, path: Any) -> bool:
        text = str(os.fspath(path))
        return os.path.dirname(text) == self._directory and os.path.basename(text) == STATE_FILE

    def arm(self, point: str | None) -> None:
        """Kill at `point` from now on (None disarms)."""
        if point is not None and point not in PYTHON_POINTS:
            raise ValueError(f"not a Python-level point: {point}")
        self._armed, self._count = point, 0

    def _kill(self, what: str) -> None:
        self._emit("injected", point=self._armed, call=what)
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # pragma: no cover - SIGKILL cannot be caught


def child_main(conn: Any, options: dict[str, Any]) -> None:
    """Run the child (see the module docstring); `conn` is its end of a duplex pipe.

    Options: ``directory``, ``log`` (side log), ``stderr`` (file for fd 2), ``size_mb``,
    ``vars``, ``max_to_keep``, ``cleanup_temp``.
    """
    err = os.open(options["stderr"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(err, 2)
    directory = os.path.abspath(options["directory"])
    log_fd = os.open(options["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(event: str, **fields: Any) -> None:
        record = {"event": event, "pid": os.getpid(), "t": time.time(), **fields}
        os.write(log_fd, (json.dumps(record) + "\n").encode())
        conn.send(record)

    import tensorflow as tf

    import safeckpt

    names = var_names(int(options["vars"]))
    n = elements_per_var(float(options["size_mb"]), len(names))
    variables = {name: tf.Variable(tf.zeros([n], tf.float32), name=name) for name in names}
    tag = tf.Variable(0, dtype=tf.int64, name="tag")
    checkpoint = tf.train.Checkpoint(tag=tag, **variables)
    cleanup_temp = bool(options["cleanup_temp"])
    manager = safeckpt.SafeCheckpointManager(
        checkpoint,
        directory,
        max_to_keep=int(options["max_to_keep"]),
        checkpoint_name=CHECKPOINT_NAME,
        cleanup_temp=cleanup_temp,
    )
    emit(
        "started",
        latest=manager.latest_checkpoint,
        cleanup_temp=cleanup_temp,
        safeckpt=os.path.dirname(safeckpt.__file__),
    )

    def values() -> dict[str, list[float]]:
        return {
            k: [float(tf.reduce_min(v).numpy()), float(tf.reduce_max(v).numpy())]
            for k, v in variables.items()
        }

    try:
        started = time.monotonic()
        report = manager.restore()
        seconds = time.monotonic() - started
    except Exception as exc:  # the harness records any failure as a violation
        emit("restore_failed", error=f"{type(exc).__name__}: {exc}")
        return
    consumed = None
    if report.save_path is not None:
        try:
            report.assert_consumed()
            consumed = "ok"
        except AssertionError as exc:
            consumed = f"AssertionError: {exc}"
    emit(
        "restored",
        outcome=str(report.outcome),
        save_path=report.save_path,
        step=report.step,
        values=values(),
        tag=int(tag.numpy()),
        save_counter=int(checkpoint.save_counter.numpy()),
        skipped=[f"{d.checkpoint}: {d.cause}" for d in report.skipped],
        notes=list(report.notes),
        consumed=consumed,
        latest=manager.latest_checkpoint,
        seconds=seconds,
    )
    hooks = Hooks(directory, emit)
    while True:
        try:
            command = conn.recv()
        except EOFError:
            return
        if command["cmd"] == "exit":
            return
        hooks.arm(command.get("arm"))
        for _ in range(int(command.get("count", 1))):
            step = int(checkpoint.save_counter.numpy()) + 1
            for v in variables.values():
                v.assign(tf.fill([n], float(step)))
            tag.assign(secrets.randbits(62))
            emit("saving", step=step, tag=int(tag.numpy()))
            started = time.monotonic()
            path = manager.save()
            emit(
                "saved",
                step=step,
                tag=int(tag.numpy()),
                path=path,
                seconds=time.monotonic() - started,
            )
            time.sleep(float(command.get("pause", 0.0)))
        hooks.arm(None)
        emit("done")
