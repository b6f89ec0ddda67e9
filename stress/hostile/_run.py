"""Running cases: the worker processes, the watchdog, and the real-process CLI sample.

The parent never imports TensorFlow or safeckpt. It builds each case's tree, hashes it,
sends the call to a long-lived worker (`stress.hostile._worker`), and watches it: a call
that does not answer within `Bounds.timeout` is a hang (the worker is killed and replaced),
a worker that dies is a crash (its signal and the last lines of its stderr are kept), and
its resident memory is sampled (peak RSS reset through ``/proc/<pid>/clear_refs`` before
each call, read back as ``VmHWM``). Unprivileged cases go to a second worker that drops to
``nobody`` after importing everything (as root), or to the same worker when the harness
does not run as root. A sample of CLI cases is also run as a real ``python -m safeckpt``
process, on a freshly built copy of the case.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from stress.hostile._case import Case, Layout, build_case, remove_tree
from stress.hostile._entries import ENTRIES, argv_for
from stress.hostile._oracle import Bounds, judge, snapshot
from testing.privileges import REPO, is_root, nobody_exists

try:
    import pwd
except ImportError:  # pragma: no cover - not on POSIX
    pwd = None  # type: ignore[assignment]

#: Environment variable naming another checkout whose ``safeckpt`` is put under test.
CODE_ENV = "HOSTILE_SAFECKPT"
STARTUP_TIMEOUT = 600.0


@dataclass
class CaseResult:
    """One case's facts and violations."""

    case: Case
    outcome: str  # returned / raised:<Type> / exit:<code> / hang / crashed / memory
    violations: list[tuple[str, str]]
    seconds: float
    facts: dict[str, Any] = field(default_factory=dict)


