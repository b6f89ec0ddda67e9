"""The machine a benchmark runs on: what it is, how busy it was, its page cache.

Needs TensorFlow only for its version string (`machine_info`).
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from pathlib import Path

import tensorflow as tf

import safeckpt
from benchmarks._data import Load, MiB
from safeckpt._format import crc32c


def _busy_jiffies() -> int | None:
    """Non-idle CPU time of the whole machine, in clock ticks (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    return sum(values) - values[3] - values[4]


def _own_cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class LoadMeter:
    """Measures how busy the machine is from `start` until `stop` (a `Load`)."""

    def __init__(self) -> None:
        self.before = os.getloadavg()
        self.busy0 = _busy_jiffies()
        self.own0 = _own_cpu_seconds()
        self.wall0 = time.monotonic()

    def stop(self) -> Load:
        load = Load(self.before, os.getloadavg())
        busy1 = _busy_jiffies()
        if self.busy0 is None or busy1 is None:
            return load
        tick = os.sysconf("SC_CLK_TCK")
        machine = (busy1 - self.busy0) / tick
        own = _own_cpu_seconds() - self.own0
        capacity = (time.monotonic() - self.wall0) * (os.cpu_count() or 1)
        load.other_share = max(0.0, machine - own) / capacity if capacity > 0 else None
        return load


def machine_info(workdir: Path) -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / MiB:.1f} GiB RAM"
    except OSError:
        pass
    fs = ""
    try:
        out = (
            subprocess.run(["df", "-PT", str(workdir)], capture_output=True, text=True, check=True)
            .stdout.splitlines()[-1]
            .split()
        )
        fs = f"{workdir} on {out[0]} ({out[1]})"
    except (OSError, subprocess.CalledProcessError, IndexError):
        fs = str(workdir)
    crc = crc32c.BACKEND
    if crc == "google_crc32c":
        try:
            from importlib.metadata import version

            crc += f" {version('google-crc32c')}"
        except Exception:  # only decoration
            pass
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} logical CPUs" + (f", {mem}" if mem else "")),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("TensorFlow", tf.__version__),
        ("safeckpt", safeckpt.__version__),
        ("CRC32C backend", f"`{crc}` (`safeckpt._format.crc32c.BACKEND`)"),
        ("Working directory", fs),
    ]


def drop_caches() -> bool:
    """Empty the page cache (root only); False when not permitted."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True
