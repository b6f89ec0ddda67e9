"""What a benchmark run measured, as plain data (no TensorFlow), and its JSON form.

`benchmarks._measure` fills a `Measurements`; `benchmarks._render` turns one into
``docs/benchmarks.md``. ``bench.py --json FILE`` saves it with `to_dict`, and
``bench.py --from-json FILE`` renders a saved one again (`from_dict`) without measuring.
Every timing is kept as raw samples (seconds, in round order): medians, quartiles and
ratios are computed from them when rendering.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

MiB = 1024 * 1024

#: Bumped when the JSON layout changes incompatibly.
FORMAT = 1


@dataclass
class Series:
    """Timings (seconds) of one variant, in round order."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def iqr(self) -> tuple[float, float]:
        if len(self.samples) < 4:
            return min(self.samples), max(self.samples)
        q = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q[0], q[2]


def paired_ratio(series: Series, base: Series) -> float:
    """Median over rounds of series/base (both measured in the same round)."""
    return statistics.median(s / b for s, b in zip(series.samples, base.samples, strict=True))


@dataclass
class Load:
    """How busy the machine was around the run."""

    before: tuple[float, float, float]
    after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    other_share: float | None = None  # CPU used by other processes / machine capacity


@dataclass
class BigResult:
    """Part 2: verification of one large checkpoint, per variant (see `BIG_VARIANTS`)."""

    nbytes: int
    files: list[str]
    warm: dict[str, Series]
    cold: dict[str, Series] | None
    cold_error: str | None
    fallback_deep: Series | None
    fallback_backend: str | None
    fallback_error: str | None
    backend: str = ""  # the CRC32C backend of every other measurement


@dataclass
class Profile:
    """One ``--profile`` listing (cProfile, sorted by cumulative time)."""

    label: str
    calls: int
    text: str


@dataclass
class Measurements:
    """Everything one run measured, and how it was run.

    `construct`, `save` and `restore` map a variant's key (``plain``, ``safe``, ...) to its
    timings; `benchmarks._render` knows what each key means and which one is the baseline.
    """

    date: str  # local time the run started, e.g. "2026-11-24 01:30 UTC"
    elapsed: float  # seconds the whole run took
    command: str  # the command line that measured, as shown in the report
    quick: bool
    repeats: int
    warmup: int
    sizes: dict[str, int]
    info: list[tuple[str, str]]  # machine facts, in report order
    load: Load
    construct: dict[str, Series]
    save: dict[str, Series]
    restore: dict[str, Series]
    big: BigResult
    profiles: list[Profile] | None = None
    construct_large: dict[str, Series] | None = None  # next to 10,000 checkpoints

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form (``bench.py --json``)."""
        return {"format": FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurements:
        """Inverse of `to_dict` (``bench.py --from-json``)."""
        if d.get("format") != FORMAT:
            raise ValueError(f"benchmark data format {d.get('format')!r}, expected {FORMAT}")
        big = dict(d["big"])
        for key in ("warm", "cold"):
            big[key] = _series_map(big[key])
        if big["fallback_deep"] is not None:
            big["fallback_deep"] = Series(**big["fallback_deep"])
        load = d["load"]
        profiles = d.get("profiles")
        return cls(
            date=d["date"],
            elapsed=d["elapsed"],
            command=d["command"],
            quick=d["quick"],
            repeats=d["repeats"],
            warmup=d["warmup"],
            sizes=dict(d["sizes"]),
            info=[(k, v) for k, v in d["info"]],
            load=Load(tuple(load["before"]), tuple(load["after"]), load["other_share"]),
            construct=_series_map(d["construct"]),
            save=_series_map(d["save"]),
            restore=_series_map(d["restore"]),
            big=BigResult(**big),
            profiles=None if profiles is None else [Profile(**p) for p in profiles],
            construct_large=(
                _series_map(d["construct_large"]) if d.get("construct_large") else None
            ),
        )


def _series_map(d: dict[str, Any] | None) -> dict[str, Series] | None:
    return None if d is None else {k: Series(**v) for k, v in d.items()}


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
