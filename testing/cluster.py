"""Real multi-worker clusters on loopback: worker processes with their own ``TF_CONFIG``.

`run_cluster` starts one process per argument list (a worker script that prints one
``RESULT <json>`` line), bounded by a hard timeout after which every worker is killed and the
calling test fails with their output. Workers get the checkout on ``PYTHONPATH``, so that a
worker script can import `testing` (e.g. `file_hashes`) however it was started.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

CLUSTER_TIMEOUT = 180.0  # seconds for one run of both workers (about 6 s on an idle machine)
_PORT_IN_USE = ("Address already in use", "Failed to add port")
#: The repository root (the folder holding ``testing/``), put on the workers' ``PYTHONPATH``.
REPO = str(Path(__file__).resolve().parents[1])

Outputs = list[tuple[int | None, str, str]]


def tf_config(cluster: dict[str, list[str]], task_type: str, index: int) -> str:
    """A ``TF_CONFIG`` value: `cluster`, this task's type and index."""
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def file_hashes(directory: str) -> dict[str, str]:
    """sha256 of every regular file directly in `directory` (not a worker's subdirectory)."""
    root = Path(directory)
    if not root.is_dir():
        return {}
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.iterdir())
        if p.is_file()
    }


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _show(outputs: Outputs) -> str:
    return "\n".join(
        f"--- worker {i} (exit {rc}) stdout:\n{out[-3000:]}\n--- worker {i} stderr:\n{err[-6000:]}"
        for i, (rc, out, err) in enumerate(outputs)
    )


def _launch(worker_args: list[list[str]], phase: str, script: Path) -> Outputs:
    ports = _free_ports(len(worker_args))
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    procs = []
    for index, args in enumerate(worker_args):
        env = dict(os.environ)
        path = env.get("PYTHONPATH")
        env.update(
            TF_CONFIG=tf_config(cluster, "worker", index),
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
            PYTHONPATH=os.pathsep.join([REPO, path]) if path else REPO,
        )
        command = [sys.executable, str(script), "--phase", phase, *args]
        procs.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    deadline = time.monotonic() + CLUSTER_TIMEOUT
    outputs: Outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs.append((proc.returncode, out, err))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        outputs = [(proc.returncode, *proc.communicate()) for proc in procs]
        pytest.fail(f"phase {phase!r} did not finish in {CLUSTER_TIMEOUT} s:\n{_show(outputs)}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return outputs


def run_cluster(
    worker_args: list[list[str]],
    phase: str,
    *,
    script: Path,
    dies: tuple[int, ...] = (),
    status: int = 0,
) -> list[dict[str, Any]]:
    """One worker per argument list; each worker's RESULT (worker 0 is the chief).

    Every worker must exit with `status`, except those in `dies`, which must exit with
    status 9 (killing themselves); their result is ``{"exit": 9}``.
    """
    for _attempt in range(3):
        outputs = _launch(worker_args, phase, script)
        if not any(m in err for _, _, err in outputs for m in _PORT_IN_USE):
            break  # else another process took a port between choosing and binding it
    results = []
    for index, (rc, out, _err) in enumerate(outputs):
        if index in dies:
            if rc != 9:
                pytest.fail(f"worker {index} should have died:\n{_show(outputs)}")
            results.append({"exit": rc})
            continue
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        if rc != status or not lines:
            pytest.fail(f"phase {phase!r} failed:\n{_show(outputs)}")
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    return results
