"""Bounded parallelism for latency-bound storage calls.

On remote filesystems (``gs://`` and other URIs) each stat or read is a request of tens of
milliseconds, so listing, inspecting or verifying a directory of many checkpoints one call
after another takes minutes. `map_io` runs such calls on a small thread pool there
(TensorFlow's file operations release the GIL while they wait); local paths stay serial,
where a call takes microseconds and threads only add overhead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from safeckpt._io import fs

T = TypeVar("T")
R = TypeVar("R")

#: Concurrent requests to a remote filesystem: enough to hide latency, few enough not to be
#: throttled (GCS allows thousands of reads per second per bucket).
MAX_WORKERS = 16


def map_io(
    directory: str,
    function: Callable[[T], R],
    items: Iterable[T],
    *,
    done: Callable[[int, int], None] | None = None,
) -> list[R]:
    """``[function(item) for item in items]``, in parallel when `directory` is remote.

    Results keep the order of `items`; the first exception raised is re-raised. `done` is
    called as ``done(finished, total)`` after each item (from the worker threads, one call
    at a time).
    """
    work = list(items)
    if done is not None:
        function = _counted(function, done, len(work))
    if fs.scheme_of(directory) is None or len(work) < 2:
        return [function(item) for item in work]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(work))) as pool:
        return list(pool.map(function, work))


def _counted(
    function: Callable[[T], R], done: Callable[[int, int], None], total: int
) -> Callable[[T], R]:
    lock = threading.Lock()
    finished = 0

    def counted(item: T) -> R:
        nonlocal finished
        result = function(item)
        with lock:
            finished += 1
            done(finished, total)
        return result

    return counted