def _read_status(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class Worker:
    """One long-lived worker process and its pipe."""

    def __init__(self, pristine: str, log_dir: str, *, unprivileged: bool, label: str) -> None:
        self.pristine = pristine
        self.unprivileged = unprivileged
        self.label = label
        self.log_path = os.path.join(log_dir, f"worker-{label}.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Any = None
        self.starts = 0
        self.safeckpt = ""

    def start(self) -> None:
        parent, child = multiprocessing.Pipe(duplex=True)
        args = [sys.executable, "-m", "stress.hostile._worker", "--fd", str(child.fileno())]
        args += ["--pristine", self.pristine]
        if self.unprivileged:
            args.append("--unprivileged")
        env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                cwd=REPO,
                start_new_session=True,
            )
        child.close()
        self.conn = parent
        self.starts += 1
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not parent.poll(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker {self.label} did not start: see {self.log_path}")
        ready = parent.recv()
        self.safeckpt = str(ready["safeckpt"])
        code_dir = os.environ.get(CODE_ENV)
        if code_dir and not self.safeckpt.startswith(code_dir):
            raise RuntimeError(f"the worker imported {self.safeckpt}, not from {code_dir}")
        if self.unprivileged and is_root() and ready["uid"] == 0:
            raise RuntimeError("the unprivileged worker still runs as root")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError, EOFError, BrokenPipeError):
                self.conn.send(("quit",))
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn = None, None

    def _kill(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        self.conn.close()
        self.proc, self.conn = None, None

    def _log_since(self, offset: int) -> str:
        """What the worker wrote to stderr during the call: a fatal line if there is one."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                text = handle.read(1 << 20).decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        fatal = [line for line in lines if "Check failed" in line or line.startswith("F0000")]
        if fatal:
            return fatal[0][:300]
        useful = [line for line in lines if not line.startswith("@") and "oneDNN" not in line]
        return " | ".join(useful[-3:])[:300]

    def _log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def call(self, entry: str, paths: dict[str, str], bounds: Bounds) -> dict[str, Any]:
        """Run one entry point; a hang, a death or runaway memory becomes ``died``."""
        if self.proc is None:
            self.start()
        assert self.proc is not None
        pid = self.proc.pid
        reset = _reset_peak(pid)
        base = _read_status(pid, "VmRSS") or 0
        peak = base
        log_offset = self._log_size()
        start = time.monotonic()
        died: dict[str, str] | None = None
        with contextlib.suppress(OSError):  # it died after its last answer: the poll says how
            self.conn.send(("call", entry, paths))
        while True:
            try:
                if self.conn.poll(0.05):
                    result: dict[str, Any] = self.conn.recv()
                    break
            except (EOFError, OSError):
                pass
            code = self.proc.poll()
            if code is not None:
                name = signal.Signals(-code).name if code < 0 else f"exit {code}"
                died = {
                    "kind": "crashed",
                    "detail": f"worker died ({name}): {self._log_since(log_offset)}",
                }
                break
            rss = _read_status(pid, "VmRSS") or 0
            peak = max(peak, rss)
            elapsed = time.monotonic() - start
            if elapsed > bounds.timeout:
                died = {"kind": "hang", "detail": f"no answer after {bounds.timeout:.0f} s"}
                break
            if rss - base > bounds.kill_memory:
                died = {
                    "kind": "memory",
                    "detail": f"killed at +{(rss - base) / 2**20:.0f} MiB after {elapsed:.1f} s",
                }
                break
        if died is not None:
            if self.proc is not None and self.proc.poll() is None:
                self._kill()
            else:
                self.proc.wait()
                self.conn.close()
                self.proc, self.conn = None, None
            return {"died": died, "wall": time.monotonic() - start}
        hwm = _read_status(pid, "VmHWM") if reset else None
        result["memory"] = (hwm if hwm is not None else peak) - base
        result["wall_parent"] = time.monotonic() - start
        return result


def paths_of(layout: Layout) -> dict[str, str]:
    return {
        "root": layout.root,
        "dir": layout.directory,
        "path": layout.path,
        "prefix": layout.prefix,
        "other": layout.other,
    }


def outcome_of(result: dict[str, Any]) -> str:
    if "died" in result:
        return str(result["died"]["kind"])
    exc = result.get("exc")
    if exc is not None:
        return f"raised:{exc['type']}"
    if result.get("exit") is not None:
        return f"exit:{result['exit']}"
    return "returned"


class Runner:
    """Runs cases on the workers; one per harness run (or per test module)."""

    def __init__(self, workdir: str, *, bounds: Bounds | None = None) -> None:
        self.workdir = workdir
        self.bounds = bounds or Bounds()
        self.pristine = os.path.join(workdir, "pristine")
        self.logs = os.path.join(workdir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        os.chmod(workdir, 0o755)
        self.main = Worker(self.pristine, self.logs, unprivileged=False, label="main")
        self.nobody: Worker | None = None
        self.nobody_ids: tuple[int, int] | None = None
        if is_root() and nobody_exists():
            user = pwd.getpwnam("nobody")
            self.nobody_ids = (user.pw_uid, user.pw_gid)
        self.main.start()  # builds the pristine checkpoints
        os.chmod(self.pristine, 0o755)

    @property
    def can_run_unprivileged(self) -> bool:
        return not is_root() or self.nobody_ids is not None

    def close(self) -> None:
        self.main.stop()
        if self.nobody is not None:
            self.nobody.stop()

    def _worker_for(self, case: Case) -> Worker:
        if case.unprivileged and is_root():
            if self.nobody is None:
                self.nobody = Worker(self.pristine, self.logs, unprivileged=True, label="nobody")
            return self.nobody
        return self.main

    def run_case(
        self, case: Case, *, keep: bool = False, bounds: Bounds | None = None
    ) -> CaseResult:
        """Build, hash, call, hash, judge (and, for a sampled CLI case, again as a process)."""
        bounds = bounds or self.bounds
        start = time.monotonic()
        root = os.path.join(self.workdir, f"case-{case.index}")
        remove_tree(root)
        layout = build_case(
            case, root, self.pristine, self.nobody_ids if case.unprivileged else None
        )
        outside0, inside0 = snapshot(root, inside=False), snapshot(root, inside=True)
        result = self._worker_for(case).call(case.entry, paths_of(layout), bounds)
        outside1, inside1 = snapshot(root, inside=False), snapshot(root, inside=True)
        violations = judge(
            case, case.entry, layout, result, (outside0, outside1), (inside0, inside1), bounds
        )
        if not keep:
            remove_tree(root)
        if case.proc and ENTRIES[case.entry].cli and not (case.unprivileged and is_root()):
            violations += [(f"process {k}", d) for k, d in self._run_process(case, root)]
            remove_tree(root)
        facts = dict(result.get("facts", {}))
        if result.get("exc"):
            facts["exception"] = f"{result['exc']['type']}: {result['exc']['message'][:160]}"
        for key in ("cpu", "memory", "wall_parent"):
            if key in result:
                facts[key] = result[key]
        return CaseResult(case, outcome_of(result), violations, time.monotonic() - start, facts)

    def _run_process(self, case: Case, root: str) -> list[tuple[str, str]]:
        """The same CLI call as a real ``python -m safeckpt`` process on a fresh copy."""
        remove_tree(root)
        layout = build_case(case, root, self.pristine, None)
        outside0, inside0 = snapshot(root, inside=False), snapshot(root, inside=True)
        argv = argv_for(ENTRIES[case.entry], paths_of(layout))
        env = dict(os.environ)
        code_dir = os.environ.get(CODE_ENV)
        if code_dir:
            env["PYTHONPATH"] = code_dir
        start = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "safeckpt", *argv],
                capture_output=True,
                env=env,
                cwd=tempfile.gettempdir(),
                timeout=self.bounds.timeout + 60,  # + the imports
                check=False,
            )
            stdout = proc.stdout.decode("utf-8", "replace")
            stderr = proc.stderr.decode("utf-8", "replace")
            result: dict[str, Any] = {
                "exc": None,
                "exit": proc.returncode,
                "output": stdout,
                "output_len": len(stdout),
                "stderr": stderr,
                "facts": {"stderr_len": len(stderr)},
                "cpu": 0.0,
            }
            if proc.returncode < 0:
                name = signal.Signals(-proc.returncode).name
                result = {"died": {"kind": "crashed", "detail": f"{name}: {stderr[-300:]}"}}
        except subprocess.TimeoutExpired:
            result = {"died": {"kind": "hang", "detail": f"after {time.monotonic() - start:.0f} s"}}
        outside1, inside1 = snapshot(root, inside=False), snapshot(root, inside=True)
        return judge(
            case, case.entry, layout, result, (outside0, outside1), (inside0, inside1), self.bounds
        )


@contextlib.contextmanager
def runner(workdir: str | None = None, bounds: Bounds | None = None) -> Iterator[Runner]:
    """A `Runner` in `workdir` (a temporary directory by default), closed afterwards."""
    own = workdir is None
    path = tempfile.mkdtemp(prefix="safeckpt-hostile-") if workdir is None else workdir
    os.makedirs(path, exist_ok=True)
    active = Runner(path, bounds=bounds)
    try:
        yield active
    finally:
        active.close()
        if own:
            remove_tree(path)


def pristine_files(pristine: str) -> dict[str, bytes]:
    """The pristine directory's files (the generator mutates these bytes)."""
    out = {}
    for name in sorted(os.listdir(pristine)):
        with open(os.path.join(pristine, name), "rb") as handle:
            out[name] = handle.read()
    return out
