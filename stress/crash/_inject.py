"""Where `stress.crash` kills a save: the kill points, and injecting them with strace."""

from __future__ import annotations

import os
import shutil
import subprocess

from stress.crash._child import CHECKPOINT_NAME, PYTHON_POINTS

#: Deterministic kill points in save order: what the process is killed just before.
POINTS: dict[str, str] = {
    "temp_mkdir": "mkdir of <prefix>_temp (the save has written nothing)",
    "tmp_data_rename": "rename of the part data .tempstate file (data fully written)",
    "tmp_index_rename": "rename of the part index .tempstate file",
    "data_rename": "MergeV2Checkpoints renames the data shard to its final name",
    "index_create": "creation of <prefix>.index (data shard already final)",
    "index_write": "writing <prefix>.index (created, still empty)",
    "part_index_unlink": "unlink of the part index (checkpoint complete, _temp left)",
    "temp_rmdir": "rmdir of <prefix>_temp (checkpoint complete)",
    "state_write": "1st state-file rename (complete checkpoint not yet listed)",
    "sweep_index": "the sweep deletes an evicted checkpoint's .index",
    "sweep_data": "the sweep deletes an evicted checkpoint's data shard",
    "state_rewrite": "2nd state-file rename, after the sweep",
}


RANDOM = "random"


STRACE_POINTS = tuple(p for p in POINTS if p not in PYTHON_POINTS)


PART = "part-00000-of-00001"


_RENAMES = "rename,renameat,renameat2"


def strace_args(point: str, directory: str, step: int) -> list[str]:
    """Options for strace that SIGKILL the traced process at `point` of the save of `step`.

    Paths are matched with ``-P`` (strace matches the first path argument of a call, or the
    file behind a file descriptor). The two ``.tempstate`` renames have random source names,
    so they are counted instead: they are the 2nd and 3rd ``rename`` of a fresh process
    (``PYTHONDONTWRITEBYTECODE`` keeps Python from renaming ``.pyc`` files). The 1st is
    safeckpt's writer lease, which a save replaces (a new file, renamed) before TensorFlow
    writes anything (docs/fallback.md, "Two writers").
    """
    prefix = f"{directory}/{CHECKPOINT_NAME}-{step}"
    temp = prefix + "_temp"
    table: dict[str, tuple[str, str | None, int]] = {
        "temp_mkdir": ("mkdir,mkdirat", temp, 1),
        "tmp_data_rename": (_RENAMES, None, 2),
        "tmp_index_rename": (_RENAMES, None, 3),
        "data_rename": (_RENAMES, f"{temp}/{PART}.data-00000-of-00001", 1),
        "index_create": ("open,openat,creat", prefix + ".index", 1),
        "index_write": ("write,writev,pwrite64", prefix + ".index", 1),
        "part_index_unlink": ("unlink,unlinkat", f"{temp}/{PART}.index", 1),
        "temp_rmdir": ("rmdir,unlinkat", temp, 1),
    }
    calls, path, when = table[point]
    args = ["-f", "-qq", "-o", "/dev/null", "-e", f"trace={calls}"]
    args += ["-e", f"inject={calls}:signal=SIGKILL:when={when}"]
    return args + (["-P", path] if path else [])


def strace_available() -> bool:
    """Whether ``strace`` is installed and may trace here (ptrace can be forbidden)."""
    exe = shutil.which("strace")
    if exe is None:
        return False
    try:
        done = subprocess.run(
            [exe, "-f", "-qq", "-o", "/dev/null", "true"], capture_output=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def traced_by(pid: int, tracer: int) -> bool:
    """Whether every thread of `pid` has `tracer` as its TracerPid."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for task in tasks:
            with open(f"/proc/{pid}/task/{task}/status", encoding="ascii") as f:
                line = next(x for x in f if x.startswith("TracerPid:"))
            if int(line.split()[1]) != tracer:
                return False
    except (OSError, StopIteration, ValueError):
        return False
    return bool(tasks)


def point_needs_strace(point: str) -> bool:
    """Whether `point` is injected with strace (a C++-level point of the save)."""
    return point in STRACE_POINTS
